"""PostgreSQL restarted under a running monitor: it waits, retries and loses nothing.

Each test gets a private PostgreSQL server (the shared one on port 5432 is never touched) and
runs the monitor on it, driving the polls itself. The server is taken down twice, once with a
``fast`` shutdown (sessions rolled back and disconnected) and once with ``immediate`` (a crash:
crash recovery on the next start):

1. between two polls: the monitor's idle pooled connections are all dead afterwards, and the
   next poll must still succeed at its first attempt (the pool checks before it lends one);
2. in the middle of a poll's transaction: its events, waits and cursor are written, its
   COMMIT not yet sent (the test holds it back with SQLAlchemy's ``commit`` hook and checks
   on the server that the transaction is open with those writes). The poll must end as
   ``store``, and after the restart nothing of that transaction may be in the store.

While the server is down polls fail as ``store``, figures and alert rounds log and carry on,
and ``/healthz`` answers. Once it is back on the same port, without restarting the monitor,
the next poll stores everything: the events equal the fake's messages with no id twice, and
the waits equal those of a clean run on a fresh store.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestServer
from apscheduler.schedulers.base import STATE_PAUSED
from sqlalchemy import Connection, Engine, event, select

from connectors.fakes.meta import FakeMeta
from monitor.core.polls import AccountState, PollOutcome
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from monitor.store.instance_lock import InstanceLock, InstanceLockError
from monitor.store.tables import WAITS
from tests.pg_private import PrivatePostgres, private_postgres

TOKEN = "EAA-PGRESTART-TEST-SECRET-TOKEN-6"
DATABASE = "replywatch"
# A held commit is let go after this long even if the test never releases it (a failed
# assertion), so no worker thread outlives the test.
HOLD_SECONDS = 30.0


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as running:
        yield running


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    meta.add_page("100", TOKEN)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


def connect(server: PrivatePostgres, database: str = DATABASE) -> psycopg.Connection[Any]:
    """A session of the test's own, beside the monitor's."""
    return psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname=database, autocommit=True
    )


def rows(server: PrivatePostgres, query: str) -> list[tuple[Any, ...]]:
    """What a query returns right now, read on a session of its own."""
    with connect(server) as session:
        return list(session.execute(query).fetchall())


class CommitGate:
    """Holds the next COMMIT on an engine back until the test lets it go."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        self.reached = asyncio.Event()
        self._go = threading.Event()
        self._armed = False
        event.listen(engine, "commit", self._on_commit)

    def arm(self) -> None:
        """Hold the next commit (the ingest's: nothing else writes while the test polls)."""
        self._armed = True

    def _on_commit(self, _connection: Connection) -> None:
        # Runs in the store's worker thread, just before COMMIT is sent.
        if not self._armed:
            return
        self._armed = False
        self.loop.call_soon_threadsafe(self.reached.set)
        self._go.wait(HOLD_SECONDS)

    def release(self) -> None:
        """Let the held commit go on (to a server that may be gone meanwhile)."""
        self._go.set()

    def close(self) -> None:
        """Let go of anything held and remove the hook."""
        self.release()
        event.remove(self.engine, "commit", self._on_commit)


def open_writes(server: PrivatePostgres) -> set[str]:
    """The tables an open, uncommitted transaction of another session has written to."""
    found = rows(
        server,
        "SELECT DISTINCT l.relation::regclass::text FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.state = 'idle in transaction' AND a.backend_xid IS NOT NULL "
        "AND a.pid <> pg_backend_pid() AND l.locktype = 'relation' "
        "AND l.mode = 'RowExclusiveLock' AND l.granted",
    )
    return {table for (table,) in found}


