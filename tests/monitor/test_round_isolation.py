"""A failure in one wait stays there: the rounds decide, alert and count for everyone else.

Rows written by a version that did not check times at intake can hold waits opened in year
9999 (no deadline a datetime can hold) or year 1. Before issue 14, one such wait made every
alert round fail with OverflowError: no SLI outcome and no conversation alert for any account,
across restarts, with nothing in /metrics and /healthz answering 200.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine, delete, insert, text

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.core.round_health import GRACE_INTERVALS, RoundHealth
from monitor.export.metrics import Metrics
from monitor.notify.alert_cycle import AlertCycle
from monitor.notify.receivers import WebhookReceiver
from monitor.service.runtime import Runtime
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS, WAITS

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NINES = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Recorder:
    """A local webhook receiver that keeps what it gets."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            self.bodies.append(await request.json())
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        return app


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    server = TestServer(recorder.app(), host="127.0.0.1")
    await server.start_server()
    yield recorder, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def customer(account: str, thread: str, message_id: str, minute: float, role: str) -> Event:
    return Event(
        "facebook",
        account,
        "dm",
        thread,
        message_id,
        role,  # type: ignore[arg-type]
        T0 + timedelta(minutes=minute),
    )


def store_good_traffic(engine: Engine, directory: AccountDirectory) -> None:
    """shop-a's customer waits from T0; shop-b's is answered 3 minutes after asking."""
    Ingestor(engine, directory).ingest(
        [
            customer("shop-a", "a1", "qa", 0, "customer"),
            customer("shop-b", "b1", "qb", 2, "customer"),
            customer("shop-b", "b1", "rb", 5, "business"),
        ],
        seen_at=T0 + timedelta(minutes=6),
    )


def poison(engine: Engine, directory: AccountDirectory, account: str, opened: datetime) -> None:
    """An open wait as a version without intake checks stored it (straight into the tables)."""
    with engine.begin() as connection:
        account_id = directory.ensure(connection, {("facebook", account)})[("facebook", account)]
        connection.execute(
            insert(EVENTS).values(
                account_id=account_id,
                channel="dm",
                thread_id=f"{account}-t",
                message_id=f"{account}-m",
                author_role="customer",
                created_at=opened,
                first_seen_at=T0,
            )
        )
        connection.execute(
            insert(WAITS).values(
                account_id=account_id,
                channel="dm",
                thread_id=f"{account}-t",
                derivation=directory.policy(account).rule_for("dm").key(),
                opened_at=opened,
                opened_by=f"{account}-m",
                tier="standard",
            )
        )


def failures(metrics: Metrics, round_name: str) -> float:
    value = metrics.registry.get_sample_value(
        "replywatch_round_failures_total", {"round": round_name}
    )
    return value or 0.0


def read(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(text(query)))


async def test_a_poisoned_wait_is_skipped_and_everyone_else_is_decided_and_alerted(
    engine: Engine, receiver: tuple[Recorder, str], caplog: pytest.LogCaptureFixture
) -> None:
    """9999 and year-1 waits stored: the others get outcomes and alerts; counted, logged once."""
    recorder, url = receiver
    directory = AccountDirectory(Config.empty())
    store_good_traffic(engine, directory)
    poison(engine, directory, "poisoned", NINES)
    poison(engine, directory, "ancient", YEAR_ONE)
    metrics = Metrics()
    rounds = RoundHealth(logging.getLogger("test.rounds"), metrics)
    clock = Clock(T0 + timedelta(minutes=20))
    cycle = AlertCycle(engine, directory, [WebhookReceiver("hook", url)], clock, rounds)
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        await cycle.run(session, asyncio.Lock())
        assert read(engine, "SELECT thread_id, outcome FROM wait_outcomes") == [
            ("a1", "missed"),
            ("b1", "met"),
        ]
        assert read(engine, "SELECT thread_id, level FROM conversation_alerts") == [
            ("a1", "breach")
        ]
        assert [(b["account"], b["level"]) for b in recorder.bodies] == [("shop-a", "breach")]
        assert failures(metrics, "outcomes") == 1.0  # the 9999 wait; year 1 is long past
        skipped = [r for r in caplog.records if r.name == "test.rounds"]
        assert len(skipped) == 1 and skipped[0].levelno == logging.ERROR
        message = skipped[0].getMessage()
        assert "outcomes round skipped 1 item(s)" in message
        assert "'poisoned-t' opened 9999-12-31T23:59:59+00:00: OverflowError" in message

        # The next rounds skip it again: counted each time, logged no more.
        caplog.clear()
        clock.now += timedelta(minutes=45)
        await cycle.run(session, asyncio.Lock())
        assert failures(metrics, "outcomes") == 2.0
        assert [(b["account"], b["level"]) for b in recorder.bodies][-1] == (
            "shop-a",
            "escalated",
        )
        assert not [r for r in caplog.records if r.name == "test.rounds"]

        # Removed: the round handles every item again, and says so once.
        with engine.begin() as connection:
            connection.execute(delete(WAITS).where(WAITS.c.opened_at == NINES))
        clock.now += timedelta(minutes=1)
        await cycle.run(session, asyncio.Lock())
        await cycle.run(session, asyncio.Lock())
    assert failures(metrics, "outcomes") == 2.0
    recovered = [r.getMessage() for r in caplog.records if r.name == "test.rounds"]
    assert recovered == ["outcomes round handles every item again"]
    last = metrics.registry.get_sample_value(
        "replywatch_round_last_success_timestamp_seconds", {"round": "outcomes"}
    )
    assert last == clock.now.timestamp()


