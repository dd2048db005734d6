"""SLI outcomes: decided once at the answer or the deadline, never revised, histogram at targets."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine, func, select

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.config.schema import MetricsModel
from monitor.core.profiles import BUILTIN_PROFILES
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.notify.alert_cycle import AlertCycle
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.sli import (
    OUTCOMES,
    SliTotals,
    decide_outcomes,
    histogram_buckets,
    profile_buckets,
)
from monitor.store.stats import account_stats

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def event(
    message_id: str,
    role: str,
    minute: float,
    thread: str = "t1",
    rating: int | None = None,
    channel: str = "dm",
) -> Event:
    return Event(
        "facebook",
        "shop",
        channel,
        thread,
        message_id,
        role,  # type: ignore[arg-type]
        T0 + timedelta(minutes=minute),
        rating=rating,
    )


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Engine, AccountDirectory, Ingestor]]:
    engine = open_engine(store_url)
    directory = AccountDirectory(Config.empty())
    yield engine, directory, Ingestor(engine, directory)
    engine.dispose()


def decide(engine: Engine, directory: AccountDirectory, now: datetime) -> SliTotals:
    totals = SliTotals(histogram_buckets(BUILTIN_PROFILES.values()))
    with engine.begin() as connection:
        changes = decide_outcomes(connection, lambda _id: directory.policy("shop"), now)
    totals.add(changes)
    return totals


def outcomes(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(OUTCOMES.c.outcome, func.count()).group_by(OUTCOMES.c.outcome)
        )
        return {outcome: int(count) for outcome, count in rows}


def test_met_at_the_answer_missed_at_the_deadline_not_before(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """A 10-minute answer is met; an open wait is missed at 15 min, not at 14."""
    engine, directory, ingestor = store
    ingestor.ingest(
        [
            event("q1", "customer", 0, "a"),
            event("r1", "business", 10, "a"),
            event("q2", "customer", 0, "b"),
        ]
    )
    decide(engine, directory, T0 + timedelta(minutes=14))
    assert outcomes(engine) == {"met": 1}
    decide(engine, directory, T0 + timedelta(minutes=15))
    assert outcomes(engine) == {"met": 1, "missed": 1}
    with engine.connect() as connection:
        decided = connection.execute(
            select(OUTCOMES.c.decided_at).where(OUTCOMES.c.outcome == "missed")
        ).scalar_one()
    assert decided == T0 + timedelta(minutes=15)


def test_a_late_answer_does_not_change_the_outcome_but_enters_the_histogram(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """Missed stays missed; the 40-minute answer lands in the histogram once."""
    engine, directory, ingestor = store
    ingestor.ingest([event("q1", "customer", 0)])
    first = decide(engine, directory, T0 + timedelta(minutes=20))
    assert first.counts[(1, "dm", "standard")].missed == 1
    assert first.counts[(1, "dm", "standard")].answered == 0
    ingestor.ingest([event("r1", "business", 40)])
    later = decide(engine, directory, T0 + timedelta(minutes=41))
    counts = later.counts[(1, "dm", "standard")]
    assert (counts.met, counts.missed, counts.answered) == (0, 0, 1)
    assert counts.response_sum == 40 * 60
    assert outcomes(engine) == {"missed": 1}
    again = decide(engine, directory, T0 + timedelta(minutes=50))
    assert again.counts == {}


def test_a_rebuilt_wait_is_not_decided_twice(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """An earlier message arriving late moves the wait's opening; the decision stands."""
    engine, directory, ingestor = store
    ingestor.ingest([event("q2", "customer", 5)])
    decide(engine, directory, T0 + timedelta(minutes=30))
    assert outcomes(engine) == {"missed": 1}
    ingestor.ingest([event("q1", "customer", 0)])  # the same customer, earlier
    decide(engine, directory, T0 + timedelta(minutes=31))
    assert outcomes(engine) == {"missed": 1}


