"""What goes in the summary is decided without a database: plain rows in, one summary out."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from monitor.config.loading import Config
from monitor.core.figures import Figures, Window
from monitor.store.accounts import AccountDirectory
from monitor.store.stats import StatsRow
from monitor.summary.compose import (
    WAITING_NOW_LIMIT,
    IsoWeek,
    LongWait,
    StoredWait,
    WeekRecords,
    compose_week,
)

WEEK = IsoWeek(2026, 47, "UTC")
AS_OF = WEEK.end + timedelta(hours=9)
POLICY = AccountDirectory(Config.empty()).policy
# Figures that meet every target, so the advice comes from the waits alone.
FIGURES = Figures(
    profile="strict",
    profile_version=1,
    clock="calendar",
    waits=4,
    answered=4,
    unanswered=0,
    decided=4,
    response_rate=1.0,
    within_target_share=1.0,
    mean_response_seconds=60.0,
    median_response_seconds=60.0,
    p90_response_seconds=60.0,
    open_waits=0,
    oldest_open_wait_seconds=None,
    target_met=True,
)


def stored(hour: int, answered_after: timedelta | None, rating: int | None = None) -> StoredWait:
    """A wait opened ``hour`` hours into the week, answered after a while or still open."""
    opened = WEEK.start + timedelta(hours=hour)
    closed = None if answered_after is None else opened + answered_after
    seconds = None if answered_after is None else answered_after.total_seconds()
    return StoredWait(
        "facebook", "shop", "dm", "normal", opened, closed, rating, seconds, None, "https://t/1"
    )


def records(waits: list[StoredWait], waiting: list[LongWait]) -> WeekRecords:
    """A week of one account, "shop", whose figures meet every target."""
    row = StatsRow("shop", "facebook", None, Window(WEEK.start, WEEK.end, AS_OF), FIGURES)
    return WeekRecords(WEEK, AS_OF, (row,), (), (), waits, waiting)


def test_compose_imports_nothing_that_does_io() -> None:
    """compose is pure: importing it loads no database, HTTP, template or plotting library."""
    heavy = ("sqlalchemy", "aiohttp", "aiosmtplib", "jinja2", "matplotlib", "weasyprint")
    probe = (
        "import sys, monitor.summary.compose; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_hours_where_most_customers_were_missed_are_short_staffed() -> None:
    """Three late answers in Monday 10:00 make it a short hour; one answer in time does not."""
    late, quick = timedelta(hours=2), timedelta(minutes=1)
    summary = compose_week(
        records([stored(10, late), stored(10, late), stored(10, late), stored(30, quick)], []),
        POLICY,
    )
    assert summary.arrivals[10] == 3 and summary.missed[10] == 3
    assert summary.arrivals[30] == 1 and summary.missed[30] == 0
    assert summary.short_hours == (10,)
    assert summary.advice == ("advice_staff", {"hours": (10,)})
    assert [w.waited_seconds for w in summary.longest_waits][:1] == [late.total_seconds()]


def test_the_waiting_list_is_cut_short_but_counted_whole() -> None:
    """Every open wait counts in the total and the advice; the list shows the oldest 20."""
    opened = [AS_OF - timedelta(hours=h) for h in range(30, 0, -1)]
    waiting = [
        LongWait("facebook", "shop", "dm", at, (AS_OF - at).total_seconds(), False, None)
        for at in opened
    ]
    summary = compose_week(records([stored(10, None)], waiting), POLICY)
    assert len(summary.waiting_now) == WAITING_NOW_LIMIT
    assert summary.waiting_now == tuple(waiting[:WAITING_NOW_LIMIT])
    assert summary.waiting_now_total == 30
    assert summary.advice == ("advice_waiting", {"count": 30})


def test_only_one_and_two_star_reviews_are_negative() -> None:
    """Reviews of three stars or more stay out of the negative list, which runs oldest first."""
    waits = [stored(50, None, rating=1), stored(20, None, rating=2), stored(5, None, rating=3)]
    summary = compose_week(records(waits, []), POLICY)
    assert [(w.rating, w.opened_at) for w in summary.negative_reviews] == [
        (2, datetime(2026, 11, 16, 20, tzinfo=UTC)),
        (1, datetime(2026, 11, 18, 2, tzinfo=UTC)),
    ]
