"""A local fake of the Google Business Profile reviews API (My Business v4), for tests and demos.

It reproduces what the connector relies on (platform-apis.md 4 and 11): the real paths,
``pageSize`` (at most 50, more is refused), ``pageToken``/``nextPageToken``, ``orderBy``
(``updateTime desc`` by default, ``rating``, ``rating desc``), RFC 3339 ``Z`` times with 0, 3 or 9
fractional digits, ``starRating`` words, ``reviewReply`` present or absent, Bearer-token checks
with Google's error envelope, and ``PUT .../reviews/{r}/reply``. State is changed by helpers
(reviews, replies, edits of either at given times); failure switches
(:meth:`FakeGoogleApi.fail_next`) make it throttle, refuse tokens, fail, hang, reset the
connection or answer garbage on demand.

Google does not document whether a reply bumps the review's ``updateTime``;
``reply_bumps_review`` chooses (default: it does not, the harder case for a poller).

:class:`FakeGoogleApi` holds what this fake and the Google Play fake share.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

from aiohttp import web

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes._switches import Failure, FailureSwitches

__all__ = [
    "FAILURE_KINDS",
    "Failure",
    "FakeGoogleApi",
    "FakeGoogleBusiness",
    "demo_traffic",
    "google_time",
]

FAILURE_KINDS = frozenset({
    "server_error", "slow", "reset", "rate_limited", "expired_token", "permission",
    "malformed", "truncated", "missing_fields", "empty_page_with_next", "html", "recorded",
})  # fmt: skip
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 50
STARS = ("STAR_RATING_UNSPECIFIED", "ONE", "TWO", "THREE", "FOUR", "FIVE")
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)

GOOGLE_REALM = "https://accounts.google.com/"

PageBuilder = Callable[[web.Request], dict[str, Any]]
Checker = Callable[[web.Request], web.Response | None]


def google_time(at: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, and 0, 3 or 9 fractional digits as Google writes them."""
    at = at.astimezone(UTC)
    whole = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond == 0:
        return f"{whole}Z"
    if at.microsecond % 1000 == 0:
        return f"{whole}.{at.microsecond // 1000:03d}Z"
    return f"{whole}.{at.microsecond:06d}000Z"


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("fake Google times must be timezone-aware")
    return at.astimezone(UTC)


