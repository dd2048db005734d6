"""What a weekly summary says, computed from the store, before any language or format.

The figures are ``monitor.store.stats`` over the ISO week (so they equal ``replywatch stats --from
<Monday> --to <next Monday>`` at the same ``as_of``); everything else (longest waits, customers
waiting now, negative reviews, the hour-of-week profile and the advice) is read from the
stored waits of the same accounts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select

from monitor.core.figures import Figures
from monitor.core.profiles import NEGATIVE_TIER, Targets
from monitor.store.accounts import AccountDirectory, AccountPolicy
from monitor.store.stats import StatsRow, account_stats
from monitor.store.tables import ACCOUNTS, EVENTS, WAITS

__all__ = [
    "AccountWeek",
    "IsoWeek",
    "LongWait",
    "WeekSummary",
    "parse_week",
    "summarise_week",
]

HOURS_IN_WEEK = 168
LONGEST = 10
WAITING_NOW_LIMIT = 20
# Only customers who wrote in the last month count as "still waiting now"; older open waits
# are history nobody will answer any more.
WAITING_NOW_SINCE = timedelta(days=30)
# An hour of the week is "short" when enough customers wrote and at least half were missed.
SHORT_HOUR_MIN_ARRIVALS = 3
SHORT_HOUR_MISSED_SHARE = 0.5
SHORT_HOURS_SHOWN = 3


@dataclass(frozen=True)
class IsoWeek:
    """An ISO week, Monday to Monday, in one time zone."""

    year: int
    week: int
    zone: str

    @property
    def first_day(self) -> date:
        """The Monday."""
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def start(self) -> datetime:
        """Monday 00:00 local, as UTC."""
        local = datetime.combine(self.first_day, datetime.min.time(), ZoneInfo(self.zone))
        return local.astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 local, as UTC (exclusive)."""
        nxt = self.first_day + timedelta(days=7)
        return datetime.combine(nxt, datetime.min.time(), ZoneInfo(self.zone)).astimezone(UTC)

    def previous(self) -> IsoWeek:
        """The week before."""
        year, week, _ = (self.first_day - timedelta(days=7)).isocalendar()
        return IsoWeek(year, week, self.zone)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def parse_week(text: str, zone: str) -> IsoWeek:
    """``2026-W47`` (or ``last`` for the last complete week) in the given time zone."""
    if text == "last":
        today = datetime.now(ZoneInfo(zone)).date()
        year, week, _ = (today - timedelta(days=7)).isocalendar()
        return IsoWeek(year, week, zone)
    match = re.fullmatch(r"(\d{4})-W(\d{2})", text.strip())
    if match is None:
        raise ValueError(f"--week {text!r} is not an ISO week like 2026-W47 (or 'last')")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"--week {text!r}: {year} has no week {week}") from None
    return IsoWeek(year, week, zone)


@dataclass(frozen=True)
class AccountWeek:
    """One account's week: its figures, last week's, and its channels."""

    platform: str
    account: str
    profile: str
    targets: Targets
    this_week: Figures
    last_week: Figures | None
    channels: tuple[tuple[str, Figures], ...]

    @property
    def budget_used(self) -> float | None:
        """Share of the error budget spent: missed share / (1 - rate target)."""
        share = self.this_week.within_target_share
        if share is None:
            return None
        return (1 - share) / (1 - self.targets.rate_target)


@dataclass(frozen=True)
class LongWait:
    """One customer's wait, for the lists in the summary."""

    platform: str
    account: str
    channel: str
    opened_at: datetime
    waited_seconds: float
    answered: bool
    link: str | None
    rating: int | None = None


@dataclass(frozen=True)
class WeekSummary:
    """Everything one summary shows, in numbers and facts."""

    week: IsoWeek
    as_of: datetime
    accounts: tuple[AccountWeek, ...]
    longest_waits: tuple[LongWait, ...]
    waiting_now: tuple[LongWait, ...]
    waiting_now_total: int
    negative_reviews: tuple[LongWait, ...]
    arrivals: tuple[int, ...]
    missed: tuple[int, ...]
    short_hours: tuple[int, ...]
    advice: tuple[str, dict[str, object]] = field(default=("advice_ok", {}))

    @property
    def empty(self) -> bool:
        """No customer wrote to any of the accounts this week."""
        return all(a.this_week.waits == 0 for a in self.accounts)


