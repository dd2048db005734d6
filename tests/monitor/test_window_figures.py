"""metrics.md section 4 and 5: window figures, deadlines, the badge rule, profiles, hours."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.figures import WaitFacts, Window, percentile, window_figures
from monitor.core.hours import BusinessCalendar
from monitor.core.profiles import BUILTIN_PROFILES

T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday
STRICT = BUILTIN_PROFILES["strict"]
REVIEWS = BUILTIN_PROFILES["reviews"]


def wait(
    opened_h: float,
    response_s: float | None,
    tier: str = "standard",
    channel: str = "dm",
    business_s: float | None = None,
) -> WaitFacts:
    """A wait opened at T0 + hours, answered after response_s seconds (None: open)."""
    opened = T0 + timedelta(hours=opened_h)
    closed = None if response_s is None else opened + timedelta(seconds=response_s)
    return WaitFacts(opened, closed, response_s, business_s, tier, channel)


def window(days: float = 7, as_of_h: float | None = None) -> Window:
    """A window [T0, T0 + days) evaluated at its end (or at T0 + as_of_h)."""
    end = T0 + timedelta(days=days)
    as_of = end if as_of_h is None else T0 + timedelta(hours=as_of_h)
    return Window(T0, end, as_of)


def test_counts_and_response_statistics() -> None:
    """Four answered waits of 60/120/600/1200 s and one open: hand-computed figures."""
    waits = [wait(1, 60), wait(2, 120), wait(3, 600), wait(4, 1200), wait(5, None)]
    f = window_figures(waits, STRICT, window())
    assert (f.waits, f.answered, f.unanswered) == (5, 4, 1)
    assert f.mean_response_seconds == (60 + 120 + 600 + 1200) / 4
    assert f.median_response_seconds == (120 + 600) / 2
    # p90: h = 3 * 0.9 = 2.7 -> 600 + 0.7 * (1200 - 600) = 1020
    assert f.p90_response_seconds == pytest.approx(1020.0)
    # The open wait is older than 24 h at as_of (opened at 05:00, as_of 7 days later).
    assert f.response_rate == 4 / 5
    assert f.within_target_share == 3 / 5  # 60, 120, 600 s are within 15 min
    assert f.open_waits == 1
    assert f.oldest_open_wait_seconds == (7 * 24 - 5) * 3600


def test_window_is_half_open_and_open_waits_ignore_it() -> None:
    """Waits at the start count, at the end do not; an old open wait still counts as open."""
    waits = [wait(0, 60), wait(7 * 24, 60), wait(-30, None)]
    f = window_figures(waits, STRICT, Window(T0, T0 + timedelta(days=7), T0 + timedelta(days=8)))
    assert f.waits == 1
    assert f.open_waits == 1 and f.oldest_open_wait_seconds == (8 * 24 + 30) * 3600


def test_undecided_waits_are_not_failures() -> None:
    """A wait open 10 min is undecided for both; at 20 min it has missed 15 min only."""
    waits = [wait(0, 60), wait(1, None)]
    at_10 = window_figures(
        waits, STRICT, Window(T0, T0 + timedelta(days=1), T0 + timedelta(hours=1, minutes=10))
    )
    assert at_10.response_rate == 1.0 and at_10.within_target_share == 1.0
    assert at_10.decided == 1
    at_20 = window_figures(
        waits, STRICT, Window(T0, T0 + timedelta(days=1), T0 + timedelta(hours=1, minutes=20))
    )
    assert at_20.response_rate == 1.0
    assert at_20.within_target_share == 0.5


def test_answered_after_as_of_is_open_and_late_answer_is_a_miss() -> None:
    """A reply after as_of does not count yet; a reply after 25 h is decided and missed."""
    waits = [wait(0, 3600), wait(0, 25 * 3600)]
    early = window_figures(waits, STRICT, window(days=3, as_of_h=0.5))
    assert early.answered == 0 and early.open_waits == 2 and early.response_rate is None
    late = window_figures(waits, STRICT, window(days=3))
    assert late.answered == 2
    assert late.response_rate == 0.5  # 1 h is within 24 h, 25 h is not


def test_target_met_badge_rule() -> None:
    """Rate >= 90% and mean <= 15 min; great rate with a slow mean fails; too few is None."""
    fast = [wait(i, 300) for i in range(10)]
    slow_mean = [*[wait(i, 300) for i in range(9)], wait(10, 23 * 3600)]
    assert window_figures(fast, STRICT, window()).target_met is True
    assert window_figures(slow_mean, STRICT, window()).response_rate == 1.0
    assert window_figures(slow_mean, STRICT, window()).target_met is False
    assert window_figures(fast[:4], STRICT, window()).target_met is None  # min_waits 5
    missed = [*fast[:8], wait(20, None), wait(21, None)]
    assert window_figures(missed, STRICT, window()).target_met is False  # 8/10 answered


def test_business_seconds_are_judged_when_hours_are_set() -> None:
    """Friday 17:50 -> Monday 09:05: 15 business minutes at 09:00-18:00, days of calendar time."""
    calendar = BusinessCalendar.build(
        "UTC",
        {
            d: ["09:00-12:00", "13:00-18:00"]
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
        },
    )
    opened = datetime(2026, 11, 20, 17, 50, tzinfo=UTC)  # Friday
    closed = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)  # Monday
    business = calendar.business_seconds(opened, closed)
    assert business == 15 * 60
    facts = [
        WaitFacts(opened, closed, (closed - opened).total_seconds(), business, "standard", "dm")
    ]
    win = Window(opened - timedelta(days=1), closed + timedelta(days=1), closed + timedelta(days=1))
    judged = window_figures(facts, STRICT, win, calendar)
    assert judged.within_target_share == 1.0 and judged.clock == "business"
    assert judged.mean_response_seconds == 900
    calendar_only = window_figures(facts, STRICT, win)
    assert calendar_only.within_target_share == 0.0 and calendar_only.clock == "calendar"


def test_mean_of_the_fastest_share() -> None:
    """With mean_of_fastest 0.9 the slowest tenth is left out of the mean only."""
    waits = [wait(i, 60) for i in range(9)] + [wait(10, 5400)]
    trimmed = replace(STRICT, mean_of_fastest=0.9)
    assert window_figures(waits, STRICT, window()).mean_response_seconds == (9 * 60 + 5400) / 10
    figures = window_figures(waits, trimmed, window())
    assert figures.mean_response_seconds == 60.0  # the 9 fastest of 10
    assert (
        figures.p90_response_seconds == window_figures(waits, STRICT, window()).p90_response_seconds
    )
    assert figures.target_met is True  # 100% answered in time, trimmed mean 1 min


def test_reviews_profile_tiers_and_channels() -> None:
    """Negative reviews must be answered within 4 h, others within 48 h; DMs do not count."""
    waits = [
        wait(0, 3 * 3600, tier="negative", channel="review"),
        wait(1, 5 * 3600, tier="negative", channel="review"),
        wait(2, 40 * 3600, tier="standard", channel="review"),
        wait(3, 60, channel="dm"),
    ]
    f = window_figures(waits, REVIEWS, window(days=30))
    assert f.waits == 3
    assert f.response_rate == 2 / 3  # 3 h ok, 5 h late for negative, 40 h ok for standard
    assert (f.profile, f.profile_version) == ("reviews", 1)
    assert REVIEWS.window == timedelta(days=30)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=60),
    q=st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9]),
)
def test_percentile_matches_statistics_inclusive(values: list[float], q: float) -> None:
    """Linear interpolation h = (n-1) q equals statistics.quantiles(method='inclusive')."""
    ordered = sorted(values)
    expected = statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]
    got = percentile(ordered, q)
    assert got is not None
    assert abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
