"""A local fake of App Store Connect's customer reviews API, for tests and demos.

It reproduces what the connector relies on (platform-apis.md 6 and 11):
``GET /v1/apps/{id}/customerReviews`` with ``sort``, ``limit`` (at most 200), ``include=response``
and ``cursor`` paging through full ``links.next`` URLs; JSON:API bodies with local-offset
``createdDate`` and responses in ``included``; Apple's ``{"errors": [...]}`` envelope; the
``X-Rate-Limit`` header over a rolling hour with 429 ``RATE_LIMIT_EXCEEDED`` past it. The bearer
JWT is verified with the key's public half: ES256 signature, ``kid``, ``iss``, ``aud``, a
lifetime of at most 20 minutes and not expired by the fake's clock; anything else is 401
``NOT_AUTHORIZED``. :meth:`FakeAppStore.fail_next` queues failures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes._switches import Failure, FailureSwitches

__all__ = ["FAILURE_KINDS", "FakeAppStore", "demo_traffic", "error_body"]

AUDIENCE = "appstoreconnect-v1"
MAX_TOKEN_LIFETIME = 20 * 60
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
SORTS = frozenset({"createdDate", "-createdDate", "rating", "-rating"})
FAILURE_KINDS = frozenset({
    "server_error", "slow", "reset", "rate_limited", "expired_token", "forbidden",
    "malformed", "truncated", "missing_fields", "empty_page_with_next", "foreign_next",
    "recorded",
})  # fmt: skip
TITLES = {
    "400": "A parameter has an invalid value",
    "401": "Authentication credentials are missing or invalid.",
    "403": "The API key in use does not allow this request",
    "404": "The specified resource does not exist",
    "429": "The request rate limit has been reached.",
    "500": "An unexpected error occurred.",
}


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    """Apple's error envelope."""
    text = str(status)
    return {
        "errors": [
            {"status": text, "code": code, "title": TITLES.get(text, "Error"), "detail": detail}
        ]
    }


def apple_time(at: datetime) -> str:
    """ISO 8601 with the local offset Apple shows: ``2017-11-15T08:10:34-08:00``."""
    return at.isoformat(timespec="seconds")


@dataclass
class _Response:
    id: str
    modified: datetime
    state: str


@dataclass
class _Review:
    id: str
    rating: int
    created: datetime
    territory: str
    response: _Response | None = None


@dataclass
class _App:
    id: str
    reviews: list[_Review] = field(default_factory=list)


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{index}".encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "pos" and number.isdigit() else None


