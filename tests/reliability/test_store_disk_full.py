"""SQLite on a full disk: polls, webhooks and alert rounds fail cleanly, then nothing is lost.

The store lives on a small tmpfs. After the migrations and a first poll, a filler file takes
every remaining byte. While the disk is full, a poll that brings new messages must end as
``store`` (not a crash) without moving its cursor or leaving half a transaction behind, a
signed webhook must be answered 503 (Meta delivers again), an alert round must log and carry
on, and the process must keep serving ``/healthz`` and readers. Once the filler is deleted the
next poll stores everything the fake holds, the webhook is accepted, the alert is recorded, and
``PRAGMA integrity_check`` finds the file intact.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.fakes.meta import FakeMeta
from monitor.config.loading import load_config
from monitor.core.polls import AccountState, PollOutcome
from monitor.service.runtime import Runtime
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine

TOKEN = "EAA-DISKFULL-TEST-SECRET-TOKEN-5"
APP_SECRET = "diskfull-app-secret"
# Migrations leave about 0.2 MB of database, WAL and shared memory; 2 MB leaves room for the
# first poll before the filler takes the rest.
DISK_SIZE = "2m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on its own 2 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = (mounted.stderr.strip().splitlines() or ["mount failed"])[0]
        pytest.skip(f"cannot mount a small tmpfs: {reason}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode:
            # Still busy: detach it anyway so no mount outlives the test, and say why.
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
            pytest.fail("a file on the small tmpfs was still open after the test")


def fill(folder: Path) -> Path:
    """Write a filler file until the file system has not one byte left; return it."""
    filler = folder / "filler"
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Big blocks first, then ever smaller ones, so the last partial page is taken too.
        for size in (1 << 16, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(handle, block)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(handle)
    return filler


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    meta.add_page("100", TOKEN)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


class Clock:
    """Real time plus a shift the test moves forward (to make waits old enough to alert)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


