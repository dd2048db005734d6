"""Ingest: bulk, idempotent, order-independent, atomic with the cursor; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import CURSORS, EVENTS, WAITS

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def event(message_id: str, role: str, minutes: float, thread: str = "t1", **kw: object) -> Event:
    """A DM event on account ``shop`` at T0 + minutes."""
    fields: dict[str, object] = {
        "platform": "facebook",
        "account": "shop",
        "channel": "dm",
        "thread_id": thread,
        "message_id": message_id,
        "author_role": role,
        "created_at": T0 + timedelta(minutes=minutes),
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def stored_waits(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                WAITS.c.thread_id,
                WAITS.c.opened_by,
                WAITS.c.opened_at,
                WAITS.c.closed_by,
                WAITS.c.closed_at,
                WAITS.c.response_seconds,
                WAITS.c.tier,
            ).order_by(WAITS.c.thread_id, WAITS.c.opened_at)
        )
        return [tuple(row) for row in rows]


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
def ingestor(store_url: str) -> Iterator[Ingestor]:
    """An ingestor on a fresh store (SQLite and PostgreSQL)."""
    engine = open_engine(store_url)
    yield Ingestor(engine, AccountDirectory(Config.empty()))
    engine.dispose()


def test_waits_are_derived_and_times_are_utc(ingestor: Ingestor) -> None:
    """A customer turn and the business reply give one closed wait of 7 minutes."""
    result = ingestor.ingest(
        [event("m1", "customer", 0), event("m2", "customer", 3), event("m3", "business", 7)]
    )
    assert (result.stored, result.duplicates, result.waits) == (3, 0, 1)
    [wait] = stored_waits(ingestor.engine)
    assert wait[1] == "m1" and wait[3] == "m3"
    assert wait[2] == T0 and wait[2].tzinfo is not None  # type: ignore[union-attr]
    assert wait[5] == 420.0  # 7 min; the second customer turn keeps the opening time


def test_same_events_twice_change_nothing(ingestor: Ingestor) -> None:
    """Re-delivery counts once: no new events, the same waits."""
    batch = [
        event("m1", "customer", 0),
        event("m2", "business", 5),
        event("m3", "customer", 30, thread="t2"),
    ]
    ingestor.ingest(batch)
    before = stored_waits(ingestor.engine)
    again = ingestor.ingest(list(reversed(batch)))
    assert (again.stored, again.duplicates) == (0, 3)
    assert stored_waits(ingestor.engine) == before
    assert count(ingestor.engine, EVENTS) == 3


def test_any_arrival_order_gives_the_same_waits(store_url: str) -> None:
    """Shuffled batches of a conversation yield exactly the waits of one sorted batch."""
    rng = random.Random(7)
    conversation = []
    minute = 0.0
    for i in range(60):
        minute += rng.choice([0, 0.5, 2, 20, 90])
        role = rng.choice(["customer", "customer", "business", "automated"])
        conversation.append(event(f"m{i}", role, minute, thread=f"t{i % 4}"))
    ingestor = Ingestor(open_engine(store_url), AccountDirectory(Config.empty()))
    ingestor.ingest(sorted(conversation, key=lambda e: e.created_at))
    expected = stored_waits(ingestor.engine)
    assert len(expected) > 5
    for _attempt in range(3):
        with ingestor.engine.begin() as connection:
            connection.execute(WAITS.delete())
            connection.execute(EVENTS.delete())
        shuffled = conversation[:]
        rng.shuffle(shuffled)
        for start in range(0, len(shuffled), 7):
            ingestor.ingest(shuffled[start : start + 7])
        assert stored_waits(ingestor.engine) == expected
    ingestor.engine.dispose()


def test_reply_time_never_moves_later(ingestor: Ingestor) -> None:
    """A review reply re-seen with a later (edited) time keeps its first time (rule 8)."""
    review = event("r1", "customer", 0, thread="r1", channel="review", rating=2)
    reply = event("r1:reply", "business", 120, thread="r1", channel="review")
    ingestor.ingest([review, reply], seen_at=T0 + timedelta(minutes=130))
    edited = event("r1:reply", "business", 600, thread="r1", channel="review")
    ingestor.ingest([edited], seen_at=T0 + timedelta(minutes=700))
    [wait] = stored_waits(ingestor.engine)
    assert wait[4] == T0 + timedelta(minutes=120)
    assert wait[6] == "negative"
    earlier = event("r1:reply", "business", 60, thread="r1", channel="review")
    ingestor.ingest([earlier], seen_at=T0 + timedelta(minutes=800))
    assert stored_waits(ingestor.engine)[0][4] == T0 + timedelta(minutes=60)


def test_review_reply_first_seen_before_its_platform_time(ingestor: Ingestor) -> None:
    """When the platform's reply time is later than when we first saw it, first-seen wins."""
    review = event("r2", "customer", 0, thread="r2", channel="review", rating=5)
    reply = event("r2:reply", "business", 500, thread="r2", channel="review")
    ingestor.ingest([review, reply], seen_at=T0 + timedelta(minutes=90))
    assert stored_waits(ingestor.engine)[0][5] == 90 * 60


