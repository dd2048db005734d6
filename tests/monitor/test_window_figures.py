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
from monitor.core.profiles import BUILTIN_PROFILES, Targets

T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday
STRICT = BUILTIN_PROFILES["strict"]
REVIEWS = BUILTIN_PROFILES["reviews"]
H = 3600.0


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


# -- readings metrics.md section 4 settles ---------------------------------------------------


def office_hours() -> BusinessCalendar:
    """Monday to Friday 09:00-17:00 UTC."""
    days = ("monday", "tuesday", "wednesday", "thursday", "friday")
    return BusinessCalendar.build("UTC", {d: ["09:00-17:00"] for d in days})


def test_a_tier_row_is_judged_on_the_tier_targets_all_of_them() -> None:
    """Nine 1-star reviews answered in 1 h and one in 40 h: the negative row misses its 4 h."""
    waits = [wait(i, H, tier="negative", channel="review") for i in range(9)]
    waits.append(wait(9, 40 * H, tier="negative", channel="review"))
    waits.append(wait(10, 30 * H, channel="review"))  # a standard review, not in the tier row
    tier_row = window_figures(waits, REVIEWS, window(days=30), tier="negative")
    assert tier_row.waits == 10
    assert tier_row.response_rate == 0.9  # 40 h is past the tier's 4 h deadline
    assert tier_row.within_target_share == 0.9
    assert tier_row.mean_response_seconds == pytest.approx(4.9 * H)
    assert tier_row.target_met is False  # 4.9 h > 4 h, though <= the profile's 48 h
    # The standard tier is judged on the profile's own 48 h.
    standard = window_figures(waits, REVIEWS, window(days=30), tier="standard")
    assert standard.waits == 1 and standard.within_target_share == 1.0


def test_a_tier_badge_uses_the_tier_rate_target_too() -> None:
    """A tier with a 99% rate target fails at 90%, where the profile's 90% passes."""
    tier = Targets(
        response_target=timedelta(hours=6), reply_deadline=timedelta(hours=4), rate_target=0.99
    )
    profile = replace(REVIEWS, tiers={"negative": tier})
    waits = [wait(i, H, tier="negative", channel="review") for i in range(9)]
    waits.append(wait(9, 5 * H, tier="negative", channel="review"))  # past the 4 h deadline
    tier_row = window_figures(waits, profile, window(days=30), tier="negative")
    assert tier_row.response_rate == 0.9 and tier_row.mean_response_seconds == pytest.approx(
        1.4 * H
    )
    assert tier_row.target_met is False
    # The account row holds the profile's own 90% and 48 h.
    assert window_figures(waits, profile, window(days=30)).target_met is True


@pytest.mark.parametrize("hours", [False, True], ids=["calendar", "business"])
def test_an_answer_exactly_at_the_deadline_is_on_time(hours: bool) -> None:
    """Answered at exactly 15 min and exactly 24 h: within the target and the deadline."""
    clock = office_hours() if hours else None
    # Monday 09:00 UTC: business and calendar seconds agree for the first 8 hours.
    at_target = wait(9, 900, business_s=900 if hours else None)
    over = wait(10, 901, business_s=901 if hours else None)
    f = window_figures([at_target, over], STRICT, window(days=1), clock)
    assert f.within_target_share == 0.5
    deadline = 24 * H
    on_time = wait(0, deadline, business_s=deadline if hours else None)
    late = wait(0, deadline + 1, business_s=deadline + 1 if hours else None)
    g = window_figures([on_time, late], STRICT, window(days=3), clock)
    assert g.response_rate == 0.5


def test_an_open_wait_whose_deadline_is_as_of_is_decided_and_failed() -> None:
    """At as_of = opened + 15 min the target has failed; one second earlier it has not."""
    opened_h = 9.0  # Monday 09:00
    at = T0 + timedelta(hours=opened_h, minutes=15)
    for clock in (None, office_hours()):
        exact = window_figures([wait(opened_h, None)], STRICT, Window(T0, at, at), clock)
        assert exact.within_target_share == 0.0 and exact.response_rate is None
        before = at - timedelta(seconds=1)
        early = window_figures([wait(opened_h, None)], STRICT, Window(T0, before, before), clock)
        assert early.within_target_share is None
    day = T0 + timedelta(hours=opened_h + 24)
    f = window_figures([wait(opened_h, None)], STRICT, Window(T0, day, day))
    assert f.response_rate == 0.0 and f.decided == 1


