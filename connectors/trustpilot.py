"""Trustpilot: service reviews of one business unit and the company's replies.

Reads the private reviews endpoint (platform-apis.md 7):
``GET /v1/private/business-units/{id}/reviews?page=N&perPage=100&orderBy=createdat.desc``
with the application's ``apikey`` header and a business user's OAuth bearer token. Pages are
1-based; an empty page is the end. When a body links onwards (``links`` with
``rel: "next-page"``, a shape platform-apis.md marks UNCONFIRMED) only the page number is taken
from it: requests always go to the configured host and path.

Call budget: Trustpilot asks clients to stay under 833 calls per 5 minutes and 10,000 per
hour. Every call is counted (per API key, shared by all accounts of this process) and a call
that would exceed either window is not made: ``ConnectorRateLimited`` says when a slot frees.

Events: the review is a ``customer`` event with its ``stars``; ``companyReply`` is a
``business`` event with the stable id ``<review id>/reply`` at ``companyReply.createdAt``
(edits only move ``updatedAt``, so an edit never moves the reply later).

Cursor: ``review`` is the newest ``createdAt`` seen (read again with an hour of overlap);
``open_since`` is the oldest review still unanswered, since a reply to an older review is only
visible by reading that review again. Reviews unanswered for longer than
``options.reply_lookback_days`` (default 30) are no longer re-read.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import aiohttp

from connectors._http import Refusals, refusal, send
from connectors._reviews import ReviewWindow, review_event, reviews_since
from connectors.base import AuthorRole, ConnectorSettings, Event, FetchResult
from connectors.errors import ConnectorRateLimited, ConnectorResponseError
from connectors.platform import PlatformSpec

__all__ = [
    "DEFAULT_LIMITS",
    "CallBudget",
    "ReviewPage",
    "TrustpilotConnector",
    "parse_reviews_page",
    "review_url",
]

log = logging.getLogger("connectors.trustpilot")

DEFAULT_BASE_URL = "https://api.trustpilot.com"
# (window seconds, calls allowed in any such window): developers.trustpilot.com/rate-limiting.
DEFAULT_LIMITS: tuple[tuple[float, int], ...] = ((300.0, 833), (3600.0, 10_000))
PER_PAGE = 100  # the documented maximum
# The 429 body and headers are UNCONFIRMED; without a Retry-After, wait out the short window.
DEFAULT_RATE_LIMIT_WAIT = 300.0
MAX_EMPTY_PAGES = 5


class CallBudget:
    """Counts calls in sliding windows and says how long until the next one is allowed."""

    def __init__(
        self,
        limits: tuple[tuple[float, int], ...] = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._longest = max(span for span, _ in limits)
        self._calls: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - self._longest:
            self._calls.popleft()

    def wait(self) -> float:
        """Seconds until one more call stays within every window (0: call now)."""
        now = self.clock()
        self._prune(now)
        longest_wait = 0.0
        for span, allowed in self.limits:
            recent = [at for at in self._calls if at > now - span]
            if len(recent) >= allowed:
                # The call that must leave the window before there is room for one more.
                leaving = recent[len(recent) - allowed]
                longest_wait = max(longest_wait, leaving + span - now)
        return longest_wait

    def spend(self) -> None:
        """Record one call made now."""
        self._calls.append(self.clock())

    def used(self) -> float:
        """The fullest window's share of its allowance, 0-1."""
        now = self.clock()
        self._prune(now)
        return max(
            min(1.0, sum(1 for at in self._calls if at > now - span) / allowed)
            for span, allowed in self.limits
        )


# One budget per API key: accounts sharing an application key share its allowance.
_BUDGETS: dict[str, CallBudget] = {}


def _shared_budget(api_key: str) -> CallBudget:
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    return _BUDGETS.setdefault(digest, CallBudget())


@dataclass(frozen=True, slots=True)
class _Review:
    id: str
    stars: int | None
    created: datetime
    replied_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """One page of private reviews, newest first, and the page a body says comes next."""

    reviews: tuple[_Review, ...]
    next_page: int | None


def review_url(review_id: str) -> str:
    """The review's public page (the site's URL pattern; the API's own links are UNCONFIRMED)."""
    return f"https://www.trustpilot.com/reviews/{review_id}"


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        # Trustpilot's examples end in Z; a bare time is taken as UTC rather than refused.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _stars(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    return None


def _reply_time(reply: object, review_id: str, where: str) -> datetime | None:
    if reply is None:
        return None
    times = []
    if isinstance(reply, dict):
        for key in ("createdAt", "updatedAt"):
            try:
                times.append(_parse_time(reply.get(key)))
            except ValueError:
                continue
    if not times:
        raise ConnectorResponseError(f"{where}: reply to review {review_id} without a time")
    # createdAt, but never later than updatedAt should the two disagree.
    return min(times)


def _next_page(body: dict[str, Any]) -> int | None:
    # UNCONFIRMED shape: [{"rel": "next-page", "href": "...?page=2&...", "method": "GET"}].
    links = body.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "next-page":
            continue
        href = link.get("href")
        pages = parse_qs(urlsplit(href).query).get("page") if isinstance(href, str) else None
        if pages and pages[0].isdigit() and int(pages[0]) >= 1:
            return int(pages[0])
    return None