def test_late_event_rederives_its_thread(ingestor: Ingestor) -> None:
    """A backfilled earlier customer turn moves the wait's opening time."""
    ingestor.ingest([event("m2", "customer", 10), event("m3", "business", 15)])
    ingestor.ingest([event("m1", "customer", 2)])
    [wait] = stored_waits(ingestor.engine)
    assert wait[1] == "m1" and wait[5] == 13 * 60


def test_cursor_is_saved_with_the_events(ingestor: Ingestor) -> None:
    """The cursor lands in the same transaction as the events it covers."""
    ingestor.ingest([event("m1", "customer", 0)], cursor=("facebook", "shop", {"dm": "2026"}))
    with ingestor.engine.connect() as connection:
        value = connection.execute(select(CURSORS.c.value)).scalar_one()
    assert json.loads(value) == {"dm": "2026"}


def test_failure_mid_batch_stores_nothing(
    ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while deriving waits rolls back the events and the cursor too."""
    ingestor.ingest([event("m0", "customer", 0, thread="t0")])
    import monitor.store.ingest as ingest_module

    def explode(*_args: object, **_kw: object) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest_module, "derive_waits", explode)
    with pytest.raises(RuntimeError):
        ingestor.ingest(
            [event("m1", "customer", 1), event("m2", "business", 2)],
            cursor=("facebook", "shop", {"dm": "later"}),
        )
    monkeypatch.undo()
    assert count(ingestor.engine, EVENTS) == 1
    assert count(ingestor.engine, CURSORS) == 0
    # The next attempt stores everything: nothing was lost.
    result = ingestor.ingest([event("m1", "customer", 1), event("m2", "business", 2)])
    assert result.stored == 2


def test_policy_change_rederives_at_start(tmp_path: Path, sqlite_url: str) -> None:
    """Switching an account to meta-badge re-derives its stored waits when the store opens."""
    config_path = tmp_path / "c.toml"
    base = '[[accounts]]\nname = "shop"\nplatform = "facebook"\nsource = "push"\n'
    config_path.write_text(base)
    context = AppContext.open(config_path, sqlite_url)
    # Two customer turns 1 h apart, each answered: two waits under strict, one under meta-badge.
    context.ingestor().ingest(
        [
            event("a", "customer", 0),
            event("b", "business", 5),
            event("c", "customer", 65),
            event("d", "business", 70),
        ]
    )
    assert len(stored_waits(context.engine)) == 2
    context.close()
    config_path.write_text(base + 'profile = "meta-badge"\n')
    context = AppContext.open(load_config(config_path).path, sqlite_url)
    assert len(stored_waits(context.engine)) == 1
    context.close()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    """The embedded store uses write-ahead logging so readers never block the poller."""
    engine = open_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()