def test_totals_read_at_start_equal_the_running_totals(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """Loading from the store gives the same counters as counting decision by decision."""
    engine, directory, ingestor = store
    events = []
    for i, minutes in enumerate([1, 5, 14, 15, 16, 60, 300]):
        events += [
            event(f"q{i}", "customer", i, f"t{i}"),
            event(f"r{i}", "business", i + minutes, f"t{i}"),
        ]
    events.append(event("open", "customer", 0, "open"))
    ingestor.ingest(events)
    running = decide(engine, directory, T0 + timedelta(hours=6))
    loaded = SliTotals(running.buckets)
    with engine.connect() as connection:
        loaded.load(connection)
    key = (1, "dm", "standard")
    assert loaded.counts == running.counts
    # 1, 5, 14 and 15 minutes are within 900 s (the bound is inclusive); 16 is not.
    assert (running.counts[key].met, running.counts[key].missed) == (4, 4)
    index = list(running.buckets).index(900.0)
    assert running.cumulative(key)[index] == 4
    assert running.cumulative(key)[-1] == 7


def test_a_reload_puts_new_totals_in_place_without_touching_the_ones_being_read(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """serve reloads in a thread while a scrape renders: the scrape keeps whole old totals.

    Before, the reload cleared the counts and refilled them in two passes, so a scrape in
    between could render outcomes without their histogram, or fail on a changed dict.
    """
    engine, directory, ingestor = store
    ingestor.ingest([event("q1", "customer", 0), event("r1", "business", 5)])
    decide(engine, directory, T0 + timedelta(minutes=10))
    totals = SliTotals(histogram_buckets(BUILTIN_PROFILES.values()))
    with engine.connect() as connection:
        totals.load(connection)
    rendering = totals.counts  # what a scrape in progress holds
    kept = {key: (c.met, c.answered, c.cumulative()) for key, c in rendering.items()}
    ingestor.ingest([event("q2", "customer", 20, "t2"), event("r2", "business", 22, "t2")])
    decide(engine, directory, T0 + timedelta(minutes=30))
    with engine.connect() as connection:
        totals.load(connection)
    key = (1, "dm", "standard")
    assert {k: (c.met, c.answered, c.cumulative()) for k, c in rendering.items()} == kept
    assert kept[key][:2] == (1, 1)
    assert (totals.counts[key].met, totals.counts[key].answered) == (2, 2)


def test_histogram_has_a_bucket_exactly_at_every_target() -> None:
    """900 s, 4 h, 24 h and 48 h are all bucket bounds."""
    bounds = histogram_buckets(BUILTIN_PROFILES.values())
    for target in (900.0, 4 * 3600.0, 86400.0, 172800.0):
        assert target in bounds
    assert list(bounds) == sorted(set(bounds))


def test_old_history_is_not_decided(store: tuple[Engine, AccountDirectory, Ingestor]) -> None:
    """An import of last month's unanswered messages does not become today's misses."""
    engine, directory, ingestor = store
    ingestor.ingest([event("old", "customer", 0)])
    decide(engine, directory, T0 + timedelta(days=30))
    assert outcomes(engine) == {}


def test_counters_and_histogram_are_exported(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """Met/missed per account; the histogram (when switched on) per account and profile."""
    engine, directory, ingestor = store
    ingestor.ingest(
        [
            event("q1", "customer", 0, "a"),
            event("r1", "business", 10, "a"),
            event("q2", "customer", 0, "b"),
        ]
    )
    now = T0 + timedelta(minutes=20)
    totals = decide(engine, directory, now)
    switched = dataclasses.replace(
        directory.config, metrics=MetricsModel(response_time_histogram=True)
    )
    snapshot = FiguresSnapshot(engine, AccountDirectory(switched), lambda: now, totals)
    snapshot.refresh()
    registry = CollectorRegistry()
    registry.register(snapshot)
    account = {"platform": "facebook", "account": "shop"}
    labels = {**account, "profile": "strict"}
    assert (
        registry.get_sample_value("replywatch_sli_outcomes_total", {**account, "outcome": "met"})
        == 1
    )
    assert (
        registry.get_sample_value("replywatch_sli_outcomes_total", {**account, "outcome": "missed"})
        == 1
    )
    # The strict profile's own bounds: one at each of its targets, none past its deadline.
    bounds = [
        sample.labels["le"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "replywatch_response_time_seconds_bucket"
    ]
    assert bounds == [_go(b) for b in profile_buckets(BUILTIN_PROFILES["strict"])] + ["+Inf"]
    assert "172800.0" not in bounds
    assert (
        registry.get_sample_value(
            "replywatch_response_time_seconds_bucket", {**labels, "le": "900.0"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "replywatch_response_time_seconds_bucket", {**labels, "le": "300.0"}
        )
        == 0
    )
    assert registry.get_sample_value("replywatch_response_time_seconds_sum", labels) == 600


def _go(bound: float) -> str:
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.one_of(st.none(), st.integers(1, 120))),
        min_size=1,
        max_size=12,
    )
)
def test_outcomes_agree_with_the_within_target_share(
    threads: list[tuple[int, int | None]],
) -> None:
    """Once every wait is decided, met / (met + missed) is the window's within-target share."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'p.db'}")
        directory = AccountDirectory(Config.empty())
        events = []
        for i, (opened, answer_after) in enumerate(threads):
            events.append(event(f"q{i}", "customer", opened, f"t{i}"))
            if answer_after is not None:
                events.append(event(f"r{i}", "business", opened + answer_after, f"t{i}"))
        Ingestor(engine, directory).ingest(events)
        as_of = T0 + timedelta(hours=24)
        totals = decide(engine, directory, as_of)
        with engine.connect() as connection:
            (row,) = account_stats(connection, directory, as_of=as_of)
        engine.dispose()
    counts = totals.counts[(1, "dm", "standard")]
    assert counts.met + counts.missed == row.figures.waits
    assert row.figures.within_target_share == pytest.approx(counts.met / row.figures.waits)
    assert counts.answered == row.figures.answered


def test_an_account_with_its_own_targets_gets_their_buckets(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Inline targets make a profile of its own: the alert round keeps its bounds, and the
    histogram shows a bucket at the account's 45-minute target (issue 16, a 500 before)."""
    path = tmp_path / "replywatch.toml"
    path.write_text(
        """[metrics]
response_time_histogram = true

[[accounts]]
name = "shop"
platform = "facebook"
source = "push"
targets = { response_target = "45m", warn_after = "3m" }
""",
        encoding="utf-8",
    )
    directory = AccountDirectory(load_config(path))
    engine = open_engine(sqlite_url)
    Ingestor(engine, directory).ingest(
        [event("q1", "customer", 0, "a"), event("r1", "business", 30, "a")]
    )
    cycle = AlertCycle(engine, directory, [], lambda: T0 + timedelta(hours=1))
    with engine.begin() as connection:
        cycle.totals.add(
            decide_outcomes(
                connection, lambda _id: directory.policy("shop"), T0 + timedelta(hours=1)
            )
        )
    snapshot = FiguresSnapshot(engine, directory, lambda: T0 + timedelta(hours=1), cycle.totals)
    snapshot.refresh()
    text = snapshot.render_static().decode()
    engine.dispose()
    assert 'replywatch_response_time_seconds_bucket{platform="facebook",account="shop",' in text
    assert 'le="2700.0"} 1.0\n' in text and 'le="180.0"} 0.0\n' in text


def test_a_reply_in_the_same_second_is_decided_once(
    store: tuple[Engine, AccountDirectory, Ingestor],
) -> None:
    """A wait answered at the instant it opened is met once, not again at every round."""
    engine, directory, ingestor = store
    ingestor.ingest([event("q", "customer", 0), event("a", "business", 0)], seen_at=T0)
    now = T0 + timedelta(minutes=5)
    rounds = []
    for _ in range(3):
        with engine.begin() as connection:
            rounds.append(decide_outcomes(connection, lambda _id: directory.policy("shop"), now))
    assert [[d.outcome for d in changes] for changes in rounds] == [["met"], [], []]
    assert outcomes(engine) == {"met": 1}
