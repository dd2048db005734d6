"""Group commit: polls finishing together share a transaction; a bad one fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from connectors.base import Event
from monitor.config.loading import Config
from monitor.polling.group_commit import GroupCommit
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.recent import RecentlyStored
from monitor.store.tables import CURSORS

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def dm(account: str, message_id: str, minutes: float, role: str = "customer") -> Event:
    return Event(
        "facebook",
        account,
        "dm",
        "t",
        message_id,
        role,  # type: ignore[arg-type]
        T0 + timedelta(minutes=minutes),
    )


@pytest.fixture
def ingestor(sqlite_url: str) -> Iterator[Ingestor]:
    """An ingestor that remembers what it stored, counting its transactions."""
    engine = open_engine(sqlite_url)
    ingestor = Ingestor(engine, AccountDirectory(Config.empty()), recent=RecentlyStored())
    ingestor.commits = 0  # type: ignore[attr-defined]

    def count(_connection: object) -> None:
        ingestor.commits += 1  # type: ignore[attr-defined]

    event.listen(engine, "commit", count)
    yield ingestor
    engine.dispose()


async def test_polls_in_one_window_share_one_transaction(ingestor: Ingestor) -> None:
    """Three accounts' polls arriving together are one commit, each with its own cursor."""
    commits = GroupCommit(ingestor, asyncio.Lock(), lambda: T0, window=0.01)
    stored = await asyncio.gather(
        commits.store("facebook", "a", [dm("a", "1", 0), dm("a", "2", 1, "business")], {"dm": "A"}),
        commits.store("facebook", "b", [dm("b", "3", 0)], {"dm": "B"}),
        commits.store("facebook", "c", [], {"dm": "C"}),
    )
    assert stored == [2, 1, 0]
    assert ingestor.commits == 1  # type: ignore[attr-defined]
    with ingestor.engine.connect() as connection:
        assert sorted(connection.execute(select(CURSORS.c.value)).scalars()) == [
            '{"dm": "A"}',
            '{"dm": "B"}',
            '{"dm": "C"}',
        ]


async def test_a_poll_that_brings_nothing_new_skips_the_store(ingestor: Ingestor) -> None:
    """The same events with the same cursor again: no transaction at all."""
    commits = GroupCommit(ingestor, asyncio.Lock(), lambda: T0, window=0.01)
    await commits.store("facebook", "a", [dm("a", "1", 0)], {"dm": "A"})
    before = ingestor.commits  # type: ignore[attr-defined]
    assert await commits.store("facebook", "a", [dm("a", "1", 0)], {"dm": "A"}) == 0
    assert ingestor.commits == before  # type: ignore[attr-defined]
    # A moved cursor or an earlier time is a change and is stored.
    await commits.store("facebook", "a", [dm("a", "1", 0)], {"dm": "A2"})
    assert ingestor.commits == before + 1  # type: ignore[attr-defined]


async def test_one_bad_poll_fails_alone(
    ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the shared transaction fails, each poll is retried alone; only the bad one fails."""
    real = ingestor.ingest

    def picky(events: list[Event], **kwargs: object) -> object:
        if any(e.account == "bad" for e in events):
            raise ValueError("this poll cannot be stored")
        return real(events, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingestor, "ingest", picky)
    commits = GroupCommit(ingestor, asyncio.Lock(), lambda: T0, window=0.01)
    good, bad = await asyncio.gather(
        commits.store("facebook", "good", [dm("good", "1", 0)], {"dm": "G"}),
        commits.store("facebook", "bad", [dm("bad", "2", 0)], {"dm": "B"}),
        return_exceptions=True,
    )
    assert good == 1
    assert isinstance(bad, ValueError)