def parse_reviews_page(body: object, where: str) -> ReviewPage:
    """Read a private reviews page; a malformed one is a ``ConnectorResponseError``."""
    if not isinstance(body, dict) or not isinstance(body.get("reviews"), list):
        raise ConnectorResponseError(f"{where}: page without a reviews list")
    reviews = []
    for item in body["reviews"]:
        if not isinstance(item, dict):
            continue
        review_id = item.get("id")
        if not isinstance(review_id, str) or not review_id:
            raise ConnectorResponseError(f"{where}: review without an id")
        try:
            created = _parse_time(item.get("createdAt"))
        except ValueError:
            raise ConnectorResponseError(
                f"{where}: review {review_id} without a readable createdAt"
            ) from None
        replied_at = _reply_time(item.get("companyReply"), review_id, where)
        reviews.append(_Review(review_id, _stars(item.get("stars")), created, replied_at))
    return ReviewPage(tuple(reviews), _next_page(body))


class TrustpilotConnector:
    """Polls one business unit's service reviews with an API key and a business user token."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "trustpilot",
        ids=("business_unit_id",),
        secrets=("api_key", "access_token"),
        channels=("review",),
        default_channel="review",
        poll_interval_seconds=600.0,
        launched=date(2007, 1, 1),
    )
    platform: ClassVar[str] = record.name

    def __init__(
        self,
        settings: ConnectorSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        budget: CallBudget | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.where = f"{self.platform}/{settings.account}"
        try:
            self.business_unit_id = settings.ids["business_unit_id"]
            self._api_key = settings.secrets["api_key"]
            self._access_token = settings.secrets["access_token"]
        except KeyError as missing:
            raise ConnectorResponseError(
                f"{self.where}: missing setting {missing.args[0]}"
            ) from None
        self.budget = budget if budget is not None else _shared_budget(self._api_key)
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.window = ReviewWindow(settings, self.where)
        self._refusals = Refusals(
            unauthorized=(
                "the API key or the business user access token was refused "
                "(access tokens expire: issue a new one)"
            ),
            forbidden=f"the business user may not read business unit {self.business_unit_id}",
            not_found=f"business unit {self.business_unit_id} not found",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.settings.account!r})"

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Reviews and replies since ``cursor``; an empty cursor backfills."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        reviews = await reviews_since(self._pages(), self.window.lower_bound(cursor, now))
        events = [event for review in reviews for event in self._events(review)]
        return FetchResult(
            tuple(events), self.window.next_cursor(cursor, reviews, now), 0, self.budget.used()
        )

    def _events(self, review: _Review) -> list[Event]:
        events = [self._event(review, review.id, "customer", review.created, review.stars)]
        if review.replied_at is not None:
            events.append(self._event(review, f"{review.id}/reply", "business", review.replied_at))
        return events

    def _event(
        self,
        review: _Review,
        message_id: str,
        role: AuthorRole,
        at: datetime,
        stars: int | None = None,
    ) -> Event:
        url = review_url(review.id)
        return review_event(
            self.settings, self.platform, review.id, message_id, role, at, stars, url
        )

    async def _pages(self) -> AsyncIterator[tuple[_Review, ...]]:
        page_number, empty = 1, 0
        while True:
            page = parse_reviews_page(await self._request(page_number), self.where)
            yield page.reviews
            if not page.reviews:
                empty += 1
                if page.next_page is None:
                    return  # past the end: the documented empty array
                if empty >= MAX_EMPTY_PAGES:
                    raise ConnectorResponseError(
                        f"{self.where}: {empty} empty pages in a row that still link onwards"
                    )
                page_number = page.next_page
                continue
            empty = 0
            if page.next_page is not None and page.next_page > page_number:
                page_number = page.next_page
            elif page.next_page is None and len(page.reviews) < PER_PAGE:
                return  # a short page is the last one; saves a call
            else:
                page_number += 1

    async def _request(self, page: int) -> object:
        wait = self.budget.wait()
        if wait > 0:
            raise ConnectorRateLimited(
                f"{self.where}: Trustpilot's call budget is used up; not calling", wait
            )
        self.budget.spend()
        reply = await send(
            self.session,
            "GET",
            f"{self.base_url}/v1/private/business-units/{self.business_unit_id}/reviews",
            where=self.where,
            timeout=self.settings.request_timeout,
            params={"page": str(page), "perPage": str(PER_PAGE), "orderBy": "createdat.desc"},
            headers={
                "apikey": self._api_key,
                "Authorization": f"Bearer {self._access_token}",
                "Accept": "application/json",
            },
            allow_redirects=False,
        )
        if reply.status >= 300:
            # Trustpilot's error bodies are not documented; the status alone decides.
            raise refusal(
                reply.status,
                f"{self.where}: HTTP {reply.status}",
                wait=reply.retry_after(DEFAULT_RATE_LIMIT_WAIT),
                words=self._refusals,
            )
        return reply.json()
