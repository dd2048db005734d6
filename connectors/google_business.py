"""Google Business Profile reviews of one location (My Business API v4, platform-apis.md 4).

Each review is a ``customer`` event in channel ``review``: thread and message id are the
``reviewId``, the time is ``createTime`` and the rating is ``starRating`` (``ONE``..``FIVE`` as
1-5). ``STAR_RATING_UNSPECIFIED``, or a value Google adds later, gives no rating: the review
still opens a wait, but belongs to no rating tier (so never to ``negative``). The owner's
``reviewReply`` is a ``business`` event with the stable id ``<reviewId>/reply``.

Reply times (metrics.md section 2, rule 8): ``reviewReply.updateTime`` moves later whenever the
owner edits the reply. The stable id lets the store keep the earliest time it saw, and the
cursor's reply memory (:class:`connectors._google.ReplyMemory`) makes this connector report a
reply no later than the first time it returned it. An edit made before replywatch first saw
the reply cannot be undone: the first reply time is gone from Google's data by then.

Review edits bump ``updateTime`` but keep ``createTime``; they are not new customer turns,
because Google gives no time for the edit itself and may bump ``updateTime`` for other reasons.

Polling: reviews come ``updateTime desc`` in pages of 50 and are read until one was last updated
before the floor: the high-water mark minus an hour of overlap, or, when earlier, the last
update of the oldest review still unanswered within ``reply_lookback_days`` (default 30). The
second bound is there because Google does not document whether a reply bumps the review's
``updateTime``: if it does not, a late reply to an older review is only seen by reading down
to that review. The cursor holds only our own ISO marks, never Google page tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import aiohttp

from connectors._google import GoogleClient, ReplyMemory, current_token, parse_rfc3339
from connectors._reviews import review_event
from connectors.base import AuthorRole, ConnectorSettings, Event, FetchResult
from connectors.errors import ConnectorResponseError
from connectors.platform import PlatformSpec

__all__ = ["STAR_RATINGS", "GoogleBusinessConnector"]

PAGE_SIZE = 50  # the documented maximum
# Reviews can become readable a little after their updateTime; re-reading an hour is cheap.
OVERLAP = timedelta(hours=1)
DEFAULT_LOOKBACK_DAYS = 30.0  # the `reviews` profile's window (metrics.md section 5)
# The Business Profile quota is per minute (300 QPM): a minute restores it.
THROTTLE_WAIT = 60.0
STAR_RATINGS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


@dataclass(frozen=True, slots=True)
class _Review:
    id: str
    created: datetime
    updated: datetime
    rating: int | None
    replied: datetime | None


def _strip(value: str, prefix: str) -> str:
    # Accept ids pasted as resource names ("accounts/123") as well as bare ids.
    return value.strip().strip("/").removeprefix(prefix).strip("/")


class GoogleBusinessConnector:
    """Polls the reviews of one Google Business Profile location."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "google_business",
        ids=("account_id", "location_id"),
        secrets=("access_token",),
        channels=("review",),
        default_channel="review",
        poll_interval_seconds=300.0,
        # Google Places reviews, which Business Profile inherited.
        launched=date(2007, 1, 1),
    )
    platform: ClassVar[str] = record.name
    default_base_url: ClassVar[str] = "https://mybusiness.googleapis.com"

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        where = f"{self.platform}/{settings.account}"
        try:
            account_id = _strip(settings.ids["account_id"], "accounts/")
            location_id = _strip(settings.ids["location_id"], "locations/")
            token = settings.secrets["access_token"]
        except KeyError as missing:
            raise ConnectorResponseError(f"{where}: missing setting {missing.args[0]}") from None
        try:
            days = float(settings.options.get("reply_lookback_days", DEFAULT_LOOKBACK_DAYS))
            self.lookback = timedelta(days=days)
        except (ValueError, OverflowError):
            days = -1.0
        if not days >= 0:
            raise ConnectorResponseError(
                f"{where}: option reply_lookback_days must be a number of days"
            ) from None
        self.path = f"v4/accounts/{account_id}/locations/{location_id}/reviews"
        self.client = GoogleClient(
            base_url=settings.base_url or self.default_base_url,
            access_token=token,
            session=session,
            platform=self.platform,
            account=settings.account,
            throttle_wait=THROTTLE_WAIT,
            request_timeout=settings.request_timeout,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.settings.account!r})"

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Reviews and replies updated since ``cursor``; an empty cursor backfills."""
        # Read at every poll: a mapping that re-reads a refreshed token file takes effect.
        self.client.access_token = current_token(self.settings, self.platform)
        mark = _mark(cursor.get("mark"))
        floor = self.settings.backfill_since if mark is None else mark - OVERLAP
        oldest_open = _mark(cursor.get("open"))
        if mark is not None and oldest_open is not None:
            floor = min(floor, oldest_open)
        memory = ReplyMemory(cursor.get("replies"))
        events: list[Event] = []
        newest = mark
        unanswered: list[datetime] = []
        async for review in self._reviews(floor):
            if newest is None or review.updated > newest:
                newest = review.updated
            events += self._events(review, memory)
            if review.replied is None:
                unanswered.append(review.updated)
        new_cursor = {"mark": (newest or self.settings.backfill_since).isoformat()}
        if newest is not None:
            still_open = [at for at in unanswered if at >= newest - self.lookback]
            if still_open:
                new_cursor["open"] = min(still_open).isoformat()
        if len(memory):
            new_cursor["replies"] = memory.encode()
        return FetchResult(tuple(events), new_cursor)

    async def _reviews(self, floor: datetime) -> AsyncIterator[_Review]:
        """Reviews newest-updated first, down to the first one updated before ``floor``."""
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            params = {"pageSize": str(PAGE_SIZE), "orderBy": "updateTime desc"}
            if token:
                params["pageToken"] = token
            body = (await self.client.get(self.path, params)).body
            # Google leaves out empty lists, so a page without `reviews` has none.
            items = body.get("reviews", [])
            if not isinstance(items, list):
                raise self._bad("a reviews value that is not a list")
            for item in items:
                review = self._parse(item)
                if review.updated < floor:
                    return
                yield review
            following = body.get("nextPageToken")
            if not isinstance(following, str) or not following:
                return
            if following in seen_tokens:
                raise self._bad("a page token that repeats")
            seen_tokens.add(following)
            token = following

    def _parse(self, item: Any) -> _Review:
        if not isinstance(item, dict):
            raise self._bad("a review that is not an object")
        ident = item.get("reviewId")
        if not isinstance(ident, str) or not ident:
            name = item.get("name")
            ident = name.rsplit("/", 1)[-1] if isinstance(name, str) else None
        if not ident:
            raise self._bad("a review without an id")
        created = self._time(item.get("createTime"), "review createTime")
        updated_raw = item.get("updateTime")
        updated = created if updated_raw is None else self._time(updated_raw, "updateTime")
        stars = item.get("starRating")
        rating = STAR_RATINGS.get(stars) if isinstance(stars, str) else None
        replied = None
        reply = item.get("reviewReply")
        if reply is not None:
            if not isinstance(reply, dict):
                raise self._bad("a reviewReply that is not an object")
            replied = self._time(reply.get("updateTime"), "reviewReply updateTime")
        return _Review(ident, created, updated, rating, replied)

    def _events(self, review: _Review, memory: ReplyMemory) -> list[Event]:
        events = [self._event(review.id, review.id, "customer", review.created, review.rating)]
        if review.replied is not None:
            reply_id = f"{review.id}/reply"
            at = memory.earliest(reply_id, review.replied)
            events.append(self._event(review.id, reply_id, "business", at, None))
        return events

    def _event(
        self,
        thread: str,
        message: str,
        role: AuthorRole,
        at: datetime,
        rating: int | None,
    ) -> Event:
        return review_event(self.settings, self.platform, thread, message, role, at, rating)

    def _time(self, value: object, what: str) -> datetime:
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise self._bad(f"a {what} that is missing or unreadable") from None

    def _bad(self, what: str) -> ConnectorResponseError:
        return ConnectorResponseError(f"{self.platform}/{self.settings.account}: {what}")


def _mark(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None  # a damaged mark restarts from the backfill bound
