"""When each account next needs work although nothing new arrived: a deadline index.

A round that works incrementally re-derives an account only when an event changed it or when
time alone moves one of its results (a wait reaching its deadline, leaving a window). Each
time it derives an account it notes the earliest such instant here; the next rounds take the
accounts whose instant has come instead of scanning every wait.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

__all__ = ["FULL_EVERY", "INSTANT", "DueTimes", "full_round_due"]

K = TypeVar("K", bound=Hashable)

FULL_EVERY = timedelta(minutes=10)
"""How often an incremental round derives every account anyway: a change it was not told of
(an edit to the store by hand, a review edit that changes only a rating) is right again
within this."""

# The smallest step of a stored time: "just after" an instant.
INSTANT = timedelta(microseconds=1)


def full_round_due(
    incremental: bool, last_full: datetime | None, now: datetime, every: timedelta
) -> bool:
    """Whether this round must derive every account: not incremental, never done since the
    start or a failure, ``every`` has passed, or the clock went back."""
    return not incremental or last_full is None or now - last_full >= every or now < last_full


class DueTimes(Generic[K]):
    """The earliest instant after ``now`` at which each key's results move by time alone."""

    def __init__(self) -> None:
        self._at: dict[K, datetime] = {}

    def note(self, key: K, at: datetime, now: datetime) -> None:
        """Keep ``at`` for ``key`` if it is after ``now`` and earlier than what is kept."""
        if at > now and (key not in self._at or at < self._at[key]):
            self._at[key] = at

    def every_round(self, key: K, now: datetime) -> None:
        """``key`` is due at every round (its results move continuously, or it keeps failing)."""
        self._at[key] = now

    def due(self, now: datetime) -> set[K]:
        """The keys whose instant has come."""
        return {key for key, at in self._at.items() if at <= now}

    def forget(self, keys: Iterable[K] | None = None) -> None:
        """Drop ``keys`` (every key: None) before noting their instants afresh."""
        if keys is None:
            self._at.clear()
            return
        for key in keys:
            self._at.pop(key, None)
