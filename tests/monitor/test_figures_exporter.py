"""Window figures on /metrics: from a background snapshot, open-wait ages at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connectors.base import Event
from monitor.config.loading import Config
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.store.accounts import AccountDirectory
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


@pytest.fixture
def exporter(sqlite_url: str) -> Iterator[tuple[FiguresSnapshot, CollectorRegistry, Clock]]:
    """Six answered waits (5, 5, 5, 5, 10 and 30 minutes) and one customer waiting 20 min."""
    engine = open_engine(sqlite_url)
    directory = AccountDirectory(Config.empty())
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
    assert value(registry, "replywatch_window_waits", channel="all", profile="strict") is None


def test_figures_match_the_stats_and_ages_move_with_the_clock(
    exporter: tuple[FiguresSnapshot, CollectorRegistry, Clock],
) -> None:
    """Rate, share, mean and p90 equal metrics.md section 4; the open wait ages at scrape."""
    snapshot, registry, clock = exporter
    snapshot.refresh()
    labels = {"channel": "all", "profile": "strict", "tier": "all"}
    assert value(registry, "replywatch_window_waits", **labels) == 7
    # Split by tier too (no reviews here: every wait is standard).
    assert value(registry, "replywatch_window_waits", **{**labels, "tier": "standard"}) == 7
    assert value(registry, "replywatch_window_waits", **{**labels, "tier": "negative"}) is None
    assert value(registry, "replywatch_window_answered", **labels) == 6
    # The open wait is 20 min old: past the 15-min target, inside the 24 h deadline.
    assert value(registry, "replywatch_response_rate_ratio", **labels) == 1.0
    assert value(registry, "replywatch_within_target_ratio", **labels) == 5 / 7
    assert value(registry, "replywatch_mean_response_seconds", **labels) == 60 * 60 / 6
    # p90 of 300,300,300,300,600,1800: h = 4.5 -> 600 + 0.5 * 1200 = 1200
    assert value(registry, "replywatch_p90_response_seconds", **labels) == 1200.0
    assert value(registry, "replywatch_target_met", **labels) == 1.0
    assert (
        value(registry, "replywatch_window_waits", channel="comment", profile="strict", tier="all")
        == 1
    )
    assert value(registry, "replywatch_open_waits", channel="all") == 1
    assert value(registry, "replywatch_oldest_open_wait_seconds", channel="comment") == 1200
    clock.now += timedelta(minutes=5)
    assert value(registry, "replywatch_oldest_open_wait_seconds", channel="all") == 1500
