"""What this process stored lately, so a poll that brings nothing new skips the database.

Most polls re-read what the previous poll stored (the overlap that guards against gaps).
When every event of a poll is already known, at the same or a later time, and the cursor has
not moved, storing it would change nothing; the coordinator's transaction is skipped. Only
committed data is remembered, and only the long-running monitor uses this: it is the store's
single writer, so the memory cannot go stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime

from connectors.base import Event

__all__ = ["RecentlyStored", "stored_time"]


def stored_time(event: Event, seen_at: datetime) -> datetime:
    """The time ingest stores for an event (review replies: never later than first seen)."""
    if event.channel == "review" and event.author_role != "customer":
        return min(event.created_at, seen_at)
    return event.created_at


class RecentlyStored:
    """Per account: the last few thousand message ids stored, and the last cursor saved."""

    def __init__(self, per_account: int = 2000) -> None:
        self.per_account = per_account
        self._ids: dict[tuple[str, str], OrderedDict[str, datetime]] = {}
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
        known: Mapping[str, datetime] = self._ids.get(key, {})
        for event in events:
            if (event.platform, event.account) != key:
                return False
            stored = known.get(event.message_id)
            if stored is None or stored_time(event, seen_at) < stored:
                return False
        return True

    def remember(self, events: Sequence[Event], seen_at: datetime) -> None:
        """Record committed events."""
        for event in events:
            ids = self._ids.setdefault((event.platform, event.account), OrderedDict())
            at = stored_time(event, seen_at)
            previous = ids.pop(event.message_id, None)
            ids[event.message_id] = at if previous is None else min(previous, at)
            if len(ids) > self.per_account:
                ids.popitem(last=False)

    def remember_cursor(self, key: tuple[str, str], cursor: Mapping[str, str]) -> None:
        """Record a committed cursor."""
        self._cursors[key] = dict(cursor)
