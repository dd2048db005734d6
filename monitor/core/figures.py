"""Figures over a window (metrics.md section 4): pure functions from waits to numbers.

Every consumer (the CLI, the exporter, the summary) calls :func:`window_figures`; nothing
else computes a response rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from monitor.core.profiles import Profile
from monitor.core.waits import BusinessClock

__all__ = ["Figures", "WaitFacts", "Window", "percentile", "window_figures"]


class WaitFacts(NamedTuple):
    """What the figures need to know about one stored wait."""

    opened_at: datetime
    closed_at: datetime | None
    response_seconds: float | None
    business_seconds: float | None
    tier: str
    channel: str


@dataclass(frozen=True, slots=True)
class Window:
    """The window ``[start, end)`` evaluated at ``as_of``."""

    start: datetime
    end: datetime
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one account (or account and channel) over one window."""

    profile: str
    profile_version: int
    clock: str
    waits: int
    answered: int
    unanswered: int
    decided: int
    response_rate: float | None
    within_target_share: float | None
    mean_response_seconds: float | None
    median_response_seconds: float | None
    p90_response_seconds: float | None
    open_waits: int
    oldest_open_wait_seconds: float | None
    target_met: bool | None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between order statistics, h = (n - 1) q (NumPy's default)."""
    n = len(sorted_values)
    if n == 0:
        return None
    h = (n - 1) * q
    low = math.floor(h)
    high = min(low + 1, n - 1)
    return sorted_values[low] + (h - low) * (sorted_values[high] - sorted_values[low])


def window_figures(
    waits: Iterable[WaitFacts],
    profile: Profile,
    window: Window,
    clock: BusinessClock | None = None,
    tier: str | None = None,
) -> Figures:
    """Compute the section-4 figures for the given waits (of one account or channel).

    With ``tier`` the figures are that tier's row: only its waits count, and the row is judged
    on the tier's own targets, all of them (its deadline, its target and its badge).
    """
    as_of, start, end = window.as_of, window.start, window.end
    count = answered = decided = in_deadline = target_decided = in_target = 0
    open_waits = 0
    oldest: float | None = None
    responses: list[float] = []
    # (reply deadline, response target) in seconds per tier, looked up once per tier.
    limits: dict[str, tuple[float, float]] = {}
    for wait in waits:
        opened = wait.opened_at
        if opened > as_of or not profile.counts_channel(wait.channel):
            continue
        if tier is not None and wait.tier != tier:
            continue
        closed = wait.closed_at is not None and wait.closed_at <= as_of
        if not closed:
            open_waits += 1
            age = (as_of - opened).total_seconds()
            oldest = age if oldest is None or age > oldest else oldest
        if not start <= opened < end:
            continue
        count += 1
        tier_limits = limits.get(wait.tier)
        if tier_limits is None:
            targets = profile.targets_for(wait.tier)
            tier_limits = limits[wait.tier] = (
                targets.reply_deadline.total_seconds(),
                targets.response_target.total_seconds(),
            )
        deadline, target = tier_limits
        if closed:
            answered += 1
            taken = _judged_response(wait, clock)
            responses.append(taken)
            decided += 1
            target_decided += 1
            in_deadline += taken <= deadline
            in_target += taken <= target
        else:
            age_judged = _judged_age(wait, as_of, clock)
            decided += age_judged >= deadline
            target_decided += age_judged >= target
    responses.sort()
    mean = _mean_of_fastest(responses, profile.mean_of_fastest)
    rate = in_deadline / decided if decided else None
    share = in_target / target_decided if target_decided else None
    return Figures(
        profile=profile.name,
        profile_version=profile.version,
        clock="business" if clock is not None else "calendar",
        waits=count,
        answered=answered,
        unanswered=count - answered,
        decided=decided,
        response_rate=rate,
        within_target_share=share,
        mean_response_seconds=mean,
        median_response_seconds=percentile(responses, 0.5),
        p90_response_seconds=percentile(responses, 0.9),
        open_waits=open_waits,
        oldest_open_wait_seconds=oldest,
        target_met=_badge(profile, tier, count, rate, mean),
    )


def _mean_of_fastest(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    # At least one answer counts, so a trimmed mean always exists when anything was answered.
    kept = ordered[: max(1, math.ceil(len(ordered) * share))]
    return math.fsum(kept) / len(kept)


def _judged_response(wait: WaitFacts, clock: BusinessClock | None) -> float:
    # Targets are judged on business seconds when a schedule is set (metrics.md 3).
    if clock is not None:
        if wait.business_seconds is not None:
            return wait.business_seconds
        if wait.closed_at is not None:
            return clock.business_seconds(wait.opened_at, wait.closed_at)
    if wait.response_seconds is not None:
        return wait.response_seconds
    return (wait.closed_at - wait.opened_at).total_seconds() if wait.closed_at else 0.0


def _judged_age(wait: WaitFacts, as_of: datetime, clock: BusinessClock | None) -> float:
    if clock is not None:
        return clock.business_seconds(wait.opened_at, as_of)
    return (as_of - wait.opened_at).total_seconds()


def _badge(
    profile: Profile, tier: str | None, count: int, rate: float | None, mean: float | None
) -> bool | None:
    # min_waits counts the waits opened in the window, decided or not (metrics.md 4).
    if count < profile.min_waits or rate is None:
        return None
    # A tier's row is judged on the tier's own targets; an account or channel row on the
    # profile's (each of its waits met or missed its own tier's deadline already).
    targets = profile.targets if tier is None else profile.targets_for(tier)
    if rate < targets.rate_target:
        return False
    return mean is not None and mean <= targets.response_target.total_seconds()
