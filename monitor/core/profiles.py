"""Profiles: named, versioned definitions of what counts and what the targets are (metrics.md 5).

A profile fixes the window, the targets and the counting switches. Every figure carries the
name and version of the profile it was computed with, so history can be recomputed when a
definition changes. Users extend the built-in profiles in the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from connectors.base import Channel

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "NEGATIVE_TIER",
    "STANDARD_TIER",
    "Counting",
    "Profile",
    "Targets",
    "WaitRule",
    "tier_for_rating",
]

Counting = Literal["every_turn", "first_after_silence"]

STANDARD_TIER = "standard"
NEGATIVE_TIER = "negative"
DEFAULT_PROFILE = "strict"


def tier_for_rating(rating: int | None) -> str:
    """Reviews rated 1-2 form the ``negative`` tier; everything else is ``standard``."""
    return NEGATIVE_TIER if rating is not None and rating <= 2 else STANDARD_TIER


@dataclass(frozen=True, slots=True)
class Targets:
    """What a wait is judged against."""

    response_target: timedelta = timedelta(minutes=15)
    reply_deadline: timedelta = timedelta(hours=24)
    rate_target: float = 0.9
    warn_after: timedelta = timedelta(minutes=10)
    escalate_after: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WaitRule:
    """The switches that change which waits exist (as opposed to how they are judged)."""

    counting: Counting = "every_turn"
    silence: timedelta = timedelta(hours=24)
    automated_closes_wait: bool = False

    def key(self) -> str:
        """A short stable name for this rule, stored beside the waits it produced."""
        auto = "+auto" if self.automated_closes_wait else ""
        if self.counting == "every_turn":
            return f"every_turn{auto}"
        # "+auto2": since an automated message no longer breaks the silence under this rule,
        # waits stored by the older reading are re-derived once (the key differs).
        auto = "+auto2" if self.automated_closes_wait else ""
        return f"silence{int(self.silence.total_seconds())}{auto}"


@dataclass(frozen=True, slots=True)
class Profile:
    """A named, versioned definition of the window, the targets and what counts."""

    name: str
    version: int = 1
    window: timedelta = timedelta(days=7)
    rule: WaitRule = WaitRule()
    targets: Targets = Targets()
    tiers: Mapping[str, Targets] = field(default_factory=dict)
    channels: tuple[Channel, ...] | None = None
    min_waits: int = 5
    # Share of the fastest answers the mean is taken over (Meta once used "the fastest 90%").
    mean_of_fastest: float = 1.0

    @property
    def all_targets(self) -> tuple[Targets, ...]:
        """The base targets, then each tier's: everything a wait may be judged on."""
        return (self.targets, *self.tiers.values())

    def targets_for(self, tier: str) -> Targets:
        """The targets a wait of this tier is judged against."""
        return self.tiers.get(tier, self.targets)

    def counts_channel(self, channel: str) -> bool:
        """Whether waits on this channel count under this profile."""
        return self.channels is None or channel in self.channels

    def with_targets(self, **changes: object) -> Profile:
        """A copy with some base targets replaced (an account's own overrides)."""
        return replace(self, targets=replace(self.targets, **changes))  # type: ignore[arg-type]


BUILTIN_PROFILES: dict[str, Profile] = {
    "strict": Profile(name="strict"),
    "meta-badge": Profile(
        name="meta-badge",
        rule=WaitRule(counting="first_after_silence", silence=timedelta(hours=24)),
    ),
    "reviews": Profile(
        name="reviews",
        window=timedelta(days=30),
        targets=Targets(
            response_target=timedelta(hours=48),
            reply_deadline=timedelta(hours=48),
            warn_after=timedelta(hours=24),
            escalate_after=timedelta(hours=72),
        ),
        tiers={
            NEGATIVE_TIER: Targets(
                response_target=timedelta(hours=4),
                reply_deadline=timedelta(hours=4),
                warn_after=timedelta(hours=2),
                escalate_after=timedelta(hours=8),
            )
        },
        channels=("review",),
    ),
}
