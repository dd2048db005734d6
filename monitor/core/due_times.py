"""When each account next needs work although nothing new arrived: a deadline index.

A round that works incrementally re-derives an account only when an event changed it or when
time alone moves one of its results (a wait reaching its deadline, leaving a window). Each
time it derives an account it notes the earliest such instant here; the next rounds take the
accounts whose instant has come instead of scanning every wait.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["DueTimes"]

K = TypeVar("K", bound=Hashable)


class DueTimes(Generic[K]):
    """The earliest instant after ``now`` at which each key's results move by time alone."""

    def __init__(self) -> None:
        self._at: dict[K, datetime] = {}

    def __len__(self) -> int:
        return len(self._at)

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

    def get(self, key: K) -> datetime | None:
        """The instant kept for ``key``, None when nothing moves it."""
        return self._at.get(key)