def summarise_week(
    connection: Connection,
    directory: AccountDirectory,
    week: IsoWeek,
    as_of: datetime,
    accounts: Sequence[str] = (),
) -> WeekSummary:
    """Compute the summary of ``week`` for the given accounts (all when empty)."""
    start, end = week.start, week.end
    last = week.previous()
    this_rows = account_stats(
        connection, directory, as_of=as_of, start=start, end=end, accounts=accounts
    )
    last_rows = {
        (r.platform, r.account): r
        for r in account_stats(
            connection, directory, as_of=as_of, start=last.start, end=last.end, accounts=accounts
        )
    }
    by_channel: dict[tuple[str, str], list[StatsRow]] = {}
    for row in account_stats(
        connection, directory, as_of=as_of, start=start, end=end, accounts=accounts, by="channel"
    ):
        by_channel.setdefault((row.platform, row.account), []).append(row)
    weeks = []
    for row in this_rows:
        key = (row.platform, row.account)
        previous = last_rows.get(key)
        policy = directory.policy(row.account)
        weeks.append(
            AccountWeek(
                platform=row.platform,
                account=row.account,
                profile=row.figures.profile,
                targets=policy.profile.targets,
                this_week=row.figures,
                last_week=previous.figures if previous and previous.figures.waits else None,
                channels=tuple((r.group or "", r.figures) for r in by_channel.get(key, [])),
            )
        )
    waits = _week_waits(connection, directory, [w.account for w in weeks], start, end, as_of)
    arrivals, missed = _hour_profile(waits, ZoneInfo(week.zone))
    short = _short_hours(arrivals, missed)
    longest = sorted(waits, key=lambda w: w.waited_seconds, reverse=True)[:LONGEST]
    negative = sorted(
        (w for w in waits if w.rating is not None and w.rating <= 2), key=lambda w: w.opened_at
    )
    waiting, waiting_total = _waiting_now(connection, [w.account for w in weeks], as_of)
    summary = WeekSummary(
        week=week,
        as_of=as_of,
        accounts=tuple(weeks),
        longest_waits=tuple(longest),
        waiting_now=tuple(waiting),
        waiting_now_total=waiting_total,
        negative_reviews=tuple(negative),
        arrivals=tuple(arrivals),
        missed=tuple(missed),
        short_hours=tuple(short),
    )
    return _with_advice(summary, directory)


