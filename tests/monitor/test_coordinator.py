"""The polling policy: backoff, rate limits, paused accounts, transition logs, atomic cursor."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from sqlalchemy import select

from connectors.base import Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from monitor.config.loading import Config
from monitor.core.polls import AccountState, PollOutcome
from monitor.polling.coordinator import PollCoordinator
from monitor.store.accounts import AccountDirectory
from monitor.store.cursors import decode_cursor
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import CURSORS, EVENTS

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class ScriptedConnector:
    """Returns or raises the next scripted item on each fetch, recording the cursors asked for."""

    platform: ClassVar[str] = "facebook"
    script: list[FetchResult | Exception] = field(default_factory=list)
    cursors: list[Mapping[str, str]] = field(default_factory=list)
    closed: bool = False

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        self.cursors.append(dict(cursor))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True


def message(message_id: str, minutes: float, role: str = "customer") -> Event:
    return Event(
        "facebook",
        "shop",
        "dm",
        "t1",
        message_id,
        role,  # type: ignore[arg-type]
        T0 + timedelta(minutes=minutes),
    )


@pytest.fixture
def ingestor(sqlite_url: str) -> Iterator[Ingestor]:
    """A real store behind the coordinator."""
    engine = open_engine(sqlite_url)
    yield Ingestor(engine, AccountDirectory(Config.empty()))
    engine.dispose()


def coordinator_for(
    connector: ScriptedConnector, ingestor: Ingestor, clock: FakeClock
) -> PollCoordinator:
    """A coordinator storing into ``ingestor`` with 60 s interval and no jitter."""

    async def load() -> Mapping[str, str]:
        with ingestor.engine.connect() as connection:
            value = connection.execute(select(CURSORS.c.value)).scalar_one_or_none()
        return decode_cursor(value)

    async def store(result: FetchResult, cursor: Mapping[str, str]) -> int:
        return ingestor.ingest(
            result.events, cursor=("facebook", "shop", cursor), seen_at=clock()
        ).stored

    return PollCoordinator(
        "facebook",
        "shop",
        connector,
        timedelta(seconds=60),
        load,
        store,
        clock=clock,
        jitter=0.0,
        rng=random.Random(1),
    )


async def test_success_stores_events_and_cursor_then_resumes_from_it(ingestor: Ingestor) -> None:
    """A successful poll stores events with its cursor; the next poll starts from it."""
    clock = FakeClock()
    connector = ScriptedConnector(
        [
            FetchResult((message("m1", 0), message("m2", 3, "business")), {"dm": "A"}),
            FetchResult((), {"dm": "B"}),
        ]
    )
    coordinator = coordinator_for(connector, ingestor, clock)
    record = await coordinator.poll()
    assert record.outcome is PollOutcome.SUCCESS and record.stored == 2
    assert record.next_poll_at == T0 + timedelta(seconds=60)
    clock.tick(60)
    await coordinator.poll()
    assert connector.cursors == [{}, {"dm": "A"}]
    assert coordinator.state is AccountState.OK and coordinator.last_success == clock.now


async def test_backoff_doubles_and_is_capped(ingestor: Ingestor) -> None:
    """Connection failures back off 60, 120, 240 s ... up to 30 minutes."""
    clock = FakeClock()
    connector = ScriptedConnector([ConnectorConnectionError("boom")] * 8)
    coordinator = coordinator_for(connector, ingestor, clock)
    delays = []
    for _ in range(8):
        record = await coordinator.poll()
        assert record.next_poll_at is not None
        delays.append((record.next_poll_at - clock.now).total_seconds())
    assert delays == [60, 120, 240, 480, 960, 1800, 1800, 1800]


async def test_rate_limit_waits_what_the_platform_asks(ingestor: Ingestor) -> None:
    """A 429 with retry_after 900 s delays the next poll by exactly that."""
    clock = FakeClock()
    connector = ScriptedConnector(
        [
            ConnectorRateLimited("slow down", retry_after=900),
            ConnectorRateLimited("slow down", retry_after=5),
        ]
    )
    coordinator = coordinator_for(connector, ingestor, clock)
    first = await coordinator.poll()
    second = await coordinator.poll()
    assert first.outcome is PollOutcome.RATE_LIMITED
    assert first.next_poll_at == T0 + timedelta(seconds=900)
    # Never sooner than the account's own interval.
    assert second.next_poll_at == T0 + timedelta(seconds=60)
    assert coordinator.state is AccountState.RATE_LIMITED


async def test_auth_error_pauses_and_logs_once_loudly(
    ingestor: Ingestor, caplog: pytest.LogCaptureFixture
) -> None:
    """An expired token pauses the account with one ERROR line; no next poll is planned."""
    clock = FakeClock()
    connector = ScriptedConnector([ConnectorAuthError("token expired (190/463)")] * 2)
    coordinator = coordinator_for(connector, ingestor, clock)
    with caplog.at_level(logging.INFO, logger="monitor.coordinator"):
        first = await coordinator.poll()
        await coordinator.poll()
    assert first.outcome is PollOutcome.AUTH and first.next_poll_at is None
    assert coordinator.paused
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "paused" in errors[0].getMessage()


async def test_logs_only_on_transitions(
    ingestor: Ingestor, caplog: pytest.LogCaptureFixture
) -> None:
    """Three failures log 'unavailable' once; the recovery logs 'recovered' once."""
    clock = FakeClock()
    connector = ScriptedConnector(
        [ConnectorConnectionError("down")] * 3 + [FetchResult((), {}), FetchResult((), {})]
    )
    coordinator = coordinator_for(connector, ingestor, clock)
    with caplog.at_level(logging.INFO, logger="monitor.coordinator"):
        for _ in range(5):
            await coordinator.poll()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("source unavailable" in m for m in messages) == 1
    assert sum("source recovered" in m for m in messages) == 1


async def test_store_failure_keeps_the_old_cursor(
    ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When storing fails nothing of the poll is kept; the next poll asks from the old cursor."""
    clock = FakeClock()
    connector = ScriptedConnector(
        [
            FetchResult((message("m1", 0),), {"dm": "A"}),
            FetchResult((message("m2", 1),), {"dm": "B"}),
            FetchResult((message("m2", 1),), {"dm": "B"}),
        ]
    )
    coordinator = coordinator_for(connector, ingestor, clock)
    await coordinator.poll()
    import monitor.store.ingest as ingest_module

    def broken(*_args: object, **_kwargs: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module, "_merge_events", broken)
    record = await coordinator.poll()
    assert record.outcome is PollOutcome.STORE
    monkeypatch.undo()
    await coordinator.poll()
    assert connector.cursors == [{}, {"dm": "A"}, {"dm": "A"}]
    with ingestor.engine.connect() as connection:
        ids = connection.execute(select(EVENTS.c.message_id)).scalars().all()
    assert sorted(ids) == ["m1", "m2"]


