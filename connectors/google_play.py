"""Google Play reviews of one app (Google Play Developer API v3, platform-apis.md 5).

A review holds the user's current comment (``userComment``, with ``lastModified`` and
``starRating``) and the developer's current reply (``developerComment.lastModified``). Both
times move when their author edits, so the events are keyed by what the data can show:

* the user's comment last modified at U is a ``customer`` event ``<reviewId>/<U seconds>`` at
  U, with its rating. A user who edits again makes another event. Before a reply that changes
  nothing (a wait is already open: metrics.md section 2, rule 2); after a reply it is a new
  customer turn and opens a new wait, because the user has changed their review after the
  answer and is waiting again;
* a reply modified at D >= U answers that comment: ``business`` event
  ``<reviewId>/<U seconds>/reply`` at D. Its id does not change when the developer edits the
  reply, so the store keeps the earliest time (rule 8), and the cursor's reply memory makes this
  connector never report it later than it first did;
* a reply older than the user's comment (D < U) answered an earlier version of the review:
  ``business`` event ``<reviewId>/reply`` at D. It closes a wait opened by that version if
  replywatch saw it, and changes nothing otherwise.

These ids depend only on what one response shows, so any order of polls gives the same events.

Coverage (platform-apis.md 5): the API lists only reviews with text, on the production track,
that users created or modified in the last seven days; older ones are only in the Play Console
CSV exports. Each poll therefore reads the whole list (pages of ``page_size``, default 100, the
documented maximum), and the cursor keeps when the last successful poll read it (the server's
``Date``). When more than about seven days pass between two successful polls, or a first poll's
backfill reaches further back than seven days, reviews may be lost: that counts once in
``FetchResult.missed`` and logs one warning. A review that leaves the window unanswered is not
read again, so a reply written after that is never seen.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import aiohttp

from connectors._google import GoogleClient, ReplyMemory, current_token, parse_rfc3339
from connectors._reviews import review_event
from connectors.base import AuthorRole, ConnectorSettings, Event, FetchResult
from connectors.errors import ConnectorResponseError
from connectors.platform import PlatformSpec

__all__ = ["WINDOW", "GooglePlayConnector", "parse_play_time"]

log = logging.getLogger("connectors.google_play")

WINDOW = timedelta(days=7)
# Google does not say how exactly "the last week" is cut: count a gap a little early, and let a
# backfill of exactly seven days (the default) pass.
TOLERANCE = timedelta(hours=1)
DEFAULT_PAGE_SIZE = 100
# The GET quota is per app and per hour (200): waiting an hour restores it.
THROTTLE_WAIT = 3600.0


def parse_play_time(value: object) -> datetime:
    """Play's ``{"seconds": "<int64 as string>", "nanos": <int>}`` as an aware UTC datetime."""
    if not isinstance(value, dict):
        raise ValueError("a Play time must be an object")
    seconds, nanos = value.get("seconds"), value.get("nanos", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | str):
        raise ValueError("a Play time needs seconds")
    if isinstance(nanos, bool) or not isinstance(nanos, int) or not 0 <= nanos < 10**9:
        raise ValueError("a Play time has bad nanos")
    whole = int(seconds)  # int64 as a string; ValueError when it is not a number
    # Nanoseconds are cut to microseconds, which can only make a time earlier.
    try:
        return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=nanos // 1000)
    except (OverflowError, OSError):
        raise ValueError(f"a Play time {whole} is out of range") from None


@dataclass(frozen=True, slots=True)
class _Review:
    id: str
    written: datetime | None
    rating: int | None
    replied: datetime | None