def test_an_open_wait_out_of_hours_is_decided_on_business_time() -> None:
    """Opened Friday 16:50: 15 business minutes pass on Monday 09:05, not Friday 17:05."""
    calendar = office_hours()
    opened = datetime(2026, 11, 20, 16, 50, tzinfo=UTC)  # Friday
    facts = [WaitFacts(opened, None, None, None, "standard", "dm")]
    friday = opened + timedelta(minutes=15)
    monday = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    start = opened - timedelta(days=1)
    at_friday = window_figures(facts, STRICT, Window(start, friday, friday), calendar)
    assert at_friday.within_target_share is None
    at_monday = window_figures(facts, STRICT, Window(start, monday, monday), calendar)
    assert at_monday.within_target_share == 0.0


def test_oldest_open_wait_is_calendar_age_with_business_hours() -> None:
    """A wait opened Friday 16:50 is 64 h 15 min old on Monday 09:05, business hours or not."""
    calendar = office_hours()
    opened = datetime(2026, 11, 20, 16, 50, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    facts = [WaitFacts(opened, None, None, None, "standard", "dm")]
    win = Window(opened - timedelta(days=1), monday, monday)
    business = window_figures(facts, STRICT, win, calendar)
    assert business.clock == "business"
    assert business.oldest_open_wait_seconds == (monday - opened).total_seconds()
    assert (
        business.oldest_open_wait_seconds
        == window_figures(facts, STRICT, win).oldest_open_wait_seconds
    )
    assert calendar.business_seconds(opened, monday) == 15 * 60  # what targets are judged on


def test_an_answer_without_stored_business_seconds_is_judged_on_the_calendar_of_hours() -> None:
    """A wait stored before hours were set is judged on business seconds computed now."""
    calendar = office_hours()
    opened = datetime(2026, 11, 20, 16, 50, tzinfo=UTC)  # Friday
    closed = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)  # Monday: 15 business minutes
    facts = [WaitFacts(opened, closed, (closed - opened).total_seconds(), None, "standard", "dm")]
    win = Window(opened, closed, closed + timedelta(days=1))
    judged = window_figures(facts, STRICT, win, calendar)
    assert judged.within_target_share == 1.0 and judged.mean_response_seconds == 900


def test_min_waits_counts_waits_opened_in_the_window_decided_or_not() -> None:
    """Four fast answers and one wait open 5 min: five waits, so the badge is judged."""
    waits = [wait(i, 60) for i in range(4)] + [wait(5, None)]
    at = T0 + timedelta(hours=5, minutes=5)
    f = window_figures(waits, STRICT, Window(T0, at, at))
    assert f.decided == 4 and f.waits == 5
    assert f.target_met is True
    assert window_figures(waits[1:], STRICT, Window(T0, at, at)).target_met is None


def test_meta_badge_counts_comments_as_well_as_direct_messages() -> None:
    """Comment waits count under meta-badge beside direct messages."""
    badge = BUILTIN_PROFILES["meta-badge"]
    waits = [wait(0, 60, channel="dm"), wait(1, 120, channel="comment")]
    f = window_figures(waits, badge, window())
    assert f.waits == 2 and f.mean_response_seconds == 90


def test_builtin_reviews_targets_are_48h_and_4h_for_the_negative_tier() -> None:
    """The built-in reviews profile: 48 h for a review, 4 h for a 1-2 star review."""
    assert REVIEWS.targets.response_target == timedelta(hours=48)
    assert REVIEWS.targets_for("negative").response_target == timedelta(hours=4)
    waits = [wait(0, 48 * H, channel="review"), wait(0, 4 * H, tier="negative", channel="review")]
    late = [wait(0, 48 * H + 1, channel="review"), wait(0, 4 * H + 1, "negative", "review")]
    assert window_figures(waits, REVIEWS, window(days=30)).within_target_share == 1.0
    assert window_figures(late, REVIEWS, window(days=30)).within_target_share == 0.0


def test_a_holiday_on_the_day_an_overnight_period_starts_closes_only_before_midnight() -> None:
    """Friday 22:00-02:00 with Friday a holiday: only Saturday 00:00-02:00 counts."""
    friday = datetime(2026, 12, 25, tzinfo=UTC).date()  # a Friday
    calendar = BusinessCalendar.build("UTC", {"friday": ["22:00-02:00"]}, extra_holidays=[friday])
    opened = datetime(2026, 12, 25, 21, tzinfo=UTC)
    closed = datetime(2026, 12, 26, 3, tzinfo=UTC)
    business = calendar.business_seconds(opened, closed)
    assert business == 2 * H
    facts = [
        WaitFacts(opened, closed, (closed - opened).total_seconds(), business, "standard", "dm")
    ]
    f = window_figures(facts, STRICT, Window(opened, closed, closed), calendar)
    assert f.mean_response_seconds == 2 * H
    # The other way round, a holiday on Saturday closes 00:00-02:00 and keeps Friday 22-24.
    saturday = BusinessCalendar.build(
        "UTC", {"friday": ["22:00-02:00"]}, extra_holidays=[friday + timedelta(days=1)]
    )
    assert saturday.business_seconds(opened, closed) == 2 * H
