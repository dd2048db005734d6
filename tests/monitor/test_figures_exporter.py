"""Window figures on /metrics: from a background snapshot, open-wait ages at scrape time."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.config.schema import MetricsModel
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.notify.conversation_alerts import level_deadline, update_conversation_alerts
from monitor.store.accounts import AccountDirectory, account_names
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def dm(message_id: str, role: str, minutes_ago: float, thread: str, channel: str = "dm") -> Event:
    return Event(
        "facebook",
        "shop",
        channel,
        thread,
        message_id,
        role,  # type: ignore[arg-type]
        NOW - timedelta(minutes=minutes_ago),
    )


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


BREAKDOWNS = MetricsModel(breakdowns=("channel", "tier"))


@pytest.fixture
def exporter(sqlite_url: str) -> Iterator[tuple[FiguresSnapshot, CollectorRegistry, Clock]]:
    """Six answered waits (5, 5, 5, 5, 10 and 30 minutes) and one customer waiting 20 min;
    both breakdowns on."""
    engine = open_engine(sqlite_url)
    directory = AccountDirectory(dataclasses.replace(Config.empty(), metrics=BREAKDOWNS))
    events = []
    for i, minutes in enumerate([5, 5, 5, 5, 10, 30]):
        events += [
            dm(f"q{i}", "customer", 600 - i, f"t{i}"),
            dm(f"a{i}", "business", 600 - i - minutes, f"t{i}"),
        ]
    events.append(dm("open", "customer", 20, "t-open", channel="comment"))
    Ingestor(engine, directory).ingest(events)
    clock = Clock()
    snapshot = FiguresSnapshot(engine, directory, clock)
    registry = CollectorRegistry()
    registry.register(snapshot)
    yield snapshot, registry, clock
    engine.dispose()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"platform": "facebook", "account": "shop", **labels})


def test_registering_and_scraping_before_refresh_query_nothing(
    exporter: tuple[FiguresSnapshot, CollectorRegistry, Clock],
) -> None:
    """Before the first refresh the families exist but are empty; no query is needed."""
    snapshot, registry, _clock = exporter
    snapshot.engine.dispose()
    text = generate_latest(registry).decode()
    assert "# TYPE replywatch_response_rate_ratio gauge" in text
    assert value(registry, "replywatch_window_waits") is None


def family_values(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    """Every sample of one family, by its label values."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_figures_match_the_stats_and_ages_move_with_the_clock(
    exporter: tuple[FiguresSnapshot, CollectorRegistry, Clock],
) -> None:
    """Rate, share, mean and p90 equal metrics.md section 4; the open wait ages at scrape."""
    snapshot, registry, clock = exporter
    snapshot.refresh()
    assert value(registry, "replywatch_window_waits") == 7
    assert value(registry, "replywatch_window_answered") == 6
    # The open wait is 20 min old: past the 15-min target, inside the 24 h deadline.
    assert value(registry, "replywatch_response_rate_ratio") == 1.0
    # Ratios go out to nine significant digits, seconds to the millisecond.
    assert value(registry, "replywatch_within_target_ratio") == pytest.approx(5 / 7, rel=1e-8)
    assert value(registry, "replywatch_mean_response_seconds") == 60 * 60 / 6
    # p90 of 300,300,300,300,600,1800: h = 4.5 -> 600 + 0.5 * 1200 = 1200
    assert value(registry, "replywatch_p90_response_seconds") == 1200.0
    assert value(registry, "replywatch_target_met") == 1.0
    # The breakdowns are families of their own: summing one gives the account's count once.
    by_channel = family_values(registry, "replywatch_channel_window_waits")
    assert by_channel == {
        ("facebook", "shop", "dm", "strict"): 6,
        ("facebook", "shop", "comment", "strict"): 1,
    }
    assert sum(by_channel.values()) == value(registry, "replywatch_window_waits")
    # No reviews here: every wait is standard.
    assert family_values(registry, "replywatch_tier_window_waits") == {
        ("facebook", "shop", "standard"): 7
    }
    assert value(registry, "replywatch_open_waits") == 1
    assert value(registry, "replywatch_channel_open_waits", channel="comment") == 1
    assert value(registry, "replywatch_channel_open_waits", channel="dm") is None
    assert value(registry, "replywatch_channel_oldest_open_wait_seconds", channel="comment") == 1200
    clock.now += timedelta(minutes=5)
    assert value(registry, "replywatch_oldest_open_wait_seconds") == 1500


