"""A local fake of Trustpilot's private business unit reviews API, for tests and demos.

It reproduces what the connector relies on (platform-apis.md 7 and 11):
``GET /v1/private/business-units/{id}/reviews`` with 1-based ``page``, ``perPage`` (1-100),
``orderBy`` (``createdat.desc``/``createdat.asc``), an empty array past the end, review records
with every documented field and ``companyReply`` null or set, the ``apikey`` header plus an
OAuth bearer token, and the documented call limits (833 per 5 minutes, 10,000 per hour) over
the fake's clock, answered with 429 past them. Bodies carry
``links: [{"rel": "next-page", "href", "method"}]`` while more pages follow. UNCONFIRMED by
the documentation, and so only this fake's choice: that links shape, the 401/403/429 bodies
and the absence of a Retry-After header on 429. :meth:`FakeTrustpilot.fail_next` queues
failures.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes._switches import Failure, FailureSwitches

__all__ = ["DEFAULT_LIMITS", "FAILURE_KINDS", "FakeTrustpilot", "demo_traffic"]

DEFAULT_LIMITS: tuple[tuple[float, int], ...] = ((300.0, 833), (3600.0, 10_000))
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
FAILURE_KINDS = frozenset({
    "server_error", "slow", "reset", "rate_limited", "expired_token", "forbidden",
    "malformed", "truncated", "missing_fields", "empty_page_with_next", "recorded",
})  # fmt: skip


def trustpilot_time(at: datetime) -> str:
    """ISO 8601 in UTC with a Z: ``2024-05-01T10:00:00Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Reply:
    created: datetime
    updated: datetime


@dataclass
class _Review:
    id: str
    stars: int
    created: datetime
    reply: _Reply | None = None


@dataclass
class _BusinessUnit:
    id: str
    reviews: list[_Review] = field(default_factory=list)


