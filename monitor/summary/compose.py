"""What a weekly summary says, decided from the store's rows, before any language or format.

Pure: plain values in (the week's figures and waits as ``monitor.summary.data`` reads them),
one ``WeekSummary`` out. Which waits count as missed, which hours are short-staffed, which
waits are listed and which one line of advice comes first are all decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from monitor.core.figures import Figures
from monitor.core.profiles import NEGATIVE_TIER, Targets

if TYPE_CHECKING:
    # Types only: importing them at run time would pull the database library into this module.
    from monitor.store.accounts import AccountPolicy
    from monitor.store.stats import StatsRow

__all__ = [
    "AccountWeek",
    "IsoWeek",
    "LongWait",
    "StoredWait",
    "WeekRecords",
    "WeekSummary",
    "compose_week",
]

HOURS_IN_WEEK = 168
LONGEST = 10
WAITING_NOW_LIMIT = 20
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


@dataclass(frozen=True)
class StoredWait:
    """A wait opened in the week, as stored, with the link to the message that opened it."""

    platform: str
    account: str
    channel: str
    tier: str
    opened_at: datetime
    closed_at: datetime | None
    rating: int | None
    response_seconds: float | None
    business_seconds: float | None
    link: str | None


@dataclass(frozen=True)
class WeekRecords:
    """What the store holds about one week, as the queries read it."""

    week: IsoWeek
    as_of: datetime
    this_week: Sequence[StatsRow]
    last_week: Sequence[StatsRow]
    channels: Sequence[StatsRow]
    waits: Sequence[StoredWait]
    waiting_now: Sequence[LongWait]  # every open wait of the last month, oldest first


def compose_week(records: WeekRecords, policy: Callable[[str], AccountPolicy]) -> WeekSummary:
    """The summary of the week in ``records``, judged by each account's ``policy``."""
    last_rows = {(r.platform, r.account): r for r in records.last_week}
    by_channel: dict[tuple[str, str], list[StatsRow]] = {}
    for row in records.channels:
        by_channel.setdefault((row.platform, row.account), []).append(row)
    weeks = []
    for row in records.this_week:
        key = (row.platform, row.account)
        previous = last_rows.get(key)
        weeks.append(
            AccountWeek(
                platform=row.platform,
                account=row.account,
                profile=row.figures.profile,
                targets=policy(row.account).profile.targets,
                this_week=row.figures,
                last_week=previous.figures if previous and previous.figures.waits else None,
                channels=tuple((r.group or "", r.figures) for r in by_channel.get(key, [])),
            )
        )
    waits = _judged(records.waits, policy, records.as_of)
    arrivals, missed = _hour_profile(waits, ZoneInfo(records.week.zone))
    short = _short_hours(arrivals, missed)
    longest = sorted(waits, key=lambda w: w.waited_seconds, reverse=True)[:LONGEST]
    negative = sorted(
        (w for w in waits if w.rating is not None and w.rating <= 2), key=lambda w: w.opened_at
    )
    summary = WeekSummary(
        week=records.week,
        as_of=records.as_of,
        accounts=tuple(weeks),
        longest_waits=tuple(longest),
        waiting_now=tuple(records.waiting_now[:WAITING_NOW_LIMIT]),
        waiting_now_total=len(records.waiting_now),
        negative_reviews=tuple(negative),
        arrivals=tuple(arrivals),
        missed=tuple(missed),
        short_hours=tuple(short),
    )
    return _with_advice(summary, policy)


@dataclass(frozen=True)
class _JudgedWaitView(LongWait):
    # Whether the wait missed its response target (answered late, or still open past it).
    missed: bool = False


def _judged(
    waits: Sequence[StoredWait], policy: Callable[[str], AccountPolicy], as_of: datetime
) -> list[_JudgedWaitView]:
    out = []
    policies: dict[str, AccountPolicy] = {}
    for wait in waits:
        name = wait.account
        account_policy = policies.get(name)
        if account_policy is None:
            account_policy = policies[name] = policy(name)
        targets = account_policy.profile_for(wait.channel).targets_for(wait.tier)
        target_seconds = targets.response_target.total_seconds()
        calendar = account_policy.calendar
        opened, closed = wait.opened_at, wait.closed_at
        answered = closed is not None and closed <= as_of
        waited = ((closed if closed is not None and answered else as_of) - opened).total_seconds()
        business = wait.business_seconds
        judged = (
            business if calendar is not None and business is not None else wait.response_seconds
        )
        if answered:
            missed = (judged or 0.0) > target_seconds
        elif calendar is not None:
            missed = calendar.business_seconds(opened, as_of) >= target_seconds
        else:
            missed = waited >= target_seconds
        out.append(
            _JudgedWaitView(
                wait.platform,
                name,
                wait.channel,
                opened,
                waited,
                answered,
                wait.link,
                wait.rating,
                missed,
            )
        )
    return out


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


def _with_advice(summary: WeekSummary, policy: Callable[[str], AccountPolicy]) -> WeekSummary:
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
        if r.waited_seconds > _negative_target(policy, r).total_seconds()
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
            {"count": len(late_reviews), "target": _negative_target(policy, late_reviews[0])},
        )
    return WeekSummary(**{**summary.__dict__, "advice": advice})


def _negative_target(policy: Callable[[str], AccountPolicy], wait: LongWait) -> timedelta:
    profile = policy(wait.account).profile_for(wait.channel)
    return profile.targets_for(NEGATIVE_TIER).response_target
