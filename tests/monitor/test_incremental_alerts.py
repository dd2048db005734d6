"""The incremental alert round equals a full one, after any events, times and restarts.

A full round (``AlertCycle`` with ``incremental=False``, as a worker of the several-worker mode
runs it) is the oracle: a cycle that derives only the accounts the ingestor reported and those
whose deadlines came (its deadline index) must store the same outcomes and alert levels and
report the same changes, after every round.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connectors.base import Event
from monitor.config.loading import load_config
from monitor.core.round_health import ItemFailure
from monitor.notify.alert_cycle import AlertCycle
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import ALERTS, OUTCOMES

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # a Monday
# Short targets and a short watch, so levels, decisions and the end of the watch all happen
# within a few steps; one account with business hours, one with a channel profile.
CONFIG = """
[alerts]
max_age = "6h"

[profiles.quick]
response_target = "20m"
warn_after = "10m"
escalate_after = "1h"

[profiles.short]
window = "1d"
response_target = "30m"
warn_after = "15m"
escalate_after = "2h"

[[accounts]]
name = "plain"
platform = "facebook"
source = "push"
profile = "quick"

[[accounts]]
name = "office"
platform = "facebook"
source = "push"
profile = "quick"
business_hours = { monday = ["09:00-17:00"], tuesday = ["09:00-17:00"] }

[[accounts]]
name = "mixed"
platform = "facebook"
source = "push"
channel_profiles = { comment = "short" }

[[accounts]]
name = "idle"
platform = "facebook"
source = "push"
"""

ACCOUNTS = ("plain", "office", "mixed", "idle")
# (account, channel, thread number, from the customer?, minutes before the clock)
message = st.tuples(
    st.sampled_from(ACCOUNTS),
    st.sampled_from(("dm", "comment")),
    st.integers(0, 3),
    st.booleans(),
    st.integers(-2, 300),
)
# Each step: messages stored, the clock moves on (minutes), the incremental cycle restarts or
# not, then both rounds run.
step = st.tuples(st.lists(message, max_size=4), st.integers(0, 12 * 60), st.booleans())


class _Store:
    """One store, its ingestor and its alert cycle."""

    def __init__(self, folder: Path, name: str, incremental: bool, clock: list[datetime]):
        self.directory = AccountDirectory(load_config(folder / "replywatch.toml"))
        self.engine: Engine = open_engine(f"sqlite:///{folder / name}")
        self.ingestor = Ingestor(self.engine, self.directory)
        self.incremental = incremental
        self.clock = clock
        self.start()

    def start(self) -> None:
        """A new cycle, as after a restart."""
        # Never a full round on its own within the test: only the incremental path runs.
        self.cycle = AlertCycle(
            self.engine,
            self.directory,
            [],
            lambda: self.clock[0],
            incremental=self.incremental,
            full_every=timedelta(days=365),
        )
        self.ingestor.on_stored[:] = [self.cycle.mark_changed]

    def round(self) -> tuple[list[Any], list[Any], list[str]]:
        """One round: the decisions, the alert changes and the skipped waits, in a stable order."""
        skipped: list[ItemFailure] = []
        decisions, changes = self.cycle._step(self.clock[0], skipped)
        return sorted(map(repr, decisions)), sorted(map(repr, changes)), sorted(map(str, skipped))

    def tables(self) -> tuple[list[Any], list[Any]]:
        """Every stored outcome and alert level."""
        with self.engine.connect() as connection:
            outcomes = sorted(map(tuple, connection.execute(select(OUTCOMES))))
            alerts = sorted(map(tuple, connection.execute(select(ALERTS))))
        return outcomes, alerts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step, min_size=1, max_size=10))
def test_incremental_round_equals_a_full_one(tmp_path_factory: Any, steps: list[Any]) -> None:
    """After every round, the incremental store holds and reports what a full round does."""
    folder: Path = tmp_path_factory.mktemp("alerts")
    (folder / "replywatch.toml").write_text(CONFIG, encoding="utf-8")
    clock = [START]
    incremental = _Store(folder, "incremental.db", True, clock)
    oracle = _Store(folder, "oracle.db", False, clock)
    counter = 0
    try:
        assert incremental.round() == oracle.round()
        for messages, minutes, restart in steps:
            events = []
            for account, channel, thread, customer, ago in messages:
                counter += 1
                author = "customer" if customer else "business"
                at = clock[0] - timedelta(minutes=ago)
                thread_id = f"{channel}-{thread}"
                events.append(
                    Event("facebook", account, channel, thread_id, f"m{counter}", author, at)
                )
            incremental.ingestor.ingest(events, seen_at=clock[0])
            oracle.ingestor.ingest(events, seen_at=clock[0])
            clock[0] += timedelta(minutes=minutes)
            if restart:
                incremental.start()
            assert incremental.round() == oracle.round()
            assert incremental.tables() == oracle.tables()
    finally:
        incremental.engine.dispose()
        oracle.engine.dispose()


def test_a_round_with_nothing_changed_reads_no_account(tmp_path: Path) -> None:
    """Cost follows change: no event and no deadline crossed, no account is derived."""
    (tmp_path / "replywatch.toml").write_text(CONFIG, encoding="utf-8")
    clock = [START]
    store = _Store(tmp_path, "store.db", True, clock)
    scopes: list[set[int] | None] = []
    original = store.cycle._scope

    def spy(*args: Any) -> set[int] | None:
        scope = original(*args)
        scopes.append(None if scope is None else set(scope))
        return scope

    store.cycle._scope = spy  # type: ignore[method-assign]
    waiting = Event("facebook", "plain", "dm", "t", "q", "customer", START)
    # Three more stored accounts, all answered: one account is a small part of the store.
    answered = [
        Event("facebook", name, "dm", "a", f"{name}-{n}", author, START - timedelta(minutes=n))
        for name in ("office", "mixed", "idle")
        for n, author in ((5, "customer"), (1, "business"))
    ]
    store.ingestor.ingest([waiting, *answered], seen_at=START)
    store.round()  # the first round: every account
    clock[0] += timedelta(minutes=1)
    store.round()  # nothing changed, no deadline came
    clock[0] = START + timedelta(minutes=10)
    _decisions, changes, _skipped = store.round()  # warn_after came for "plain"
    store.engine.dispose()
    with store.engine.connect() as connection:
        plain = connection.execute(
            select(ALERTS.c.account_id).where(ALERTS.c.thread_id == "t")
        ).scalar_one()
    assert scopes == [None, set(), {plain}]
    assert [change.split("level=")[1].split(",")[0] for change in changes] == ["'warning'"]
