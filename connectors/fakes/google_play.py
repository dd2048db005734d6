"""A local fake of the Google Play Developer API reviews endpoints, for tests and demos.

It reproduces what the connector relies on (platform-apis.md 5 and 11): the real paths,
``maxResults`` (default 10, at most 100: more is cut to 100, as users report),
``token``/``tokenPagination.nextPageToken``, ``startIndex`` and ``translationLanguage``
accepted and ignored (as users report), ``{seconds: "<string>", nanos}`` times, ``comments``
holding a ``userComment`` and an optional ``developerComment``, newest first, and only reviews
whose user comment was created or modified in the last seven days by the fake's clock (also for
``reviews.get``, which answers 404 for older ones, as users report). ``POST
.../reviews/{id}:reply`` answers ``{result: {replyText, lastEdited}}``. Bearer-token checks,
Google's error envelope and the failure switches come from
:class:`connectors.fakes.google_business.FakeGoogleApi`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes.google_business import FakeGoogleApi

__all__ = ["WINDOW", "FakeGooglePlay", "demo_traffic", "play_time"]

WINDOW = timedelta(days=7)
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def play_time(at: datetime) -> dict[str, Any]:
    """Play's timestamp object: seconds as a string, nanos as a number."""
    at = at.astimezone(UTC)
    whole = at.replace(microsecond=0)
    return {"seconds": str(int(whole.timestamp())), "nanos": at.microsecond * 1000}


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("fake Google times must be timezone-aware")
    return at.astimezone(UTC)


@dataclass
class _Review:
    id: str
    package: str
    stars: int
    written: datetime
    reply_time: datetime | None = None