class FakeGoogleApi(FailureSwitches):
    """What the Google fakes share: a clock, token checks, page tokens and failure switches.

    ``fail_next`` options: ``server_error`` takes ``status`` (500 or 503) and ``html``;
    ``rate_limited`` takes ``retry_after``; ``missing_fields`` takes ``field`` (commas for
    several); ``recorded`` takes ``body``, ``status`` and ``headers``. aiohttp retries an
    idempotent request once after a connection reset, so ``reset`` needs ``times=2``.
    """

    failure_kinds = FAILURE_KINDS

    service: ClassVar[str] = "googleapis.com"

    def __init__(self, now: datetime) -> None:
        self.now = _aware(now)
        self.failures: deque[Failure] = deque()
        self.requests: list[str] = []
        self._serial = 0
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.on_shutdown.append(self._on_shutdown)

    # -- clock and switches ------------------------------------------------------------------

    def advance(self, delta: timedelta) -> None:
        """Move the fake's clock (it dates responses and, for Play, the 7-day window)."""
        self.now += delta

    def set_clock(self, now: datetime) -> None:
        """Set the fake's clock (the demo keeps it at the wall clock)."""
        self.now = _aware(now)

    # -- responses -----------------------------------------------------------------------------

    def json_response(
        self, body: object, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        """A JSON answer dated by the fake's clock."""
        return web.Response(
            text=json.dumps(body),
            status=status,
            content_type="application/json",
            charset="utf-8",
            headers={"Date": format_datetime(self.now, usegmt=True), **(headers or {})},
        )

    @staticmethod
    def error_body(
        code: int, status: str, message: str, reason: str | None = None, domain: str = "global"
    ) -> dict[str, Any]:
        """Google's error envelope."""
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if reason is not None:
            error["errors"] = [{"message": message, "domain": domain, "reason": reason}]
        return {"error": error}

    def unauthenticated(self) -> web.Response:
        """What Google answers for a missing, wrong or expired token."""
        body = self.error_body(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE, "authError")
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_EXPIRED",
                "domain": "googleapis.com",
                "metadata": {"service": self.service},
            }
        ]
        return self.json_response(
            body,
            401,
            {"WWW-Authenticate": f'Bearer realm="{GOOGLE_REALM}", error="invalid_token"'},
        )

    def permission_denied(self) -> web.Response:
        """What Google answers when the token's user may not read this resource."""
        return self.json_response(
            self.error_body(403, "PERMISSION_DENIED", "The caller does not have permission"), 403
        )

    def not_found(self) -> web.Response:
        """Google's answer for an unknown resource."""
        return self.json_response(
            self.error_body(404, "NOT_FOUND", "Requested entity was not found."), 404
        )

    def invalid_argument(self, message: str) -> web.Response:
        """Google's answer for a bad query parameter."""
        return self.json_response(
            self.error_body(400, "INVALID_ARGUMENT", message, "badRequest"), 400
        )

    # -- paging ------------------------------------------------------------------------------

    def page_token(self, offset: int) -> str:
        """An opaque token for the page starting at ``offset`` (never the same string twice)."""
        self._serial += 1
        raw = f"offset:{offset}:{self._serial}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def read_token(token: str) -> int | None:
        """The offset a token points at, or None for a token this fake never issued."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        kind, _, rest = text.partition(":")
        number = rest.partition(":")[0]
        return int(number) if kind == "offset" and number.isdigit() else None

    # -- serving -----------------------------------------------------------------------------

    @staticmethod
    def bearer(request: web.Request) -> str | None:
        """The Bearer token a request carries, if any."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    async def serve(
        self, request: web.Request, page: PageBuilder, check: Checker | None = None
    ) -> web.StreamResponse:
        """Answer with ``page``; a queued failure answers first, even before ``check``.

        ``check`` validates the query (returning Google's refusal, or None); failures skip it
        so that recorded payloads can carry page tokens this fake never issued.
        """
        failure = self._take_failure()
        if failure is not None:
            return await self._failure_response(failure, request, page)
        refused = check(request) if check is not None else None
        return refused or self.json_response(page(request))

    async def _failure_response(
        self, failure: Failure, request: web.Request, page: PageBuilder
    ) -> web.StreamResponse:
        options, kind = failure.options, failure.kind
        if kind == "server_error":
            status = int(options.get("status", 500))
            if options.get("html"):
                return web.Response(
                    status=status, text="<html>Server Error</html>", content_type="text/html"
                )
            state, message = (
                ("UNAVAILABLE", "The service is currently unavailable.")
                if status == 503
                else ("INTERNAL", "Internal error encountered.")
            )
            return self.json_response(self.error_body(status, state, message), status)
        if kind == "slow":
            await self._release.wait()
            return self.json_response(page(request))
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if kind == "rate_limited":
            extra = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            message = (
                "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' "
                f"of service '{self.service}' for consumer 'project_number:123456789'."
            )
            body = self.error_body(429, "RESOURCE_EXHAUSTED", message, "rateLimitExceeded")
            return self.json_response(body, 429, extra)
        if kind == "expired_token":
            return self.unauthenticated()
        if kind == "permission":
            return self.permission_denied()
        if kind == "malformed":
            return web.Response(text='{"reviews": [ {"reviewId": ', content_type="application/json")
        if kind == "truncated":
            full = json.dumps(page(request))
            return web.Response(text=full[: len(full) // 2], content_type="application/json")
        if kind == "missing_fields":
            return self.json_response(self.strip_fields(page(request), options.get("field")))
        if kind == "empty_page_with_next":
            return self.json_response(self.empty_page(request))
        if kind == "html":
            return web.Response(text="<html><body>Sorry</body></html>", content_type="text/html")
        if kind == "recorded":
            return self.json_response(
                options["body"], int(options.get("status", 200)), options.get("headers")
            )
        raise AssertionError(kind)

    def strip_fields(self, body: dict[str, Any], field: str | None) -> dict[str, Any]:
        """The page with a required field removed from every item."""
        raise NotImplementedError

    def empty_page(self, request: web.Request) -> dict[str, Any]:
        """A page with no items whose next token leads to the page that was asked for."""
        raise NotImplementedError


@dataclass
class _Review:
    id: str
    location: tuple[str, str]
    stars: str
    created: datetime
    updated: datetime
    anonymous: bool
    reply_time: datetime | None = None


@dataclass
class _Location:
    account_id: str
    location_id: str
    token: str


class FakeGoogleBusiness(FakeGoogleApi):
    """The fake My Business v4 reviews API: locations, reviews, replies, switches."""

    service: ClassVar[str] = "mybusiness.googleapis.com"

    def __init__(self, now: datetime, *, reply_bumps_review: bool = False) -> None:
        super().__init__(now)
        self.reply_bumps_review = reply_bumps_review
        self.locations: dict[tuple[str, str], _Location] = {}
        self.reviews: dict[str, _Review] = {}
        self._counter = 0
        base = "/v4/accounts/{account}/locations/{location}/reviews"
        self.app.add_routes(
            [web.get(base, self._list), web.put(base + "/{review}/reply", self._put_reply)]
        )

    # -- state -------------------------------------------------------------------------------

    def add_location(self, account_id: str, location_id: str, token: str) -> None:
        """A verified location whose owner's access token is ``token``."""
        self.locations[(account_id, location_id)] = _Location(account_id, location_id, token)

    def add_review(
        self,
        account_id: str,
        location_id: str,
        at: datetime,
        stars: int | str = 5,
        *,
        anonymous: bool = False,
    ) -> str:
        """A customer writes a review at ``at``; returns its reviewId."""
        self._counter += 1
        ident = f"AIe9_BG{self._counter:06d}xQ"
        word = STARS[stars] if isinstance(stars, int) else stars
        when = _aware(at)
        self.reviews[ident] = _Review(ident, (account_id, location_id), word, when, when, anonymous)
        return ident

    def reply(self, review_id: str, at: datetime) -> None:
        """The owner replies at ``at``, or edits the reply: Google overwrites its time."""
        review = self.reviews[review_id]
        review.reply_time = _aware(at)
        if self.reply_bumps_review:
            review.updated = max(review.updated, review.reply_time)

    def edit_reply(self, review_id: str, at: datetime) -> None:
        """The owner edits an existing reply at ``at``."""
        if self.reviews[review_id].reply_time is None:
            raise KeyError(f"review {review_id} has no reply to edit")
        self.reply(review_id, at)

    def delete_reply(self, review_id: str) -> None:
        """The owner deletes the reply."""
        self.reviews[review_id].reply_time = None

    def edit_review(self, review_id: str, at: datetime, stars: int | str | None = None) -> None:
        """The customer edits the review at ``at``: ``updateTime`` moves, ``createTime`` stays."""
        review = self.reviews[review_id]
        review.updated = _aware(at)
        if stars is not None:
            review.stars = STARS[stars] if isinstance(stars, int) else stars

    # -- HTTP --------------------------------------------------------------------------------

    def _location(self, request: web.Request) -> _Location | web.Response:
        self.requests.append(request.path_qs)
        token = self.bearer(request)
        if token is None or token not in {loc.token for loc in self.locations.values()}:
            return self.unauthenticated()
        key = (request.match_info["account"], request.match_info["location"])
        location = self.locations.get(key)
        if location is None:
            return self.not_found()
        if location.token != token:
            return self.permission_denied()
        return location

    async def _list(self, request: web.Request) -> web.StreamResponse:
        location = self._location(request)
        if isinstance(location, web.Response):
            return location
        return await self.serve(request, self._page, self._check_query)

    def _check_query(self, request: web.Request) -> web.Response | None:
        size = request.query.get("pageSize", str(DEFAULT_PAGE_SIZE))
        if not size.isdigit() or not 0 <= int(size) <= MAX_PAGE_SIZE:
            return self.invalid_argument(f"pageSize must be at most {MAX_PAGE_SIZE}.")
        order = request.query.get("orderBy", "updateTime desc")
        if order not in ("updateTime desc", "rating", "rating desc"):
            return self.invalid_argument(f"Invalid orderBy: {order}")
        if "pageToken" in request.query and self.read_token(request.query["pageToken"]) is None:
            return self.invalid_argument("Invalid page token.")
        return None

    async def _put_reply(self, request: web.Request) -> web.StreamResponse:
        location = self._location(request)
        if isinstance(location, web.Response):
            return location
        review = self.reviews.get(request.match_info["review"])
        if review is None or review.location != (location.account_id, location.location_id):
            return self.not_found()
        try:
            comment = (await request.json())["comment"]
        except (ValueError, KeyError, TypeError):
            return self.invalid_argument("Request contains an invalid argument.")
        self.reply(review.id, self.now)
        return self.json_response({"comment": comment, "updateTime": google_time(self.now)})

    def _ordered(self, location: tuple[str, str], order: str) -> list[_Review]:
        mine = [r for r in self.reviews.values() if r.location == location]
        if order == "updateTime desc":
            return sorted(mine, key=lambda r: (r.updated, r.id), reverse=True)
        rank = {word: index for index, word in enumerate(STARS)}
        return sorted(
            mine, key=lambda r: (rank.get(r.stars, 0), r.id), reverse=order == "rating desc"
        )

    def _page(self, request: web.Request) -> dict[str, Any]:
        location = (request.match_info["account"], request.match_info["location"])
        size = int(request.query.get("pageSize", str(DEFAULT_PAGE_SIZE))) or DEFAULT_PAGE_SIZE
        ordered = self._ordered(location, request.query.get("orderBy", "updateTime desc"))
        start = self.read_token(request.query.get("pageToken", "")) or 0
        chunk = ordered[start : start + size]
        body: dict[str, Any] = {"totalReviewCount": len(ordered)}
        if ordered:
            rank = {word: index for index, word in enumerate(STARS)}
            rated = [rank[r.stars] for r in ordered if rank.get(r.stars, 0) > 0]
            body["averageRating"] = round(sum(rated) / len(rated), 1) if rated else 0
        if chunk:
            body["reviews"] = [self._review_json(review) for review in chunk]
        if start + size < len(ordered):
            body["nextPageToken"] = self.page_token(start + size)
        return body

    def _review_json(self, review: _Review) -> dict[str, Any]:
        account_id, location_id = review.location
        row: dict[str, Any] = {
            "name": f"accounts/{account_id}/locations/{location_id}/reviews/{review.id}",
            "reviewId": review.id,
            "reviewer": (
                {"isAnonymous": True}
                if review.anonymous
                else {
                    "profilePhotoUrl": f"https://lh3.googleusercontent.com/a/{review.id}",
                    "displayName": f"Customer {review.id[-8:-2]}",
                }
            ),
            "starRating": review.stars,
            "comment": "(simulated review)",
            "createTime": google_time(review.created),
            "updateTime": google_time(review.updated),
        }
        if review.reply_time is not None:
            row["reviewReply"] = {
                "comment": "(simulated reply)",
                "updateTime": google_time(review.reply_time),
            }
        return row

    def strip_fields(self, body: dict[str, Any], field: str | None) -> dict[str, Any]:
        """The page without ``field`` (default ``createTime``; commas for several) in reviews."""
        names = (field or "createTime").split(",")
        for review in body.get("reviews", []):
            for name in names:
                review.pop(name, None)
        return body

    def empty_page(self, request: web.Request) -> dict[str, Any]:
        """No reviews, and a token for the page that was asked for."""
        start = self.read_token(request.query.get("pageToken", "")) or 0
        return {"nextPageToken": self.page_token(start)}


def demo_traffic() -> DemoTraffic:
    """The demo's hotel answering Google reviews."""
    token = "ya29.demo-business-token"
    fake = FakeGoogleBusiness(datetime.now(UTC))
    fake.add_location("1122334455", "9988776655", token)
    rng = random.Random(8)

    def write(_n: int, at: datetime) -> Handle:
        stars = rng.choice((1, 2, 3, 4, 5, 5, 5))
        return fake.add_review("1122334455", "9988776655", at, stars)

    return DemoTraffic(
        "hotel-google",
        "google_business",
        fake.app,
        {"account_id": "1122334455", "location_id": "9988776655"},
        {"access_token": token},
        write,
        fake.reply,
        2,
        (10, 60),
        0.15,
        tick=fake.set_clock,
    )
