"""A damaged SQLite file: every command says so in one line; a running monitor says 503.

Two kinds of damage: garbage over the header (the file is no database at all) and random
bytes over pages in the middle (it opens, and fails where those pages are read). Before issue
14 both gave a traceback of about 110 lines from every command, and ``replywatch run`` went on
answering /healthz with 200 while no round could read the store.
"""

from __future__ import annotations

import logging
import random
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.core.round_health import GRACE_INTERVALS
from monitor.service.runtime import Runtime
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from tests.conftest import RunCli

CONFIG = """
[[accounts]]
name = "shop"
platform = "facebook"
source = "push"
"""
PAGE = 4096
EVENTS = 3000


def fill(database: Path, config: Config, now: datetime) -> None:
    """A store with a few thousand waiting customers, all inside the last hour."""
    engine = open_engine(f"sqlite:///{database}")
    events = [
        Event(
            "facebook",
            "shop",
            "dm",
            f"thread-{i}",
            f"message-{i}",
            "customer",
            now - timedelta(seconds=i),
            text_excerpt="x" * 100,
        )
        for i in range(EVENTS)
    ]
    Ingestor(engine, AccountDirectory(config), keep_text=True).ingest(events, seen_at=now)
    engine.dispose()
    checkpoint(database)


def checkpoint(database: Path) -> None:
    """Everything in the main file, no WAL beside it (no connection may be open)."""
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def damage_header(database: Path) -> None:
    with database.open("r+b") as handle:
        handle.write(b"not a database, garbage " * 8)


def damage_middle(database: Path) -> None:
    """Random bytes over every other page of the middle third (seeded: the same each run)."""
    pages = database.stat().st_size // PAGE
    noise = random.Random(14)
    with database.open("r+b") as handle:
        for page in range(pages // 3, 2 * pages // 3, 2):
            handle.seek(page * PAGE)
            handle.write(noise.randbytes(PAGE))


@dataclass
class Store:
    """A filled store and its config, damaged by the test."""

    config_path: Path
    database: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.database}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    config_path = tmp_path / "replywatch.toml"
    config_path.write_text(CONFIG)
    database = tmp_path / "rw.db"
    fill(database, load_config(config_path), datetime.now(UTC))
    yield Store(config_path, database)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["stats", "--by", "channel"],
        ["db", "current"],
        ["db", "upgrade"],
        ["summary", "--format", "md"],
        ["run", "--listen", "127.0.0.1:0"],
        ["import", "events.csv"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_file_that_is_no_database_is_one_line_and_exit_2(
    store: Store, run_cli: RunCli, command: list[str]
) -> None:
    """Garbage over the header: every command names the file and what to do."""
    damage_header(store.database)
    csv = store.database.parent / "events.csv"
    csv.write_text("platform,account,thread_id,message_id,author_role,created_at\n")
    command = [str(csv) if part == "events.csv" else part for part in command]
    result = run_cli("--config", str(store.config_path), "--database", store.url, *command)
    assert result.code == 2
    line = one_line(result.err)
    assert line == (
        f"replywatch: database file {store.database} is not a valid SQLite database "
        "(file is not a database): restore it from a backup or point --database elsewhere"
    )


def test_a_file_with_damaged_pages_is_one_line_and_exit_2(store: Store, run_cli: RunCli) -> None:
    """Random middle pages: it opens, and the command that reads them says it in one line."""
    damage_middle(store.database)
    result = run_cli("--config", str(store.config_path), "--database", store.url, "stats")
    assert result.code == 2
    line = one_line(result.err)
    assert line == (
        f"replywatch: database file {store.database} is damaged (database disk image is "
        "malformed): restore it from a backup or point --database elsewhere"
    )


class Clock:
    """Real time at the start (the scheduler's first round runs), then moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def health(runtime: Runtime) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(runtime.address + "/healthz") as response,
    ):
        return response.status, await response.json()


async def test_healthz_says_503_when_the_rounds_fail_past_the_grace_and_200_after(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Damaged while running: 200 up to 3 intervals of failing rounds, 503 past, 200 restored."""
    context = AppContext.open(store.config_path, store.url)
    clock = Clock()
    interval = 3600.0
    runtime = Runtime(context, port=0, figures_interval=interval, clock=clock)
    await runtime.start()
    try:
        await runtime.figures_ready.wait()
        assert (await health(runtime))[0] == 200
        started = clock.now

        context.engine.dispose()  # no connection (or its page cache) keeps the good pages
        checkpoint(store.database)
        backup = store.database.with_suffix(".backup")
        shutil.copy(store.database, backup)
        damage_middle(store.database)
        caplog.clear()
        grace = timedelta(seconds=GRACE_INTERVALS * interval)
        for hours in range(1, GRACE_INTERVALS + 1):
            clock.now = started + timedelta(hours=hours)
            await runtime.refresh_now()
            status, body = await health(runtime)
            # Up to and including the grace: a failing round may be a blip.
            assert status == 200, body
        assert clock.now - started == grace
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert sorted(r.getMessage().split(";")[0] for r in errors) == [
            "alert round failed",
            "could not refresh the window figures",
        ]
        assert all("malformed" in repr(r.exc_info[1]) for r in errors if r.exc_info)

        clock.now += timedelta(seconds=1)
        status, body = await health(runtime)
        assert status == 503 and body["status"] == "failing"
        reason = str(body["reason"])
        for round_name in ("figures", "outcomes", "alerts"):
            assert f"the {round_name} round has not succeeded since {started.isoformat()}" in reason
        assert "database disk image is malformed" in reason
        assert runtime.metrics.registry.get_sample_value(
            "replywatch_round_failures_total", {"round": "figures"}
        ) == float(GRACE_INTERVALS)

        # Restored from the backup: the next round succeeds and /healthz says 200 again.
        context.engine.dispose()
        shutil.copy(backup, store.database)
        caplog.clear()
        clock.now += timedelta(minutes=1)
        await runtime.refresh_now()
        status, body = await health(runtime)
        assert status == 200 and body["status"] == "ok", body
        recovered = sorted(r.getMessage().split(" after")[0] for r in caplog.records)
        assert [m for m in recovered if "recovered" in m] == [
            "alerts round recovered",
            "figures round recovered",
            "outcomes round recovered",
        ]
    finally:
        await runtime.stop()
        context.close()
