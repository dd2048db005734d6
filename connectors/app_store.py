"""Apple App Store Connect: customer reviews of one app and the developer's responses.

Auth (platform-apis.md 6): every request carries a short-lived ES256 JWT signed with the team's
App Store Connect API key (.p8); it is made on demand and made anew when less than two minutes
of it remain, so a token never expires in flight. The key is read when the first token is
signed: a bad key pauses this account (``ConnectorAuthError``) instead of stopping the monitor.

Paging: ``GET /v1/apps/{id}/customerReviews?sort=-createdDate&limit=200&include=response``,
newest first, following the full ``links.next`` URL (only on the configured host: the token
must never go elsewhere) until a review is older than the poll's lower bound.

Events: the review is a ``customer`` event with its rating; its response (at most one, from
``included``) is a ``business`` event with the stable id ``<review id>/response`` at its
``lastModifiedDate``. Apple moves that date on every edit, and the store keeps the earliest
time it saw for a message id, so an edit never moves the reply later (metrics.md rule 8).

Cursor: ``review`` is the newest ``createdDate`` seen (read again with an hour of overlap);
``open_since`` is the oldest review still unanswered, because a response to an older review
is only visible by reading that review again. Reviews unanswered for longer than
``options.reply_lookback_days`` (default 30) are no longer re-read.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from yarl import URL

from connectors._http import Refusals, Reply, refusal, send
from connectors._reviews import ReviewWindow, review_event, reviews_since
from connectors.base import AuthorRole, ConnectorSettings, Event, FetchResult
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorResponseError
from connectors.platform import PlatformSpec

__all__ = [
    "AUDIENCE",
    "AppStoreConnector",
    "ReviewPage",
    "parse_rate_limit",
    "parse_reviews_page",
]

log = logging.getLogger("connectors.app_store")

DEFAULT_BASE_URL = "https://api.appstoreconnect.apple.com"
AUDIENCE = "appstoreconnect-v1"
# Apple refuses tokens that expire more than 20 minutes ahead of its own clock; 15 leaves
# room for our clock running a little fast.
TOKEN_LIFETIME = 15 * 60
TOKEN_REFRESH_MARGIN = 2 * 60
PAGE_LIMIT = "200"
# Reviews can surface a little after their createdDate; re-reading an hour costs one page.
# Apple sends no Retry-After. A 429 with quota left is a burst (forum reports): a minute is
# enough. With the rolling hour used up, wait a poll interval for old calls to age out.
BURST_WAIT = 60.0
EXHAUSTED_WAIT = 900.0
# An empty page that still links onwards is followed, but not forever.
MAX_EMPTY_PAGES = 5
_SAFE_CODE = re.compile(r"^[A-Z0-9_.]{1,64}$")
_RATE_PART = re.compile(r"([a-z-]+):(\d+)")


@dataclass(frozen=True, slots=True)
class _Review:
    id: str
    rating: int | None
    created: datetime
    replied_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """One page of customerReviews: reviews newest first and the next link, if any."""

    reviews: tuple[_Review, ...]
    next_url: str | None


def _parse_time(value: object) -> datetime:
    # Apple writes local offsets ("2017-11-15T08:10:34-08:00"), sometimes "Z".
    if not isinstance(value, str) or not value:
        raise ValueError("not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("time without an offset")
    return parsed.astimezone(UTC)


def _rating(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    return None


def _ref_id(relationship: object) -> str | None:
    data = relationship.get("data") if isinstance(relationship, dict) else None
    ident = data.get("id") if isinstance(data, dict) else None
    return ident if isinstance(ident, str) and ident else None


def parse_reviews_page(body: object, where: str) -> ReviewPage:
    """Read a JSON:API customerReviews page; a malformed one is a ``ConnectorResponseError``."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ConnectorResponseError(f"{where}: page without a data list")
    responses: dict[str, dict[str, Any]] = {}
    response_of: dict[str, str] = {}
    for item in body.get("included") or []:
        if not isinstance(item, dict) or item.get("type") != "customerReviewResponses":
            continue
        ident = item.get("id")
        if isinstance(ident, str) and ident:
            responses[ident] = item
            review_id = _ref_id((item.get("relationships") or {}).get("review"))
            if review_id:
                response_of[review_id] = ident
    reviews = []
    for item in body["data"]:
        if not isinstance(item, dict) or item.get("type", "customerReviews") != "customerReviews":
            continue
        review_id = item.get("id")
        attributes = item.get("attributes")
        if not isinstance(review_id, str) or not review_id or not isinstance(attributes, dict):
            raise ConnectorResponseError(f"{where}: review without an id or attributes")
        try:
            created = _parse_time(attributes.get("createdDate"))
        except ValueError:
            raise ConnectorResponseError(
                f"{where}: review {review_id} without a readable createdDate"
            ) from None
        relationships = item.get("relationships")
        link = relationships.get("response") if isinstance(relationships, dict) else None
        response_id = _ref_id(link) or response_of.get(review_id)
        replied_at = None
        if response_id is not None and response_id in responses:
            replied_at = _response_time(responses[response_id], review_id, where)
        reviews.append(_Review(review_id, _rating(attributes.get("rating")), created, replied_at))
    links = body.get("links")
    following = links.get("next") if isinstance(links, dict) else None
    return ReviewPage(
        tuple(reviews), following if isinstance(following, str) and following else None
    )