def _week_waits(
    connection: Connection,
    directory: AccountDirectory,
    names: Sequence[str],
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> list[_JudgedWaitView]:
    if not names:
        return []
    w, e, a = WAITS, EVENTS, ACCOUNTS
    opening = and_(e.c.account_id == w.c.account_id, e.c.message_id == w.c.opened_by)
    rows = connection.execute(
        select(
            a.c.platform,
            a.c.name,
            w.c.channel,
            w.c.opened_at,
            w.c.closed_at,
            w.c.tier,
            w.c.rating,
            w.c.response_seconds,
            w.c.business_seconds,
            e.c.thread_url,
        )
        .join(a, a.c.id == w.c.account_id)
        .outerjoin(e, opening)
        .where(
            a.c.name.in_(list(names)),
            w.c.opened_at >= start,
            w.c.opened_at < end,
            w.c.opened_at <= as_of,
        )
    )
    out = []
    policies: dict[str, AccountPolicy] = {}
    for platform, name, channel, opened, closed, tier, rating, response, business, url in rows:
        policy = policies.get(name)
        if policy is None:
            policy = policies[name] = directory.policy(name)
        targets = policy.profile_for(channel).targets_for(tier)
        answered = closed is not None and closed <= as_of
        waited = ((closed if answered else as_of) - opened).total_seconds()
        judged = business if policy.calendar is not None and business is not None else response
        if answered:
            missed = (judged or 0.0) > targets.response_target.total_seconds()
        elif policy.calendar is not None:
            missed = policy.calendar.business_seconds(opened, as_of) >= (
                targets.response_target.total_seconds()
            )
        else:
            missed = waited >= targets.response_target.total_seconds()
        out.append(
            _JudgedWaitView(platform, name, channel, opened, waited, answered, url, rating, missed)
        )
    return out


@dataclass(frozen=True)
class _JudgedWaitView(LongWait):
    # Whether the wait missed its response target (answered late, or still open past it).
    missed: bool = False


def _hour_profile(waits: Sequence[_JudgedWaitView], zone: ZoneInfo) -> tuple[list[int], list[int]]:
    arrivals = [0] * HOURS_IN_WEEK
    missed = [0] * HOURS_IN_WEEK
    for wait in waits:
        local = wait.opened_at.astimezone(zone)
        slot = local.weekday() * 24 + local.hour
        arrivals[slot] += 1
        missed[slot] += wait.missed
    return arrivals, missed


def _short_hours(arrivals: Sequence[int], missed: Sequence[int]) -> list[int]:
    candidates = [
        hour
        for hour in range(HOURS_IN_WEEK)
        if arrivals[hour] >= SHORT_HOUR_MIN_ARRIVALS
        and missed[hour] / arrivals[hour] >= SHORT_HOUR_MISSED_SHARE
    ]
    candidates.sort(key=lambda hour: (-missed[hour], hour))
    return sorted(candidates[:SHORT_HOURS_SHOWN])


def _waiting_now(
    connection: Connection, names: Sequence[str], as_of: datetime
) -> tuple[list[LongWait], int]:
    if not names:
        return [], 0
    w, e, a = WAITS, EVENTS, ACCOUNTS
    opening = and_(e.c.account_id == w.c.account_id, e.c.message_id == w.c.opened_by)
    rows = connection.execute(
        select(a.c.platform, a.c.name, w.c.channel, w.c.opened_at, w.c.rating, e.c.thread_url)
        .join(a, a.c.id == w.c.account_id)
        .outerjoin(e, opening)
        .where(
            a.c.name.in_(list(names)),
            w.c.closed_at.is_(None),
            w.c.opened_at >= as_of - WAITING_NOW_SINCE,
            w.c.opened_at <= as_of,
        )
        .order_by(w.c.opened_at)
    ).all()
    waiting = [
        LongWait(
            platform, name, channel, opened, (as_of - opened).total_seconds(), False, url, rating
        )
        for platform, name, channel, opened, rating, url in rows[:WAITING_NOW_LIMIT]
    ]
    return waiting, len(rows)


def _with_advice(summary: WeekSummary, directory: AccountDirectory) -> WeekSummary:
    """One line of advice, from the most urgent finding down."""
    advice: tuple[str, dict[str, object]] = ("advice_ok", {})
    judged = [a for a in summary.accounts if a.this_week.waits]
    worst_rate = min(
        (a for a in judged if a.this_week.response_rate is not None),
        key=lambda a: a.this_week.response_rate or 0.0,
        default=None,
    )
    worst_mean = max(
        (a for a in judged if a.this_week.mean_response_seconds is not None),
        key=lambda a: a.this_week.mean_response_seconds or 0.0,
        default=None,
    )
    late_reviews = [
        r
        for r in summary.negative_reviews
        if r.waited_seconds > _negative_target(directory, r).total_seconds()
    ]
    if summary.empty:
        advice = ("empty_all", {})
    elif summary.waiting_now_total:
        advice = ("advice_waiting", {"count": summary.waiting_now_total})
    elif summary.short_hours:
        advice = ("advice_staff", {"hours": summary.short_hours})
    elif (
        worst_rate is not None
        and (worst_rate.this_week.response_rate or 0.0) < worst_rate.targets.rate_target
    ):
        advice = (
            "advice_rate",
            {
                "account": worst_rate.account,
                "rate": worst_rate.this_week.response_rate,
                "deadline": worst_rate.targets.reply_deadline,
            },
        )
    elif (
        worst_mean is not None
        and (worst_mean.this_week.mean_response_seconds or 0.0)
        > worst_mean.targets.response_target.total_seconds()
    ):
        advice = (
            "advice_time",
            {
                "account": worst_mean.account,
                "mean": worst_mean.this_week.mean_response_seconds,
                "target": worst_mean.targets.response_target,
            },
        )
    elif late_reviews:
        advice = (
            "advice_reviews",
            {"count": len(late_reviews), "target": _negative_target(directory, late_reviews[0])},
        )
    return WeekSummary(**{**summary.__dict__, "advice": advice})


def _negative_target(directory: AccountDirectory, wait: LongWait) -> timedelta:
    profile = directory.policy(wait.account).profile_for(wait.channel)
    return profile.targets_for(NEGATIVE_TIER).response_target