async def test_connector_bug_does_not_escape(ingestor: Ingestor) -> None:
    """An unexpected exception becomes a 'crash' outcome with backoff, not a dead job."""
    connector = ScriptedConnector([KeyError("surprise"), ConnectorResponseError("bad json")])
    coordinator = coordinator_for(connector, ingestor, FakeClock())
    assert (await coordinator.poll()).outcome is PollOutcome.CRASH
    assert (await coordinator.poll()).outcome is PollOutcome.RESPONSE
    assert coordinator.failures == 2


async def test_polls_of_one_account_never_overlap(ingestor: Ingestor) -> None:
    """Two poll() calls at once run one after the other."""
    gate = asyncio.Event()
    active = 0
    peak = 0

    class Slow(ScriptedConnector):
        async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await gate.wait()
            active -= 1
            return FetchResult((), {})

    coordinator = coordinator_for(Slow(), ingestor, FakeClock())
    both = asyncio.gather(coordinator.poll(), coordinator.poll())
    await asyncio.sleep(0)
    gate.set()
    await both
    assert peak == 1


def test_damaged_cursor_restarts_backfill() -> None:
    """A cursor that is not a JSON object of strings reads as empty."""
    assert decode_cursor('{"dm": "A"}') == {"dm": "A"}
    assert decode_cursor("not json") == {}
    assert decode_cursor("[1, 2]") == {}
    assert decode_cursor(None) == {}