def _response_time(response: dict[str, Any], review_id: str, where: str) -> datetime:
    attributes = response.get("attributes")
    value = attributes.get("lastModifiedDate") if isinstance(attributes, dict) else None
    try:
        return _parse_time(value)
    except ValueError:
        raise ConnectorResponseError(
            f"{where}: response to review {review_id} without a readable lastModifiedDate"
        ) from None


def parse_rate_limit(value: str | None) -> tuple[int, int] | None:
    """``user-hour-lim:3600;user-hour-rem:3599;`` -> (limit, remaining); None if unreadable."""
    if not value:
        return None
    parts = dict(_RATE_PART.findall(value))
    try:
        limit, remaining = int(parts["user-hour-lim"]), int(parts["user-hour-rem"])
    except KeyError:
        return None
    return (limit, remaining) if limit > 0 else None


def _load_key(pem: str, where: str) -> ec.EllipticCurvePrivateKey:
    # Messages name the problem, never the key; `from None` keeps the parser's error (and
    # any excerpt it might hold) out of tracebacks.
    if pem.startswith(("file:", "env:")):
        kind = pem.split(":", 1)[0]
        raise ConnectorAuthError(f"{where}: private_key is an unresolved {kind} reference")
    if "\\n" in pem and "\n" not in pem:
        pem = pem.replace("\\n", "\n")  # a .p8 pasted into one environment variable line
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnicodeError):
        raise ConnectorAuthError(
            f"{where}: private_key is not a readable PEM private key "
            "(expected the contents of the AuthKey_<key id>.p8 file)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConnectorAuthError(
            f"{where}: private_key is not an EC P-256 key (App Store Connect keys are)"
        )
    return key