CONFIG = """
[[accounts]]
name = "shop-a"
platform = "facebook"
source = "push"

[[accounts]]
name = "shop-b"
platform = "facebook"
source = "push"
"""


async def test_the_monitor_keeps_its_counters_and_health_with_a_poisoned_store(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Through `replywatch run`'s rounds, and again after a restart: counters, 200, a count."""
    (tmp_path / "replywatch.toml").write_text(CONFIG)
    config = load_config(tmp_path / "replywatch.toml")
    directory = AccountDirectory(config)
    engine = open_engine(sqlite_url)
    store_good_traffic(engine, directory)
    poison(engine, directory, "poisoned", NINES)
    engine.dispose()
    for minutes in (20, 40):  # the second monitor is the restart
        context = AppContext.open(tmp_path / "replywatch.toml", sqlite_url)
        clock = Clock(T0 + timedelta(minutes=minutes))
        runtime = Runtime(context, port=0, figures_interval=3600, clock=clock)
        await runtime.start()
        # The test drives the rounds (the scheduler's first one, due at a past time, misfires).
        runtime.scheduler.remove_job("figures")
        try:
            await runtime.refresh_now()
            async with (
                aiohttp.ClientSession() as session,
                session.get(runtime.address + "/metrics") as response,
            ):
                exposition = await response.text()
            healthy, body = runtime.health()
        finally:
            await runtime.stop()
            context.close()
        assert 'replywatch_sli_outcomes_total{platform="facebook",account="shop-a"' in exposition
        assert 'account="shop-b",outcome="met"} 1\n' in exposition
        assert 'replywatch_round_failures_total{round="outcomes"} 1.0' in exposition
        assert 'replywatch_round_failures_total{round="figures"} 0.0' in exposition
        # Skipping one item is not an unhealthy monitor: it is counted and ticketed instead.
        assert healthy and body["rounds"]["outcomes"]["skipping_items"] is True


def test_round_health_logs_changes_only_and_judges_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing: logged once with the traceback; unhealthy only past GRACE_INTERVALS intervals."""
    metrics = Metrics()
    rounds = RoundHealth(logging.getLogger("test.grace"), metrics)
    start = T0
    rounds.start(["figures"], start, 15.0)
    error = OSError("disk I/O error")
    for step in range(1, 5):
        rounds.failed(("figures",), start + timedelta(seconds=15 * step), error, "figures failed")
    grace = timedelta(seconds=15 * GRACE_INTERVALS)
    assert rounds.unhealthy(["figures"], start + grace) == []
    reasons = rounds.unhealthy(["figures"], start + grace + timedelta(seconds=1))
    assert len(reasons) == 1 and "OSError: disk I/O error" in reasons[0]
    assert failures(metrics, "figures") == 4.0
    logged = [r for r in caplog.records if r.name == "test.grace"]
    assert [r.getMessage() for r in logged] == ["figures failed"]
    assert logged[0].exc_info is not None and logged[0].exc_info[1] is error
    rounds.succeeded("figures", start + timedelta(minutes=2))
    assert rounds.unhealthy(["figures"], start + timedelta(hours=1)) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "test.grace"]
    assert messages[-1].startswith("figures round recovered after 4 failed round(s)")
