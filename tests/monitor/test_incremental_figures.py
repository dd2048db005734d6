"""The incremental figures refresh equals a full recomputation, after any events and times.

The full recomputation (``FiguresSnapshot`` with ``incremental=False``, as ``replywatch serve``
runs it) is the oracle: a snapshot that recomputes only the accounts the ingestor reported and
those whose figures time alone moves must render exactly the same text after every refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Event
from monitor.config.loading import load_config
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # a Monday
# Three accounts: built-in targets; business hours (their deadlines move with the clock);
# a channel profile with a one-day window (its waits leave the window sooner).
CONFIG = """
[alerts]
max_age = "5h"  # no target is 5 h: the end of the watch is its own instant

[metrics]
breakdowns = ["channel", "tier"]

[profiles.short]
window = "1d"
response_target = "30m"

[[accounts]]
name = "plain"
platform = "facebook"
source = "push"

[[accounts]]
name = "office"
platform = "facebook"
source = "push"
business_hours = { monday = ["09:00-17:00"], tuesday = ["09:00-17:00"] }

[[accounts]]
name = "mixed"
platform = "facebook"
source = "push"
channel_profiles = { comment = "short" }
"""

ACCOUNTS = ("plain", "office", "mixed")
# (account, channel, thread number, from the customer?, minutes before the clock)
message = st.tuples(
    st.sampled_from(ACCOUNTS),
    st.sampled_from(("dm", "comment")),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 600),
)
# Each step: messages stored, then the clock moves on (minutes), then both refresh.
step = st.tuples(st.lists(message, max_size=4), st.integers(0, 3 * 24 * 60))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_incremental_refresh_equals_a_full_one(tmp_path_factory: object, steps: list) -> None:  # type: ignore[type-arg]
    """After every step, the incremental snapshot renders what a full recomputation renders."""
    folder: Path = tmp_path_factory.mktemp("incremental")  # type: ignore[attr-defined]
    (folder / "replywatch.toml").write_text(CONFIG, encoding="utf-8")
    directory = AccountDirectory(load_config(folder / "replywatch.toml"))
    engine = open_engine(f"sqlite:///{folder / 'store.db'}")
    clock = [START]
    ingestor = Ingestor(engine, directory)
    # Never a full recomputation on its own within the test: only the incremental path runs.
    incremental = FiguresSnapshot(
        engine, directory, lambda: clock[0], incremental=True, full_every=timedelta(days=365)
    )
    ingestor.on_stored.append(incremental.mark_changed)
    incremental.refresh()
    counter = 0
    try:
        for messages, minutes in steps:
            events = []
            for account, channel, thread, customer, ago in messages:
                counter += 1
                events.append(
                    Event(
                        "facebook",
                        account,
                        channel,  # type: ignore[arg-type]
                        f"{channel}-{thread}",
                        f"m{counter}",
                        "customer" if customer else "business",
                        clock[0] - timedelta(minutes=ago),
                    )
                )
            ingestor.ingest(events, seen_at=clock[0])
            clock[0] += timedelta(minutes=minutes)
            incremental.refresh()
            oracle = FiguresSnapshot(engine, directory, lambda: clock[0])
            oracle.refresh()
            assert incremental.render_static().decode() == oracle.render_static().decode()
            # The scrape-time families too: open waits per account and channel, deadlines.
            assert incremental.render_live().decode() == oracle.render_live().decode()
    finally:
        engine.dispose()


def test_a_refresh_with_nothing_changed_recomputes_no_account(sqlite_url: str) -> None:
    """Cost follows change: with no event and no deadline crossed, no account is recomputed."""
    directory = AccountDirectory(load_config_text(CONFIG))
    engine = open_engine(sqlite_url)
    ingestor = Ingestor(engine, directory)
    clock = [START]
    snapshot = FiguresSnapshot(
        engine, directory, lambda: clock[0], incremental=True, full_every=timedelta(days=30)
    )
    ingestor.on_stored.append(snapshot.mark_changed)
    ingestor.ingest(
        [
            Event("facebook", "plain", "dm", "t", "q", "customer", START - timedelta(hours=2)),
            Event("facebook", "plain", "dm", "t", "a", "business", START - timedelta(hours=1)),
        ],
        seen_at=START,
    )
    snapshot.refresh()  # the first refresh: every account
    recomputed: list[set[str] | None] = []
    original = snapshot._recompute

    def spy(
        connection: object, now: datetime, breakdowns: object, dirty: set[str] | None, who: object
    ) -> None:
        recomputed.append(None if dirty is None else set(dirty))
        original(connection, now, breakdowns, dirty, who)  # type: ignore[arg-type]

    snapshot._recompute = spy  # type: ignore[method-assign]
    clock[0] += timedelta(minutes=1)
    snapshot.refresh()
    ingestor.ingest(
        [Event("facebook", "mixed", "dm", "u", "q2", "customer", clock[0] - timedelta(minutes=1))],
        seen_at=clock[0],
    )
    snapshot.refresh()
    # The answered wait of "plain" leaves its 7-day window 6 days and 23 hours later.
    clock[0] = START - timedelta(hours=2) + timedelta(days=7, seconds=1)
    snapshot.refresh()
    engine.dispose()
    assert recomputed[0] == set()
    assert recomputed[1] == {"mixed"}
    # "mixed" too (its open wait passed its targets meanwhile); "office" never changed.
    assert recomputed[2] == {"plain", "mixed"}


def load_config_text(text: str) -> object:
    """The config of ``text``, from a temporary file."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "replywatch.toml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)