class AppStoreConnector:
    """Polls one app's customer reviews with a team App Store Connect API key."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "app_store",
        ids=("app_id", "issuer_id", "key_id"),
        secrets=("private_key",),
        channels=("review",),
        default_channel="review",
        poll_interval_seconds=900.0,
        launched=date(2008, 7, 10),
    )
    platform: ClassVar[str] = record.name

    def __init__(
        self,
        settings: ConnectorSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.where = f"{self.platform}/{settings.account}"
        try:
            self.app_id = settings.ids["app_id"]
            self.issuer_id = settings.ids["issuer_id"]
            self.key_id = settings.ids["key_id"]
            self._pem = settings.secrets["private_key"]
        except KeyError as missing:
            raise ConnectorResponseError(
                f"{self.where}: missing setting {missing.args[0]}"
            ) from None
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.window = ReviewWindow(settings, self.where)
        self.quota_used: float | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.settings.account!r})"

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    # -- auth -------------------------------------------------------------------------------

    def _bearer(self) -> str:
        """A signed token with at least two minutes left, made anew when needed."""
        now = self.clock()
        if self._token is not None and self._token_expires - now > TOKEN_REFRESH_MARGIN:
            return self._token
        if self._key is None:
            self._key = _load_key(self._pem, self.where)
        issued = int(now)
        claims = {
            "iss": self.issuer_id,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME,
            "aud": AUDIENCE,
        }
        try:
            token = jwt.encode(
                claims, self._key, algorithm="ES256", headers={"kid": self.key_id, "typ": "JWT"}
            )
        except jwt.PyJWTError:
            raise ConnectorAuthError(f"{self.where}: could not sign the API token") from None
        self._token, self._token_expires = token, float(issued + TOKEN_LIFETIME)
        return token

    # -- polling ----------------------------------------------------------------------------

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Reviews and responses since ``cursor``; an empty cursor backfills."""
        self.quota_used = None
        now = datetime.fromtimestamp(self.clock(), UTC)
        reviews = await reviews_since(self._pages(), self.window.lower_bound(cursor, now))
        events = [event for review in reviews for event in self._events(review)]
        return FetchResult(
            tuple(events), self.window.next_cursor(cursor, reviews, now), 0, self.quota_used
        )

    def _events(self, review: _Review) -> list[Event]:
        events = [self._event(review, review.id, "customer", review.created, review.rating)]
        if review.replied_at is not None:
            events.append(
                self._event(review, f"{review.id}/response", "business", review.replied_at)
            )
        return events

    def _event(
        self,
        review: _Review,
        message_id: str,
        role: AuthorRole,
        at: datetime,
        rating: int | None = None,
    ) -> Event:
        return review_event(self.settings, self.platform, review.id, message_id, role, at, rating)

    async def _pages(self) -> AsyncIterator[tuple[_Review, ...]]:
        url: URL = URL(f"{self.base_url}/v1/apps/{self.app_id}/customerReviews").with_query(
            {"sort": "-createdDate", "limit": PAGE_LIMIT, "include": "response"}
        )
        empty = 0
        while True:
            page = parse_reviews_page(await self._request(url), self.where)
            yield page.reviews
            if page.next_url is None:
                return
            empty = 0 if page.reviews else empty + 1
            if empty >= MAX_EMPTY_PAGES:
                raise ConnectorResponseError(
                    f"{self.where}: {empty} empty pages in a row that still link onwards"
                )
            url = self._same_host(page.next_url)

    def _same_host(self, link: str) -> URL:
        theirs, ours = urlsplit(link), urlsplit(self.base_url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            # The bearer token goes only to the host we were configured for.
            raise ConnectorResponseError(f"{self.where}: links.next points at another host")
        return URL(link, encoded=True)

    # -- HTTP -------------------------------------------------------------------------------

    async def _request(self, url: URL) -> object:
        reply = await send(
            self.session,
            "GET",
            url,
            where=self.where,
            timeout=self.settings.request_timeout,
            headers={"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"},
            allow_redirects=False,
        )
        rate = parse_rate_limit(reply.headers.get("X-Rate-Limit"))
        if rate is not None:
            # A rolling hour: the newest figure is the truest.
            self.quota_used = min(1.0, max(0.0, 1 - rate[1] / rate[0]))
        if reply.status >= 300:
            # The status decides what failed; a gateway's error body may be anything.
            raise self._error(reply, rate)
        return reply.json()

    def _error(self, reply: Reply, rate: tuple[int, int] | None) -> ConnectorError:
        code = _error_code(reply.json_or_none())
        if reply.status == 401:
            # The next poll signs a fresh token (it may have been refused for clock skew).
            self._token = None
        exhausted = rate is not None and rate[1] <= 0
        return refusal(
            reply.status,
            f"{self.where}: HTTP {reply.status}" + (f" {code}" if code else ""),
            wait=reply.retry_after(EXHAUSTED_WAIT if exhausted else BURST_WAIT),
            words=Refusals(
                unauthorized=(
                    "the API token was refused (revoked key, wrong key_id or issuer_id, "
                    "or a clock far off)"
                ),
                forbidden=(
                    "the API key may not read customer reviews "
                    "(it needs the Customer Support role or higher)"
                ),
                not_found=f"app {self.app_id} not found",
            ),
        )


def _error_code(body: object) -> str | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    code = first.get("code") if isinstance(first, dict) else None
    # Only Apple's upper-case codes: never echo free text from a body into a message.
    return code if isinstance(code, str) and _SAFE_CODE.match(code) else None