def test_by_default_only_the_account_totals_are_exported(sqlite_url: str) -> None:
    """No breakdown family, no histogram, no "all" label value: one series per figure."""
    engine = open_engine(sqlite_url)
    directory = AccountDirectory(Config.empty())
    Ingestor(engine, directory).ingest(
        [dm("q", "customer", 30, "t"), dm("a", "business", 20, "t", channel="dm")]
    )
    snapshot = FiguresSnapshot(engine, directory, lambda: NOW)
    snapshot.refresh()
    text = snapshot.render_static().decode() + snapshot.render_live().decode()
    engine.dispose()
    assert "replywatch_channel_" not in text and "replywatch_tier_" not in text
    assert "replywatch_response_time_seconds" not in text
    assert '"all"' not in text
    assert 'replywatch_window_waits{platform="facebook",account="shop"} 1\n' in text
    # Nobody waits: the open-wait series read 0 and +Inf, they do not vanish.
    assert 'replywatch_open_waits{platform="facebook",account="shop"} 0\n' in text
    assert (
        'replywatch_open_wait_breach_timestamp_seconds{platform="facebook",account="shop"} +Inf'
        in text
    )


# Monday 2026-11-23: an account open Monday to Friday 09:00-17:00 UTC (issue 16).
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
HOURS_CONFIG = """
[alerts]
max_age = "3d"

[[accounts]]
name = "office"
platform = "whatsapp"
source = "push"
targets = { warn_after = "10m", response_target = "15m", escalate_after = "1h" }

[accounts.business_hours]
monday = ["09:00-17:00"]
tuesday = ["09:00-17:00"]
wednesday = ["09:00-17:00"]
thursday = ["09:00-17:00"]
friday = ["09:00-17:00"]

[[accounts]]
name = "quiet"
platform = "whatsapp"
source = "push"
"""


def test_deadlines_are_the_conversation_alerts_own_in_business_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A customer writing at 00:50 is due at 09:10/09:15, exactly when the alert moves."""
    config_path = tmp_path / "replywatch.toml"
    config_path.write_text(HOURS_CONFIG, encoding="utf-8")
    directory = AccountDirectory(load_config(config_path))
    engine = open_engine(sqlite_url)
    wrote = MONDAY + timedelta(minutes=50)
    events = [
        Event("whatsapp", "office", "dm", "night", "n1", "customer", wrote),
        # Older than [alerts] max_age: no conversation alert watches it, nor does the deadline.
        Event("whatsapp", "office", "dm", "old", "o1", "customer", MONDAY - timedelta(days=4)),
        Event("whatsapp", "quiet", "dm", "done", "q1", "customer", wrote),
        Event("whatsapp", "quiet", "dm", "done", "q2", "business", wrote + timedelta(minutes=1)),
    ]
    Ingestor(engine, directory).ingest(events)
    clock = Clock()
    clock.now = wrote + timedelta(minutes=20)
    snapshot = FiguresSnapshot(engine, directory, clock)
    registry = CollectorRegistry()
    registry.register(snapshot)
    snapshot.refresh()

    def exported(name: str, account: str = "office") -> float | None:
        return registry.get_sample_value(name, {"platform": "whatsapp", "account": account})

    breach = exported("replywatch_open_wait_breach_timestamp_seconds")
    warning = exported("replywatch_open_wait_warning_timestamp_seconds")
    assert breach == (MONDAY + timedelta(hours=9, minutes=15)).timestamp()
    assert warning == (MONDAY + timedelta(hours=9, minutes=10)).timestamp()
    # Calendar age, for dashboards, of the old wait: stored and open, yet not in the deadline.
    oldest = value_of(registry, "replywatch_oldest_open_wait_seconds", "office")
    assert oldest == (clock.now - (MONDAY - timedelta(days=4))).total_seconds()
    # Nobody waiting: a deadline that never comes, so the series is there and never fires.
    assert exported("replywatch_open_wait_breach_timestamp_seconds", "quiet") == math.inf
    assert exported("replywatch_open_wait_warning_timestamp_seconds", "quiet") == math.inf

    # The real conversation alerts move at exactly those instants, not a microsecond before.
    with engine.connect() as connection:
        who = account_names(connection)
    policy = directory.policy("office")
    assert level_deadline(policy, "dm", "standard", wrote, "breach").timestamp() == breach
    levels = []
    for seconds in (warning, breach):
        assert seconds is not None
        due = datetime.fromtimestamp(seconds, UTC)
        for at in (due - timedelta(microseconds=1), due):
            with engine.begin() as connection:
                changes = update_conversation_alerts(
                    connection,
                    who,
                    lambda ident: directory.policy(who[ident][1]),
                    at,
                    directory.config.alerts.max_age,
                )
            levels.append([c.level for c in changes if c.conversation == "night"])
    assert levels == [[], ["warning"], [], ["breach"]]
    engine.dispose()


def value_of(registry: CollectorRegistry, name: str, account: str) -> float:
    found = registry.get_sample_value(name, {"platform": "whatsapp", "account": account})
    assert found is not None
    return found