class FakeGooglePlay(FakeGoogleApi):
    """The fake Play reviews API: apps, reviews, replies, the 7-day window, switches."""

    service: ClassVar[str] = "androidpublisher.googleapis.com"

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.apps: dict[str, str] = {}
        self.reviews: dict[str, _Review] = {}
        self._counter = 0
        base = "/androidpublisher/v3/applications/{package}/reviews"
        self.app.add_routes(
            [
                web.get(base, self._list),
                web.get(base + "/{review}", self._get),
                web.post(base + "/{review}:reply", self._post_reply),
            ]
        )

    # -- state -------------------------------------------------------------------------------

    def add_app(self, package_name: str, token: str) -> None:
        """An app whose service account's access token is ``token``."""
        self.apps[package_name] = token

    def add_review(self, package_name: str, at: datetime, stars: int = 5) -> str:
        """A user writes a review with text at ``at``; returns its reviewId."""
        self._counter += 1
        ident = f"gp:AOqpTOH{self._counter:06d}"
        self.reviews[ident] = _Review(ident, package_name, stars, _aware(at))
        return ident

    def reply(self, review_id: str, at: datetime) -> None:
        """The developer replies at ``at``, or edits the reply: its time is overwritten."""
        self.reviews[review_id].reply_time = _aware(at)

    def edit_review(self, review_id: str, at: datetime, stars: int | None = None) -> None:
        """The user edits the review at ``at``: the comment's ``lastModified`` moves."""
        review = self.reviews[review_id]
        review.written = _aware(at)
        if stars is not None:
            review.stars = stars

    def age_out(self, review_id: str) -> None:
        """Move one review eight days into the past, out of the 7-day window."""
        review = self.reviews[review_id]
        shift = review.written - (self.now - WINDOW - timedelta(days=1))
        review.written -= shift
        if review.reply_time is not None:
            review.reply_time -= shift

    def visible(self, review: _Review) -> bool:
        """Whether the API still lists a review (modified by its user in the last week)."""
        return review.written >= self.now - WINDOW

    # -- HTTP --------------------------------------------------------------------------------

    def _app(self, request: web.Request) -> str | web.Response:
        self.requests.append(request.path_qs)
        token = self.bearer(request)
        if token is None or token not in self.apps.values():
            return self.unauthenticated()
        package = request.match_info["package"]
        if package not in self.apps:
            return self.not_found()
        if self.apps[package] != token:
            return self.permission_denied()
        return package

    async def _list(self, request: web.Request) -> web.StreamResponse:
        package = self._app(request)
        if isinstance(package, web.Response):
            return package
        return await self.serve(request, self._page, self._check_query)

    def _check_query(self, request: web.Request) -> web.Response | None:
        if not request.query.get("maxResults", str(DEFAULT_PAGE_SIZE)).isdigit():
            return self.invalid_argument("Invalid value for maxResults.")
        if "token" in request.query and self.read_token(request.query["token"]) is None:
            return self.invalid_argument("Invalid token.")
        return None

    async def _get(self, request: web.Request) -> web.StreamResponse:
        package = self._app(request)
        if isinstance(package, web.Response):
            return package
        review = self.reviews.get(request.match_info["review"])
        if review is None or review.package != package or not self.visible(review):
            return self.not_found()
        return await self.serve(request, lambda _request: self._review_json(review))

    async def _post_reply(self, request: web.Request) -> web.StreamResponse:
        package = self._app(request)
        if isinstance(package, web.Response):
            return package
        review = self.reviews.get(request.match_info["review"])
        if review is None or review.package != package or not self.visible(review):
            return self.not_found()
        try:
            text = (await request.json())["replyText"]
        except (ValueError, KeyError, TypeError):
            return self.invalid_argument("Request contains an invalid argument.")
        self.reply(review.id, self.now)
        return self.json_response(
            {"result": {"replyText": text, "lastEdited": play_time(self.now)}}
        )

    def _listed(self, package: str) -> list[_Review]:
        mine = [r for r in self.reviews.values() if r.package == package and self.visible(r)]
        return sorted(mine, key=lambda r: (r.written, r.id), reverse=True)

    def _page(self, request: web.Request) -> dict[str, Any]:
        package = request.match_info["package"]
        size = min(int(request.query.get("maxResults", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
        size = size or DEFAULT_PAGE_SIZE
        listed = self._listed(package)
        start = self.read_token(request.query.get("token", "")) or 0
        chunk = listed[start : start + size]
        body: dict[str, Any] = {
            "pageInfo": {"totalResults": len(listed), "resultPerPage": size, "startIndex": start}
        }
        if chunk:
            body["reviews"] = [self._review_json(review) for review in chunk]
        paging: dict[str, str] = {}
        if start + size < len(listed):
            paging["nextPageToken"] = self.page_token(start + size)
        if start > 0:
            paging["previousPageToken"] = self.page_token(max(0, start - size))
        if paging:
            body["tokenPagination"] = paging
        return body

    def _review_json(self, review: _Review) -> dict[str, Any]:
        comments: list[dict[str, Any]] = [
            {
                "userComment": {
                    "text": "\t(simulated review)",
                    "lastModified": play_time(review.written),
                    "starRating": review.stars,
                    "reviewerLanguage": "en",
                    "device": "a52q",
                    "androidOsVersion": 34,
                    "appVersionCode": 120,
                    "appVersionName": "1.2.0",
                    "thumbsUpCount": 0,
                    "thumbsDownCount": 0,
                }
            }
        ]
        if review.reply_time is not None:
            comments.append(
                {
                    "developerComment": {
                        "text": "(simulated reply)",
                        "lastModified": play_time(review.reply_time),
                    }
                }
            )
        return {"reviewId": review.id, "authorName": "A Google user", "comments": comments}

    def strip_fields(self, body: dict[str, Any], field: str | None) -> dict[str, Any]:
        """The page without ``field`` in reviews or (default ``lastModified``) their comments."""
        name = field or "lastModified"
        for review in body.get("reviews", []):
            if name in review:
                review.pop(name)
                continue
            for comment in review.get("comments", []):
                for part in comment.values():
                    part.pop(name, None)
        return body

    def empty_page(self, request: web.Request) -> dict[str, Any]:
        """No reviews, and a token for the page that was asked for."""
        start = self.read_token(request.query.get("token", "")) or 0
        return {"tokenPagination": {"nextPageToken": self.page_token(start)}}


def demo_traffic() -> DemoTraffic:
    """The demo's game studio answering Google Play reviews."""
    token = "ya29.demo-play-token"
    fake = FakeGooglePlay(datetime.now(UTC))
    fake.add_app("com.example.game", token)
    rng = random.Random(9)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("com.example.game", at, rng.choice((1, 2, 4, 5, 5)))

    return DemoTraffic(
        "game-android",
        "google_play",
        fake.app,
        {"package_name": "com.example.game"},
        {"access_token": token},
        write,
        fake.reply,
        2,
        (15, 45),
        0.2,
        tick=fake.set_clock,
    )
