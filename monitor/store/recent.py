"""What this process stored lately, so a poll that brings nothing new skips the database.

Most polls re-read what the previous poll stored (the overlap that guards against gaps).
When every event of a poll is already known, at the same or a later time, and the cursor has
not moved, storing it would change nothing; the coordinator's transaction is skipped. Only
committed data is remembered, and only the long-running monitor uses this: it is the store's
single writer, so the memory cannot go stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from connectors.base import Event

__all__ = ["RecentlyStored", "stored_time"]

# The fewest ids an account keeps, whatever its polls bring: enough for a quiet account's
# polls (a few messages), few enough that 10,000 quiet accounts hold about 30 MB.
_FEWEST = 16


def stored_time(event: Event, seen_at: datetime) -> datetime:
    """The time ingest stores for an event (review replies: never later than first seen)."""
    if event.channel == "review" and event.author_role != "customer":
        return min(event.created_at, seen_at)
    return event.created_at


class RecentlyStored:
    """Per account: the message ids its last polls stored, and the last cursor saved.

    Each id is kept with its stored time as a Unix timestamp, in a plain dict in the order
    stored (newest last): a third less memory than an OrderedDict of datetimes.
    """

    def __init__(self, per_account: int = 2000) -> None:
        self.per_account = per_account
        self._ids: dict[tuple[str, str], dict[str, float]] = {}
        # The most events a recent committed batch held for the account (halved at each
        # smaller one), its first batch left out (a backfill, which no later poll re-reads).
        self._largest: dict[tuple[str, str], int] = {}
        self._cursors: dict[tuple[str, str], dict[str, str]] = {}

    def covers(
        self,
        key: tuple[str, str],
        events: Sequence[Event],
        cursor: Mapping[str, str],
        seen_at: datetime,
    ) -> bool:
        """Whether storing these events and this cursor would change nothing."""
        if self._cursors.get(key) != dict(cursor):
            return False
        known: Mapping[str, float] = self._ids.get(key, {})
        for event in events:
            if (event.platform, event.account) != key:
                return False
            stored = known.get(event.message_id)
            if stored is None or stored_time(event, seen_at).timestamp() < stored:
                return False
        return True

    def remember(self, events: Sequence[Event], seen_at: datetime) -> None:
        """Record committed events."""
        batch: Counter[tuple[str, str]] = Counter((e.platform, e.account) for e in events)
        for key, count in batch.items():
            # What the next poll can re-read is what a poll returns: twice the largest recent
            # poll is enough to cover it. It halves with each smaller poll, so a catch-up
            # after an outage is forgotten in a few polls. An account's first batch (its
            # backfill) says nothing of later polls: a busy Page's week would set the bound.
            if key in self._ids:
                self._largest[key] = max(count, self._largest.get(key, 0) // 2)
        # Oldest first, so the ids kept within the bound are the newest: the ones re-read.
        timed = sorted(
            ((stored_time(event, seen_at).timestamp(), event) for event in events),
            key=lambda item: item[0],
        )
        for at, event in timed:
            key = (event.platform, event.account)
            ids = self._ids.setdefault(key, {})
            previous = ids.pop(event.message_id, None)
            ids[event.message_id] = at if previous is None else min(previous, at)
            while len(ids) > self.bound(key):
                del ids[next(iter(ids))]

    def bound(self, key: tuple[str, str]) -> int:
        """How many ids this account keeps: twice its largest recent poll, at least 16, at
        most ``per_account``."""
        return min(self.per_account, max(2 * self._largest.get(key, 0), _FEWEST))

    def remember_cursor(self, key: tuple[str, str], cursor: Mapping[str, str]) -> None:
        """Record a committed cursor."""
        self._cursors[key] = dict(cursor)
