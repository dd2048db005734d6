"""SQLite locked by another process: the poll fails without moving its cursor, then heals."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from connectors.fakes.meta import FakeMeta
from monitor.config.loading import load_config
from monitor.core.polls import AccountState, PollOutcome
from monitor.service.runtime import Runtime
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine

TOKEN = "EAA-LOCK-TEST-SECRET-TOKEN-8"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    meta.add_page("100", TOKEN)
    now = datetime.now(UTC)
    meta.customer_message("100", "c1", now - timedelta(minutes=9))
    meta.business_reply("100", "c1", now - timedelta(minutes=8))
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_locked_store_delays_the_poll_and_loses_nothing(
    tmp_path: Path, fake: tuple[FakeMeta, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds the write lock: outcome store, cursor unmoved; then stored."""
    meta, url = fake
    monkeypatch.setenv("LOCK_TOKEN", TOKEN)
    (tmp_path / "replywatch.toml").write_text(f"""
[[accounts]]
name = "shop"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "env:LOCK_TOKEN" }}
""")
    config = load_config(tmp_path / "replywatch.toml")
    database = tmp_path / "r.db"
    engine = open_engine(f"sqlite:///{database}", sqlite_busy_seconds=0.3)
    context = AppContext(config, engine, AccountDirectory(config))
    context.sync()
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600)
    await runtime.start()
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        coordinator = runtime.coordinators["shop"]
        other.execute("BEGIN EXCLUSIVE")
        locked = await coordinator.poll()
        assert locked.outcome is PollOutcome.STORE
        assert coordinator.state is AccountState.FAILING
        other.execute("COMMIT")
        counts = other.execute("SELECT COUNT(*) FROM events").fetchone()
        cursors = other.execute("SELECT COUNT(*) FROM cursors").fetchone()
        assert counts == (0,) and cursors == (0,)  # nothing half-written, cursor unmoved
        meta.customer_message("100", "c2", datetime.now(UTC))
        healed = await coordinator.poll()
        assert healed.outcome is PollOutcome.SUCCESS and healed.stored == 3
        assert coordinator.state is AccountState.OK
        assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (3,)
        assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        other.close()
        await runtime.stop()
        context.close()