def read(database: Path, query: str) -> list[tuple[object, ...]]:
    """A query on a connection of its own, as the CLI or another reader would run it."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


async def test_a_full_disk_delays_polls_and_webhooks_and_loses_nothing(
    small_disk: Path,
    fake: tuple[FakeMeta, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Disk full: store outcome, cursor unmoved, 503, healthz answers; freed: all stored."""
    meta, url = fake
    monkeypatch.setenv("DISKFULL_TOKEN", TOKEN)
    monkeypatch.setenv("DISKFULL_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("DISKFULL_VERIFY", "verify-me")
    # The config stays off the small disk: only the store's files are on it.
    (tmp_path / "replywatch.toml").write_text(f"""
[webhooks.meta.secrets]
app_secret = "env:DISKFULL_APP_SECRET"
verify_token = "env:DISKFULL_VERIFY"

[[accounts]]
name = "shop"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
targets = {{ warn_after = "10m", escalate_after = "1h" }}
secrets = {{ access_token = "env:DISKFULL_TOKEN" }}
""")
    now = datetime.now(UTC)
    mids = [
        meta.customer_message("100", "c1", now - timedelta(minutes=9)),
        meta.business_reply("100", "c1", now - timedelta(minutes=8)),
        # c2 stays unanswered: once the clock moves on, the alert round has a level to record.
        meta.customer_message("100", "c2", now - timedelta(minutes=1)),
    ]
    config = load_config(tmp_path / "replywatch.toml")
    database = small_disk / "r.db"
    engine = open_engine(f"sqlite:///{database}")
    context = AppContext(config, engine, AccountDirectory(config))
    context.sync()
    clock = Clock()
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600, clock=clock)
    await runtime.start()
    filler: Path | None = None
    try:
        # The test drives the polls itself; the scheduler keeps running (healthz reports it).
        runtime.scheduler.pause_job("shop")
        coordinator = runtime.coordinators["shop"]
        first = await coordinator.poll()
        assert first.outcome is PollOutcome.SUCCESS
        assert read(database, "SELECT COUNT(*) FROM events") == [(len(mids),)]
        cursor_before = read(database, "SELECT value, updated_at FROM cursors")
        assert len(cursor_before) == 1

        # New traffic arrives, then the disk fills up.
        later = datetime.now(UTC)
        new = [
            meta.customer_message("100", "c3", later - timedelta(seconds=30)),
            meta.business_reply("100", "c3", later - timedelta(seconds=10)),
        ]
        hooked = meta.customer_message("100", "c4", later)
        new.append(hooked)
        filler = fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0

        full = await coordinator.poll()
        assert full.outcome is PollOutcome.STORE
        assert full.stored == 0 and full.items >= len(new)
        assert coordinator.state is AccountState.FAILING
        assert "full" in (coordinator.last_error or "")
        # Readers still work on a full disk and see no part of the failed transaction.
        assert read(database, "SELECT COUNT(*) FROM events") == [(len(mids),)]
        assert read(database, "SELECT value, updated_at FROM cursors") == cursor_before
        # WAL mode: no rollback journal is left behind. The failed transaction may have
        # written frames into the WAL's last, already allocated page, but without a commit
        # frame readers ignore them and the next transaction overwrites them.
        assert not (small_disk / "r.db-journal").exists()

        async with aiohttp.ClientSession() as session:
            async with session.get(runtime.address + "/healthz") as response:
                assert response.status == 200
                health = await response.json()
            assert health["scheduler"] == "running"
            assert health["accounts"]["shop"]["state"] == "failing"

            # Meta gets a 503 and delivers again later; a 500 would look like our bug.
            body, headers = meta.signed_webhook(APP_SECRET, meta.message_webhook("100", hooked))
            async with session.post(
                runtime.address + "/hooks/meta", data=body, headers=headers
            ) as response:
                assert response.status == 503
            assert read(database, "SELECT COUNT(*) FROM events") == [(len(mids),)]

            # Two hours later c2 has waited past escalate_after: the alert round must write
            # its level, cannot, logs it and returns (the scheduler calls it again later).
            clock.shift = timedelta(hours=2)
            caplog.clear()
            await runtime.refresh_now()
            failed = [r for r in caplog.records if r.getMessage().startswith("alert round failed")]
            assert len(failed) == 1 and "full" in repr(failed[0].exc_info)
            # The figures are only read: they are still computed on a full disk.
            assert not [r for r in caplog.records if "window figures" in r.getMessage()]
            assert read(database, "SELECT COUNT(*) FROM conversation_alerts") == [(0,)]

            # Space again: the next poll stores everything, the redelivery is accepted.
            filler.unlink()
            filler = None
            healed = await coordinator.poll()
            assert healed.outcome is PollOutcome.SUCCESS and healed.stored == len(new)
            assert coordinator.state is AccountState.OK
            async with session.post(
                runtime.address + "/hooks/meta", data=body, headers=headers
            ) as response:
                assert response.status == 200

        caplog.clear()
        await runtime.refresh_now()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # c2 and c4 wait unanswered for two hours: one alert each, the one the full disk
        # refused included.
        waiting = read(
            database,
            f"SELECT thread_id FROM events WHERE message_id IN ('{mids[2]}', '{hooked}')",
        )
        assert len(waiting) == 2
        alerts = read(database, "SELECT thread_id, level FROM conversation_alerts")
        assert sorted(alerts) == sorted((thread, "escalated") for (thread,) in waiting)

        stored = read(database, "SELECT message_id FROM events")
        assert sorted(mid for (mid,) in stored) == sorted(mids + new)  # none lost, none twice
        assert read(database, "PRAGMA integrity_check") == [("ok",)]
        assert read(database, "SELECT value, updated_at FROM cursors") != cursor_before
    finally:
        if filler is not None:
            filler.unlink()
        await runtime.stop()
        context.close()