class FakeTrustpilot(FailureSwitches):
    """The fake Trustpilot API: business units, reviews, replies, limits and switches."""

    failure_kinds = FAILURE_KINDS

    def __init__(
        self,
        *,
        api_key: str,
        access_token: str,
        clock: Callable[[], float] = time.time,
        limits: tuple[tuple[float, int], ...] = DEFAULT_LIMITS,
        page_links: bool = True,
    ) -> None:
        self.api_key = api_key
        self.access_token = access_token
        self.clock = clock
        self.limits = limits
        self.page_links = page_links
        self.units: dict[str, _BusinessUnit] = {}
        self.failures: deque[Failure] = deque()
        self.requests: list[str] = []
        self.throttled = 0
        self._calls: deque[float] = deque()
        self._counter = 0
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes(
            [web.get("/v1/private/business-units/{unit_id}/reviews", self._reviews)]
        )
        self.app.on_shutdown.append(self._on_shutdown)

    # -- state ------------------------------------------------------------------------------

    def add_business_unit(self, unit_id: str) -> None:
        """A business unit the token's business user may read."""
        self.units[unit_id] = _BusinessUnit(unit_id)

    def add_review(self, unit_id: str, at: datetime, *, stars: int = 5) -> str:
        """A consumer reviews the business at ``at``; returns the review id."""
        self._counter += 1
        review_id = f"{self._counter:024x}"
        self.units[unit_id].reviews.append(_Review(review_id, stars, _whole_seconds(at)))
        return review_id

    def reply(self, review_id: str, at: datetime) -> None:
        """The company replies to a review."""
        moment = _whole_seconds(at)
        self._review(review_id).reply = _Reply(moment, moment)

    def edit_reply(self, review_id: str, at: datetime) -> None:
        """The company edits its reply: only ``updatedAt`` moves."""
        reply = self._review(review_id).reply
        if reply is None:
            raise KeyError(f"review {review_id} has no reply")
        reply.updated = _whole_seconds(at)

    def _review(self, review_id: str) -> _Review:
        for unit in self.units.values():
            for review in unit.reviews:
                if review.id == review_id:
                    return review
        raise KeyError(f"no review {review_id}")

    # -- switches ---------------------------------------------------------------------------

    # -- limits -----------------------------------------------------------------------------

    def _spend(self) -> bool:
        """Count a call; False when it is over one of the limits."""
        now = self.clock()
        longest = max(span for span, _ in self.limits)
        while self._calls and self._calls[0] <= now - longest:
            self._calls.popleft()
        for span, allowed in self.limits:
            if sum(1 for at in self._calls if at > now - span) >= allowed:
                return False
        self._calls.append(now)
        return True

    # -- HTTP -------------------------------------------------------------------------------

    async def _reviews(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if not self._spend():
            self.throttled += 1
            return web.json_response({"message": "Too Many Requests"}, status=429)
        bearer = request.headers.get("Authorization", "")
        if request.headers.get("apikey") != self.api_key or bearer != f"Bearer {self.access_token}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        unit = self.units.get(request.match_info["unit_id"])
        if unit is None:
            return web.json_response({"message": "Business unit not found"}, status=404)
        failure = self._take_failure()
        if failure is not None:
            return await self._failure(failure, request, unit)
        return web.json_response(self._page(request, unit))

    async def _failure(
        self, failure: Failure, request: web.Request, unit: _BusinessUnit
    ) -> web.StreamResponse:
        kind, options = failure.kind, failure.options
        if kind == "server_error":
            status = int(options.get("status", 500))
            if options.get("html"):
                return web.Response(
                    status=status, text="<html>Bad Gateway</html>", content_type="text/html"
                )
            return web.json_response({"message": "Internal Server Error"}, status=status)
        if kind == "slow":
            await self._release.wait()
            return web.Response(status=504)
        if kind == "reset":
            return await _reset(request, json.dumps(self._page(request, unit)).encode())
        if kind == "rate_limited":
            headers = (
                {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            )
            return web.json_response({"message": "Too Many Requests"}, status=429, headers=headers)
        if kind == "expired_token":
            return web.json_response({"message": "Unauthorized"}, status=401)
        if kind == "forbidden":
            return web.json_response({"message": "Forbidden"}, status=403)
        if kind == "malformed":
            return web.Response(text='{"reviews": [ {"id": ', content_type="application/json")
        if kind == "truncated":
            full = json.dumps(self._page(request, unit))
            return web.Response(text=full[: len(full) // 2], content_type="application/json")
        if kind == "missing_fields":
            body = self._page(request, unit)
            drop = options.get("field")
            if drop is None:
                body.pop("reviews")
            else:
                for item in body["reviews"]:
                    item.pop(drop, None)
            return web.json_response(body)
        if kind == "empty_page_with_next":
            # Links back to this same page: the data is there on the next request.
            page = request.query.get("page", "1")
            href = str(request.url.update_query({"page": page}))
            return web.json_response(
                {"reviews": [], "links": [{"rel": "next-page", "href": href, "method": "GET"}]}
            )
        return web.json_response(options["body"], status=int(options.get("status", 200)))

    def _page(self, request: web.Request, unit: _BusinessUnit) -> dict[str, Any]:
        query = request.query
        page_text = query.get("page", "1")
        per_page_text = query.get("perPage", str(DEFAULT_PER_PAGE))
        order = query.get("orderBy", "createdat.desc")
        if (
            not page_text.isdigit()
            or int(page_text) < 1
            or not per_page_text.isdigit()
            or not 1 <= int(per_page_text) <= MAX_PER_PAGE
            or order not in ("createdat.desc", "createdat.asc")
        ):
            raise web.HTTPBadRequest(
                text=json.dumps({"message": "page, perPage or orderBy is invalid"}),
                content_type="application/json",
            )
        page, per_page = int(page_text), int(per_page_text)
        ordered = sorted(
            unit.reviews, key=lambda r: (r.created, r.id), reverse=order == "createdat.desc"
        )
        start = (page - 1) * per_page
        chunk = ordered[start : start + per_page]
        links = []
        if self.page_links and start + per_page < len(ordered):
            href = str(request.url.update_query({"page": str(page + 1)}))
            links.append({"rel": "next-page", "href": href, "method": "GET"})
        return {"reviews": [_record(review, unit) for review in chunk], "links": links}


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
        raise ValueError("fake Trustpilot times must be timezone-aware")
    return at.astimezone(UTC).replace(microsecond=0)


def _record(review: _Review, unit: _BusinessUnit) -> dict[str, Any]:
    reply = None
    if review.reply is not None:
        reply = {
            "text": "(simulated reply)",
            "createdAt": trustpilot_time(review.reply.created),
            "updatedAt": trustpilot_time(review.reply.updated),
            "authorBusinessUserId": "5a1b2c3d4e5f60718293a4b5",
        }
    return {
        "id": review.id,
        "consumer": {
            "id": f"c{review.id[1:]}",
            "displayName": "(simulated consumer)",
            "displayLocation": "Copenhagen, DK",
            "numberOfReviews": 1,
        },
        "businessUnit": {
            "id": unit.id,
            "identifyingName": "example.com",
            "displayName": "Example",
        },
        "stars": review.stars,
        "title": "(simulated title)",
        "text": "(simulated review text)",
        "language": "en",
        "location": None,
        "createdAt": trustpilot_time(review.created),
        "updatedAt": None,
        "experiencedAt": trustpilot_time(review.created),
        "referralEmail": "customer@example.invalid",
        "referenceId": f"order-{review.id[-6:]}",
        "source": "Organic",
        "companyReply": reply,
        "tags": [],
        "findReviewer": {},
        "isVerified": True,
        "numberOfLikes": 0,
        "status": "active",
        "reportData": None,
        "complianceLabels": [],
        "countsTowardsTrustScore": True,
        "invitation": {"businessUnitId": unit.id},
        "reviewVerificationLevel": "verified",
        "links": [],
    }


def demo_traffic() -> DemoTraffic:
    """The demo's shop answering Trustpilot reviews."""
    api_key, access = "demo-trustpilot-key", "demo-trustpilot-token"
    fake = FakeTrustpilot(api_key=api_key, access_token=access)
    fake.add_business_unit("5c1a2b3c4d5e6f0001234567")
    rng = random.Random(11)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("5c1a2b3c4d5e6f0001234567", at, stars=rng.choice((1, 2, 4, 5)))

    return DemoTraffic(
        "shop-trustpilot",
        "trustpilot",
        fake.app,
        {"business_unit_id": "5c1a2b3c4d5e6f0001234567"},
        {"api_key": api_key, "access_token": access},
        write,
        fake.reply,
        2,
        (10, 40),
        0.1,
    )