class FakeAppStore(FailureSwitches):
    """The fake App Store Connect API: apps, reviews, responses and failure switches."""

    failure_kinds = FAILURE_KINDS

    def __init__(
        self,
        *,
        issuer_id: str,
        key_id: str,
        public_key: EllipticCurvePublicKey,
        clock: Callable[[], float] = time.time,
        hourly_limit: int = 3600,
    ) -> None:
        self.issuer_id = issuer_id
        self.key_id = key_id
        self.public_key = public_key
        self.clock = clock
        self.hourly_limit = hourly_limit
        self.apps: dict[str, _App] = {}
        self.failures: deque[Failure] = deque()
        self.requests: list[str] = []
        self.tokens: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self._calls: deque[float] = deque()
        self._counter = 0
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes([web.get("/v1/apps/{app_id}/customerReviews", self._reviews)])
        self.app.on_shutdown.append(self._on_shutdown)

    # -- state ------------------------------------------------------------------------------

    def add_app(self, app_id: str) -> None:
        """An app whose reviews the API key may read."""
        self.apps[app_id] = _App(app_id)

    def add_review(
        self,
        app_id: str,
        at: datetime,
        *,
        rating: int = 5,
        territory: str = "USA",
        utc_offset_hours: float = -8,
    ) -> str:
        """A customer reviews the app at ``at``; returns the review id."""
        self._counter += 1
        review_id = f"00000000-0000-0000-0000-{self._counter:012d}"
        local = _whole_seconds(at).astimezone(timezone(timedelta(hours=utc_offset_hours)))
        self.apps[app_id].reviews.append(_Review(review_id, rating, local, territory))
        return review_id

    def respond(self, review_id: str, at: datetime, *, state: str = "PUBLISHED") -> str:
        """The developer responds to a review; returns the response id."""
        review = self._review(review_id)
        self._counter += 1
        review.response = _Response(f"r{self._counter:011d}", _whole_seconds(at), state)
        return review.response.id

    def edit_response(self, review_id: str, at: datetime, *, state: str | None = None) -> None:
        """The developer edits the response: Apple moves ``lastModifiedDate``."""
        response = self._review(review_id).response
        if response is None:
            raise KeyError(f"review {review_id} has no response")
        response.modified = _whole_seconds(at)
        response.state = state or response.state

    def _review(self, review_id: str) -> _Review:
        for app in self.apps.values():
            for review in app.reviews:
                if review.id == review_id:
                    return review
        raise KeyError(f"no review {review_id}")

    # -- switches ---------------------------------------------------------------------------

    # -- auth and limits --------------------------------------------------------------------

    def _verify(self, request: web.Request) -> str | None:
        """Why the bearer token is refused, or None when it is good."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return "no bearer token"
        token = header.removeprefix("Bearer ")
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=self.issuer_id,
                # Times are checked below against the fake's clock, not the wall clock.
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat"]},
            )
        except jwt.PyJWTError as err:
            return type(err).__name__
        if head.get("kid") != self.key_id or head.get("typ") != "JWT":
            return "wrong kid or typ"
        issued, expires, now = claims["iat"], claims["exp"], self.clock()
        if not isinstance(issued, int) or not isinstance(expires, int):
            return "iat and exp must be integers"
        if expires - issued > MAX_TOKEN_LIFETIME or expires - now > MAX_TOKEN_LIFETIME:
            return "expires more than 20 minutes ahead"
        if expires <= now:
            return "expired"
        self.tokens.append({"header": head, **claims})
        return None

    def _rate_headers(self) -> dict[str, str]:
        used = len(self._calls)
        remaining = max(0, self.hourly_limit - used)
        return {"X-Rate-Limit": f"user-hour-lim:{self.hourly_limit};user-hour-rem:{remaining};"}

    def _spend(self) -> bool:
        now = self.clock()
        while self._calls and self._calls[0] <= now - 3600:
            self._calls.popleft()
        if len(self._calls) >= self.hourly_limit:
            return False
        self._calls.append(now)
        return True

    # -- HTTP -------------------------------------------------------------------------------

    def _json(self, body: object, status: int = 200) -> web.Response:
        return web.json_response(body, status=status, headers=self._rate_headers())

    async def _reviews(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        refused = self._verify(request)
        if refused is not None:
            self.refused.append(refused)
            return self._json(
                error_body(
                    401,
                    "NOT_AUTHORIZED",
                    "Provide a properly configured and signed bearer token, "
                    "and make sure that it has not expired.",
                ),
                401,
            )
        if not self._spend():
            return self._json(
                error_body(429, "RATE_LIMIT_EXCEEDED", "The API key has used its hourly limit."),
                429,
            )
        app = self.apps.get(request.match_info["app_id"])
        if app is None:
            return self._json(error_body(404, "NOT_FOUND", "There is no app with this id."), 404)
        failure = self._take_failure()
        if failure is not None:
            return await self._failure(failure, request, app)
        return self._json(self._page(request, app))

    async def _failure(
        self, failure: Failure, request: web.Request, app: _App
    ) -> web.StreamResponse:
        kind, options = failure.kind, failure.options
        if kind == "server_error":
            status = int(options.get("status", 500))
            if options.get("html"):
                return web.Response(
                    status=status, text="<html>Bad Gateway</html>", content_type="text/html"
                )
            return self._json(error_body(status, "UNEXPECTED_ERROR", "Try again later."), status)
        if kind == "slow":
            await self._release.wait()
            return web.Response(status=504)
        if kind == "reset":
            return await _reset(request, json.dumps(self._page(request, app)).encode())
        if kind == "rate_limited":
            response = self._json(
                error_body(429, "RATE_LIMIT_EXCEEDED", "The request rate limit has been reached."),
                429,
            )
            if "retry_after" in options:
                response.headers["Retry-After"] = str(options["retry_after"])
            if "remaining" in options:
                response.headers["X-Rate-Limit"] = (
                    f"user-hour-lim:{self.hourly_limit};user-hour-rem:{options['remaining']};"
                )
            return response
        if kind == "expired_token":
            return self._json(
                error_body(401, "NOT_AUTHORIZED", "The bearer token has expired."), 401
            )
        if kind == "forbidden":
            return self._json(
                error_body(403, "FORBIDDEN_ERROR", "This request is forbidden for this role."),
                403,
            )
        if kind == "malformed":
            return web.Response(text='{"data": [ {"type": ', content_type="application/json")
        if kind == "truncated":
            full = json.dumps(self._page(request, app))
            return web.Response(text=full[: len(full) // 2], content_type="application/json")
        if kind == "missing_fields":
            body = self._page(request, app)
            drop = options.get("field")
            if drop is None:
                body.pop("data")
            else:
                for item in body["data"]:
                    item["attributes"].pop(drop, None)
            return self._json(body)
        if kind == "empty_page_with_next":
            # Points back at the same position: the data is on the page after this one.
            links = {"self": str(request.url), "next": str(request.url)}
            paging = {"total": len(app.reviews), "limit": 0}
            return self._json({"data": [], "links": links, "meta": {"paging": paging}})
        if kind == "foreign_next":
            body = self._page(request, app)
            body["links"]["next"] = "https://attacker.invalid/v1/apps/x/customerReviews?cursor=AA"
            return self._json(body)
        return self._json(options["body"], int(options.get("status", 200)))

    def _page(self, request: web.Request, app: _App) -> dict[str, Any]:
        query = request.query
        sort = query.get("sort", "-createdDate")
        limit_text = query.get("limit", str(DEFAULT_LIMIT))
        if sort not in SORTS or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise web.HTTPBadRequest(
                text=json.dumps(error_body(400, "PARAMETER_ERROR.INVALID", "sort or limit")),
                content_type="application/json",
            )
        limit = int(limit_text)
        start = 0
        if "cursor" in query:
            decoded = _decode_cursor(query["cursor"])
            if decoded is None:
                raise web.HTTPBadRequest(
                    text=json.dumps(error_body(400, "PARAMETER_ERROR.INVALID", "cursor")),
                    content_type="application/json",
                )
            start = decoded
        ordered = _sorted(app.reviews, sort)
        chunk = ordered[start : start + limit]
        origin = str(request.url.origin())
        included = "response" in query.get("include", "").split(",")
        body: dict[str, Any] = {
            "data": [_resource(review, origin) for review in chunk],
            "links": {"self": str(request.url)},
            "meta": {"paging": {"total": len(ordered), "limit": limit}},
        }
        if included:
            body["included"] = [
                _response_resource(review, origin) for review in chunk if review.response
            ]
        if start + limit < len(ordered):
            following = _encode_cursor(start + limit)
            body["links"]["next"] = str(request.url.update_query({"cursor": following}))
            body["meta"]["paging"]["nextCursor"] = following
        return body


async def _reset(request: web.Request, body: bytes) -> web.StreamResponse:
    """Send the headers and half the body, then drop the connection."""
    # Before the headers, aiohttp's client would quietly retry on a fresh connection.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


def _whole_seconds(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("fake App Store times must be timezone-aware")
    return at.astimezone(UTC).replace(microsecond=0)


def _sorted(reviews: list[_Review], sort: str) -> list[_Review]:
    if sort.endswith("rating"):
        return sorted(reviews, key=lambda r: (r.rating, r.created), reverse=sort.startswith("-"))
    return sorted(reviews, key=lambda r: (r.created, r.id), reverse=sort.startswith("-"))


def _resource(review: _Review, origin: str) -> dict[str, Any]:
    own = f"{origin}/v1/customerReviews/{review.id}"
    data = (
        {"type": "customerReviewResponses", "id": review.response.id} if review.response else None
    )
    return {
        "type": "customerReviews",
        "id": review.id,
        "attributes": {
            "rating": review.rating,
            "title": "(simulated title)",
            "body": "(simulated review text)",
            "reviewerNickname": "(simulated nickname)",
            "createdDate": apple_time(review.created),
            "territory": review.territory,
        },
        "relationships": {
            "response": {
                "links": {
                    "self": f"{own}/relationships/response",
                    "related": f"{own}/response",
                },
                "data": data,
            }
        },
        "links": {"self": own},
    }


def _response_resource(review: _Review, origin: str) -> dict[str, Any]:
    assert review.response is not None
    response = review.response
    return {
        "type": "customerReviewResponses",
        "id": response.id,
        "attributes": {
            "responseBody": "(simulated response)",
            "lastModifiedDate": apple_time(response.modified.astimezone(review.created.tzinfo)),
            "state": response.state,
        },
        "relationships": {"review": {"data": {"type": "customerReviews", "id": review.id}}},
        "links": {"self": f"{origin}/v1/customerReviewResponses/{response.id}"},
    }


def demo_traffic() -> DemoTraffic:
    """The demo's game studio answering App Store reviews, signing with a fresh key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    fake = FakeAppStore(
        issuer_id="57246542-96fe-1a63-e053-0824d011072a",
        key_id="DEMOKEY001",
        public_key=key.public_key(),
    )
    fake.add_app("1234567890")
    rng = random.Random(10)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("1234567890", at, rating=rng.choice((1, 3, 4, 5, 5)))

    return DemoTraffic(
        "game-ios",
        "app_store",
        fake.app,
        {"app_id": "1234567890", "issuer_id": fake.issuer_id, "key_id": fake.key_id},
        {"private_key": pem},
        write,
        fake.respond,
        2,
        (15, 50),
        0.1,
    )