def snapshot_time(runtime: Runtime) -> float | None:
    """When the figures /metrics serves were computed (None: never)."""
    text = runtime.figures.render_static().decode()
    found = re.search(r"^replywatch_figures_snapshot_timestamp_seconds (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def waits_of(engine: Engine) -> Counter[tuple[Any, ...]]:
    """Every stored wait, without store-specific ids, as a multiset."""
    columns = [c for c in WAITS.c if c.name not in ("id", "account_id")]
    with engine.connect() as connection:
        return Counter(tuple(row) for row in connection.execute(select(*columns)))


def write_config(folder: Path, url: str) -> Path:
    path = folder / "replywatch.toml"
    path.write_text(f"""
[[accounts]]
name = "shop"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
targets = {{ warn_after = "10m", escalate_after = "1h" }}
secrets = {{ access_token = "env:PGRESTART_TOKEN" }}
""")
    return path


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_postgres_restart_delays_polls_and_loses_nothing(
    mode: str,
    server: PrivatePostgres,
    fake: tuple[FakeMeta, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Restart between polls: unnoticed; mid-transaction: store outcome, rolled back, healed."""
    meta, url = fake
    monkeypatch.setenv("PGRESTART_TOKEN", TOKEN)
    config = write_config(tmp_path, url)
    with connect(server, "postgres") as admin:
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    now = datetime.now(UTC)
    mids = [
        meta.customer_message("100", "c1", now - timedelta(minutes=9)),
        meta.business_reply("100", "c1", now - timedelta(minutes=8)),
    ]
    context = AppContext.open(config, server.url(DATABASE))
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600)
    await runtime.start()
    try:
        # The test drives the polls itself; the scheduler keeps running (healthz reports it).
        runtime.scheduler.pause_job("shop")
        coordinator = runtime.coordinators["shop"]
        first = await coordinator.poll()
        assert first.outcome is PollOutcome.SUCCESS
        assert rows(server, "SELECT COUNT(*) FROM events") == [(len(mids),)]

        # 1. Restarted between two polls: every pooled connection is dead, none is lent out.
        mids.append(meta.customer_message("100", "c2", now - timedelta(minutes=1)))
        server.stop(mode)
        server.start()
        unnoticed = await coordinator.poll()
        assert unnoticed.outcome is PollOutcome.SUCCESS and unnoticed.stored == 1
        cursor_before = rows(server, "SELECT value, updated_at FROM cursors")
        assert len(cursor_before) == 1
        waits_before = waits_of(context.engine)

        # 2. Down in the middle of a transaction: everything written, COMMIT not yet sent.
        later = datetime.now(UTC)
        new = [
            meta.customer_message("100", "c3", later - timedelta(seconds=30)),
            meta.business_reply("100", "c3", later - timedelta(seconds=10)),
            meta.customer_message("100", "c4", later),
        ]
        gate = CommitGate(context.engine)
        try:
            gate.arm()
            poll = asyncio.create_task(coordinator.poll())
            await asyncio.wait_for(gate.reached.wait(), HOLD_SECONDS)
            # The server shows the transaction open, with the table locks its writes took.
            assert {"events", "waits", "cursors"} <= open_writes(server)
            await asyncio.to_thread(server.stop, mode)
            gate.release()
            cut = await poll
        finally:
            gate.close()
        assert cut.outcome is PollOutcome.STORE and cut.stored == 0
        assert coordinator.state is AccountState.FAILING

        # 3. While it is down: polls fail as store; figures and alerts log, keep the last
        # figures and return; the process answers /healthz.
        down = await coordinator.poll()
        assert down.outcome is PollOutcome.STORE and down.items >= len(new)
        figures_before = snapshot_time(runtime)
        assert figures_before is not None
        caplog.clear()
        await runtime.refresh_now()
        logged = [r.getMessage() for r in caplog.records if r.exc_info]
        assert any(m.startswith("could not refresh the window figures") for m in logged)
        assert any(m.startswith("alert round failed") for m in logged)
        assert snapshot_time(runtime) == figures_before
        async with (
            aiohttp.ClientSession() as session,
            session.get(runtime.address + "/healthz") as response,
        ):
            assert response.status == 200
            health = await response.json()
        assert health["scheduler"] == "running"
        assert health["accounts"]["shop"]["state"] == "failing"

        # 4. Back on the same port: nothing of the cut transaction survived, not even in
        # crash recovery; the same runtime's next poll stores everything.
        server.start()
        assert rows(server, "SELECT COUNT(*) FROM events") == [(len(mids),)]
        assert waits_of(context.engine) == waits_before
        assert rows(server, "SELECT value, updated_at FROM cursors") == cursor_before
        healed = await coordinator.poll()
        assert healed.outcome is PollOutcome.SUCCESS and healed.stored == len(new)
        assert coordinator.state is AccountState.OK
        caplog.clear()
        await runtime.refresh_now()
        assert not [r for r in caplog.records if r.exc_info]
        figures_after = snapshot_time(runtime)
        assert figures_after is not None and figures_after > figures_before
        # The restart ended the session that held the one-monitor lock; the round above took
        # it again, so a second monitor on this database is still refused.
        second = InstanceLock(context.engine)
        with pytest.raises(InstanceLockError):
            second.acquire()
        assert runtime.lost_lock is None

        stored = rows(server, "SELECT message_id FROM events")
        assert sorted(mid for (mid,) in stored) == sorted(mids + new)  # none lost, none twice
        assert rows(server, "SELECT value, updated_at FROM cursors") != cursor_before
        restarted_waits = waits_of(context.engine)
    finally:
        await runtime.stop()
        context.close()

    # The same traffic on a fresh store, never interrupted, derives the same waits.
    clean = AppContext.open(config, f"sqlite:///{tmp_path / 'clean.db'}")
    reference = Runtime(clean, port=0, first_poll_spread=3600, figures_interval=3600)
    await reference.start()
    try:
        reference.scheduler.pause_job("shop")
        assert (await reference.coordinators["shop"].poll()).outcome is PollOutcome.SUCCESS
        clean_waits = waits_of(clean.engine)
    finally:
        await reference.stop()
        clean.close()
    assert sum(clean_waits.values()) == 4  # c1 and c3 answered, c2 and c4 open
    assert restarted_waits == clean_waits


async def test_a_monitor_whose_lock_was_taken_during_a_restart_stops_working(
    server: PrivatePostgres,
    tmp_path: Path,
    fake: tuple[FakeMeta, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another monitor took the lock while the server was down: this one stops and says so."""
    _meta, url = fake
    monkeypatch.setenv("PGRESTART_TOKEN", TOKEN)
    with connect(server, "postgres") as admin:
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    context = AppContext.open(write_config(tmp_path, url), server.url(DATABASE))
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600)
    await runtime.start()
    intruder = InstanceLock(context.engine)
    try:
        server.stop("fast")
        server.start()
        intruder.acquire()  # the restart freed the lock: a second monitor takes it first
        await runtime.refresh_now()
        assert runtime.lost_lock is not None and "another replywatch" in runtime.lost_lock
        healthy, body = runtime.health()
        assert not healthy and body["status"] == "stopped"
        assert runtime.scheduler.state == STATE_PAUSED  # no more polls or alert rounds
    finally:
        intruder.release()
        await runtime.stop()
        context.close()