class GooglePlayConnector:
    """Polls the reviews of one app on Google Play."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "google_play",
        ids=("package_name",),
        secrets=("access_token",),
        channels=("review",),
        default_channel="review",
        poll_interval_seconds=900.0,
        launched=date(2008, 10, 22),
    )
    platform: ClassVar[str] = record.name
    default_base_url: ClassVar[str] = "https://androidpublisher.googleapis.com"

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        try:
            package = settings.ids["package_name"].strip()
            token = settings.secrets["access_token"]
        except KeyError as missing:
            raise self._bad(f"missing setting {missing.args[0]}") from None
        raw_size = settings.options.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= DEFAULT_PAGE_SIZE:
            raise self._bad(f"option page_size must be 1-{DEFAULT_PAGE_SIZE}")
        self.page_size = int(raw_size)
        self.path = f"androidpublisher/v3/applications/{package}/reviews"
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
        """Every review Google still lists; counts what a gap in polling may have lost."""
        # Read at every poll: a mapping that re-reads a refreshed token file takes effect.
        self.client.access_token = current_token(self.settings, self.platform)
        memory = ReplyMemory(cursor.get("replies"))
        events: list[Event] = []
        read_at: datetime | None = None
        async for reviews, server_time in self._pages():
            read_at = read_at or server_time
            for review in reviews:
                events += self._events(review, memory)
        # The server's clock says what "the last week" meant for this read.
        read_at = read_at or datetime.now(UTC)
        missed = self._gap(cursor, read_at)
        new_cursor = {"checked": read_at.isoformat()}
        if len(memory):
            new_cursor["replies"] = memory.encode()
        return FetchResult(tuple(events), new_cursor, missed)

    def _gap(self, cursor: Mapping[str, str], read_at: datetime) -> int:
        """1 when reviews may have aged out unseen since the last successful poll, else 0."""
        where = f"{self.platform}/{self.settings.account}"
        if not cursor:
            asked = read_at - self.settings.backfill_since
            if asked <= WINDOW + TOLERANCE:
                return 0
            log.warning(
                "%s: backfill asks for %.1f days but Google Play lists only reviews created or "
                "modified in the last 7; older ones are only in Play Console's CSV exports",
                where,
                asked / timedelta(days=1),
                extra={"event": "backfill_truncated", **self._log_fields()},
            )
            return 1
        try:
            checked = parse_rfc3339(cursor.get("checked"))
        except ValueError:
            return 0  # no known last poll to measure from
        since = read_at - checked
        if since <= WINDOW - TOLERANCE:
            return 0
        log.warning(
            "%s: %.1f days since the last successful poll but Google Play lists only the "
            "last 7: reviews created or modified before %s may be missing",
            where,
            since / timedelta(days=1),
            (read_at - WINDOW).isoformat(timespec="minutes"),
            extra={"event": "poll_gap_exceeded_window", **self._log_fields()},
        )
        return 1

    async def _pages(self) -> AsyncIterator[tuple[list[_Review], datetime | None]]:
        """Each page's reviews, with the server's clock when it answered."""
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            params = {"maxResults": str(self.page_size)}
            if token:
                params["token"] = token
            page = await self.client.get(self.path, params)
            # Google leaves out empty lists, so a page without `reviews` has none.
            items = page.body.get("reviews", [])
            if not isinstance(items, list):
                raise self._bad("a reviews value that is not a list")
            yield [self._parse(item) for item in items], page.server_time
            paging = page.body.get("tokenPagination")
            following = paging.get("nextPageToken") if isinstance(paging, dict) else None
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
            raise self._bad("a review without a reviewId")
        comments = item.get("comments")
        if not isinstance(comments, list):
            raise self._bad("a review without a comments list")
        user = self._latest(comments, "userComment")
        developer = self._latest(comments, "developerComment")
        rating = None
        if user is not None:
            stars = user[1].get("starRating")
            if isinstance(stars, int) and not isinstance(stars, bool) and 1 <= stars <= 5:
                rating = stars
        return _Review(
            ident,
            user[0] if user else None,
            rating,
            developer[0] if developer else None,
        )

    def _latest(self, comments: list[Any], kind: str) -> tuple[datetime, dict[str, Any]] | None:
        found: tuple[datetime, dict[str, Any]] | None = None
        for comment in comments:
            part = comment.get(kind) if isinstance(comment, dict) else None
            if not isinstance(part, dict):
                continue
            try:
                at = parse_play_time(part.get("lastModified"))
            except ValueError:
                raise self._bad(f"a {kind} whose lastModified is missing or unreadable") from None
            if found is None or at > found[0]:
                found = (at, part)
        return found

    def _events(self, review: _Review, memory: ReplyMemory) -> list[Event]:
        written, replied = review.written, review.replied
        if written is None:
            return []  # a reply with no user comment left: nothing is waiting
        if max(written, replied or written) < self.settings.backfill_since:
            return []
        events = [self._customer(review, written)]
        if replied is None:
            return events
        if replied >= written:
            reply_id = f"{review.id}/{_seconds(written)}/reply"
        else:
            # The user changed the review after this reply: it answered an earlier version.
            reply_id = f"{review.id}/reply"
        events.append(self._event(review, reply_id, memory.earliest(reply_id, replied)))
        return events

    def _customer(self, review: _Review, written: datetime) -> Event:
        return self._event(
            review, f"{review.id}/{_seconds(written)}", written, "customer", review.rating
        )

    def _event(
        self,
        review: _Review,
        message_id: str,
        at: datetime,
        role: AuthorRole = "business",
        rating: int | None = None,
    ) -> Event:
        return review_event(self.settings, self.platform, review.id, message_id, role, at, rating)

    def _log_fields(self) -> dict[str, str]:
        return {"platform": self.platform, "account": self.settings.account, "channel": "review"}

    def _bad(self, what: str) -> ConnectorResponseError:
        return ConnectorResponseError(f"{self.platform}/{self.settings.account}: {what}")


def _seconds(at: datetime) -> int:
    """Whole epoch seconds, as Play's ``lastModified.seconds`` shows them."""
    return int(at.replace(microsecond=0).timestamp())
