"""What the review connectors share: their events, and the re-read window of newest-first sites.

Every review site (Google Business Profile, Google Play, App Store, Trustpilot) makes the same
two events: the review is a ``customer`` event in channel ``review`` with its rating, and the
owner's answer a ``business`` event in the review's thread (:func:`review_event`).

Re-read window (App Store, Trustpilot): a reply often comes days after its review, when the
review is far older than any overlap, so a poll reads back to the newer of two marks: the
newest review seen (minus an hour) and the oldest review still unanswered (no older than
``options.reply_lookback_days``, default 30).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from connectors.base import AuthorRole, ConnectorSettings, Event

__all__ = [
    "DEFAULT_REPLY_LOOKBACK_DAYS",
    "OVERLAP",
    "ReviewWindow",
    "review_event",
    "reviews_since",
]

log = logging.getLogger("connectors.reviews")
OVERLAP = timedelta(hours=1)
DEFAULT_REPLY_LOOKBACK_DAYS = 30


def review_event(
    settings: ConnectorSettings,
    platform: str,
    review_id: str,
    message_id: str,
    role: AuthorRole,
    at: datetime,
    rating: int | None = None,
    url: str | None = None,
) -> Event:
    """One review (``customer``, with its rating) or its answer (``business``) as an event."""
    return Event(
        platform=platform,
        account=settings.account,
        channel="review",
        thread_id=review_id,
        message_id=message_id,
        author_role=role,
        created_at=at,
        rating=rating,
        thread_url=url,
    )


class ReviewLike(Protocol):
    """What the window needs to know about a review."""

    @property
    def created(self) -> datetime: ...

    @property
    def replied_at(self) -> datetime | None: ...


R = TypeVar("R", bound=ReviewLike)


async def reviews_since(pages: AsyncIterator[Sequence[R]], since: datetime) -> list[R]:
    """The reviews at or after ``since`` from pages listed newest first."""
    reviews: list[R] = []
    async for page in pages:
        reviews += [r for r in page if r.created >= since]
        if any(r.created < since for r in page):
            break  # newest first: everything further is older still
    return reviews


class ReviewWindow:
    """Where a poll starts reading, and the cursor that says where the next one starts."""

    def __init__(self, settings: ConnectorSettings, where: str) -> None:
        self.settings = settings
        self.lookback = _lookback(settings, where)

    def lower_bound(self, cursor: Mapping[str, str], now: datetime) -> datetime:
        """The oldest creation time this poll must read back to."""
        backfill = self.settings.backfill_since
        mark = _cursor_time(cursor, "review")
        if mark is None:
            return backfill
        since = max(mark - OVERLAP, backfill - OVERLAP)
        open_since = _cursor_time(cursor, "open_since")
        if open_since is not None:
            since = min(since, max(open_since, now - self.lookback))
        return since

    def next_cursor(
        self, cursor: Mapping[str, str], reviews: Sequence[ReviewLike], now: datetime
    ) -> dict[str, str]:
        """The newest review seen, and the oldest one still waiting for a reply."""
        new = dict(cursor)
        marks = [r.created for r in reviews]
        previous = _cursor_time(cursor, "review")
        if previous is not None:
            marks.append(previous)
        new["review"] = max(marks, default=self.settings.backfill_since).isoformat()
        horizon = now - self.lookback
        waiting = [r.created for r in reviews if r.replied_at is None and r.created >= horizon]
        if waiting:
            new["open_since"] = min(waiting).isoformat()
        else:
            new.pop("open_since", None)
        return new


def _lookback(settings: ConnectorSettings, where: str) -> timedelta:
    raw = settings.options.get("reply_lookback_days")
    if raw is None:
        return timedelta(days=DEFAULT_REPLY_LOOKBACK_DAYS)
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 3650:
        # One account's typo must not stop the monitor: say so once and use the default.
        log.warning(
            "%s: options.reply_lookback_days %r is not 0-3650 days; using %d",
            where,
            raw,
            DEFAULT_REPLY_LOOKBACK_DAYS,
            extra={
                "event": "option_ignored",
                "account": settings.account,
                "option": "reply_lookback_days",
            },
        )
        days = DEFAULT_REPLY_LOOKBACK_DAYS
    return timedelta(days=days)


def _cursor_time(cursor: Mapping[str, str], key: str) -> datetime | None:
    # The cursor holds what next_cursor wrote (isoformat); anything else is ignored.
    value = cursor.get(key)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
