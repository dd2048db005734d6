"""A local fake of the X API v2, for tests and ``replywatch demo``.

Shaped like aiohttp's ``FakeFacebook`` example: a class holding a ``web.Application``, its
routes and mutable state. It reproduces what the X connector relies on (platform-apis.md 3
and 11): ``/2/users/:id/mentions``, ``/2/users/:id/tweets`` and ``/2/dm_events``, Bearer
tokens (app-only tokens may not read direct messages), newest-first results with
``next_token``/``pagination_token`` paging, ``since_id`` and ``start_time``, the most recent
800 mentions, 3,200 posts and 30 days of direct messages, only the fields asked for
(``tweet.fields``, ``dm_event.fields``), snowflake ids that grow with time, per-endpoint
15-minute rate-limit windows with ``x-rate-limit-*`` headers and a real 429 when one runs out,
and ``application/problem+json`` errors. Failure switches (:meth:`FakeX.fail_next`) make it
throttle (both 429 body styles), hit the usage cap, refuse tokens, fail, hang, or answer
garbage on demand.

Times come from the injected ``clock`` (epoch seconds), so rate-limit resets and the DM
retention window are deterministic in tests; the ``Date`` header follows the same clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Any

from aiohttp import web

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes._switches import Failure, FailureSwitches

__all__ = ["DEFAULT_LIMITS", "FakeX", "demo_traffic"]

# Twitter's snowflake epoch (2010-11-04T01:42:54.657Z), in milliseconds.
TWEPOCH_MS = 1288834974657
WINDOW_SECONDS = 900
DEFAULT_LIMITS = {"mentions": 450, "tweets": 1500, "dm_events": 300}
REACHABLE = {"mentions": 800, "tweets": 3200}
DM_RETENTION = timedelta(days=30)
PROBLEMS = "https://api.twitter.com/2/problems"
FAILURE_KINDS = frozenset({
    "http_429", "usage_cap", "unauthorized", "forbidden", "server_error", "slow",
    "malformed", "truncated", "html", "invalid_request", "empty_page_with_next", "recorded",
})  # fmt: skip


@dataclass
class _Post:
    id: str
    author: str
    created: datetime
    text: str
    conversation: str
    mentions: tuple[str, ...]
    in_reply_to_user: str | None = None
    references: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Message:
    id: str
    conversation: str
    members: tuple[str, ...]
    sender: str
    created: datetime
    text: str


@dataclass
class _Window:
    endpoint: str
    resets_at: int
    used: int = 0


def x_time(at: datetime) -> str:
    """X's ``created_at`` form: ``2020-07-06T15:58:10.000Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _encode_token(index: int) -> str:
    return base64.b32encode(f"x:{index}".encode()).decode().rstrip("=").lower()


def _decode_token(value: str) -> int | None:
    try:
        padded = value.upper() + "=" * (-len(value) % 8)
        text = base64.b32decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "x" and number.isdigit() else None


def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", *, numbered: bool = False
) -> web.Response:
    """An RFC 7807 error as X sends it (generic ones, and some typed ones, carry ``status``)."""
    body: dict[str, Any] = {"title": title, "detail": detail, "type": kind}
    if numbered or kind == "about:blank":
        body["status"] = status
    return web.json_response(body, status=status, content_type="application/problem+json")


class _Refusal(Exception):
    """A request X refuses; carries the response to send."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _invalid(detail: str) -> _Refusal:
    return _Refusal(
        problem(
            400,
            "Invalid Request",
            f"One or more parameters to your request was invalid. {detail}",
            f"{PROBLEMS}/invalid-request",
        )
    )


class FakeX(FailureSwitches):
    """The fake X API v2: state, routes and switches."""

    failure_kinds = FAILURE_KINDS

    def __init__(
        self,
        *,
        app_token: str | None = None,
        clock: Callable[[], float] = time.time,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app_tokens = {app_token} if app_token else set()
        self.user_tokens: dict[str, str] = {}
        self.usernames: dict[str, str] = {}
        self.posts: list[_Post] = []
        self.messages: list[_Message] = []
        self.failures: deque[Failure] = deque()
        self.requests: list[str] = []
        self.clock = clock
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._sequence = 0
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/2/users/{user_id}/mentions", self._mentions),
                web.get("/2/users/{user_id}/tweets", self._tweets),
                web.get("/2/dm_events", self._dm_events),
            ]
        )
        self.app.on_shutdown.append(self._on_shutdown)

    # -- state --------------------------------------------------------------------------

    def add_user(self, user_id: str, username: str, *, token: str | None = None) -> None:
        """An account the API knows; ``token`` is a user-context token acting as it."""
        self.usernames[user_id] = username
        if token is not None:
            self.user_tokens[token] = user_id

    def _snowflake(self, at: datetime) -> str:
        if at.tzinfo is None:
            raise ValueError("fake X times must be timezone-aware")
        self._sequence += 1
        ms = int(at.timestamp() * 1000) - TWEPOCH_MS
        return str((ms << 22) | (self._sequence & 0x3FFFFF))

    def post(
        self,
        author: str,
        at: datetime,
        *,
        mentions: tuple[str, ...] = (),
        reply_to: str | None = None,
        retweet_of: str | None = None,
        quote_of: str | None = None,
        text: str = "(simulated)",
    ) -> str:
        """Any post; a reply also mentions the author it answers, as X does. Returns its id."""
        ident = self._snowflake(at)
        conversation, replied_user, references = ident, None, []
        if reply_to is not None:
            parent = self._post(reply_to)
            conversation, replied_user = parent.conversation, parent.author
            references.append(("replied_to", reply_to))
            if parent.author not in mentions:
                mentions = (parent.author, *mentions)
        if retweet_of is not None:
            original = self._post(retweet_of)
            references.append(("retweeted", retweet_of))
            mentions = (original.author, *original.mentions)
            text = f"RT @{self.usernames.get(original.author, original.author)}: {original.text}"
        if quote_of is not None:
            references.append(("quoted", quote_of))
        self.posts.append(
            _Post(
                ident,
                author,
                at.astimezone(UTC),
                text,
                conversation,
                mentions,
                replied_user,
                references,
            )
        )
        return ident

    def customer_mention(
        self, business: str, customer: str, at: datetime, *, reply_to: str | None = None
    ) -> str:
        """A customer posts mentioning the business (or replies in a conversation)."""
        return self.post(customer, at, mentions=(business,), reply_to=reply_to)

    def business_reply(self, business: str, reply_to: str, at: datetime) -> str:
        """The business replies to a post; returns the reply's id."""
        return self.post(business, at, reply_to=reply_to)

    def _post(self, post_id: str) -> _Post:
        for post in self.posts:
            if post.id == post_id:
                return post
        raise KeyError(f"no post {post_id}")

    def direct_message(self, sender: str, recipient: str, at: datetime) -> str:
        """A one-to-one direct message; returns the event id."""
        low, high = sorted((sender, recipient), key=int)
        return self._message(f"{low}-{high}", (low, high), sender, at)

    def group_message(
        self, conversation: str, members: tuple[str, ...], sender: str, at: datetime
    ) -> str:
        """A message in a group conversation; returns the event id."""
        return self._message(conversation, members, sender, at)

    def _message(
        self, conversation: str, members: tuple[str, ...], sender: str, at: datetime
    ) -> str:
        ident = self._snowflake(at)
        self.messages.append(
            _Message(ident, conversation, members, sender, at.astimezone(UTC), "(simulated)")
        )
        return ident

    # -- switches ------------------------------------------------------------------------

    # -- HTTP ----------------------------------------------------------------------------

    async def _mentions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "mentions", self._timeline)

    async def _tweets(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "tweets", self._timeline)

    async def _dm_events(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "dm_events", self._direct_messages)

    async def _serve(
        self,
        request: web.Request,
        endpoint: str,
        build: Callable[[web.Request, str, str], dict[str, Any]],
    ) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or (token not in self.app_tokens and token not in self.user_tokens):
            return self._finish(problem(401, "Unauthorized", "Unauthorized"), None)
        window = self._window(endpoint, token)
        if window.used >= self.limits[endpoint]:
            return self._finish(problem(429, "Too Many Requests", "Too Many Requests"), window)
        window.used += 1
        failure = self._take_failure()
        if failure is not None:
            response = await self._failure(failure, request, endpoint, token, build)
            return self._finish(response, window)
        try:
            body = build(request, endpoint, token)
        except _Refusal as refusal:
            return self._finish(refusal.response, window)
        return self._finish(web.json_response(body), window)

    def _window(self, endpoint: str, token: str) -> _Window:
        now = int(self.clock())
        window = self._windows.get((endpoint, token))
        if window is None or now >= window.resets_at:
            window = self._windows[(endpoint, token)] = _Window(endpoint, now + WINDOW_SECONDS)
        return window

    def _finish(self, response: web.Response, window: _Window | None) -> web.Response:
        response.headers["Date"] = formatdate(self.clock(), usegmt=True)
        if window is not None:
            limit = self.limits[window.endpoint]
            response.headers["x-rate-limit-limit"] = str(limit)
            response.headers["x-rate-limit-remaining"] = str(max(0, limit - window.used))
            response.headers["x-rate-limit-reset"] = str(window.resets_at)
        return response

    async def _failure(
        self,
        failure: Failure,
        request: web.Request,
        endpoint: str,
        token: str,
        build: Callable[[web.Request, str, str], dict[str, Any]],
    ) -> web.Response:
        options, kind = failure.options, failure.kind
        if kind == "http_429":
            if options.get("style") == "v1":
                body = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
                response = web.json_response(body, status=429)
            else:
                response = problem(429, "Too Many Requests", "Too Many Requests")
            if "reset_in" in options:
                window = self._window(endpoint, token)
                window.resets_at = int(self.clock()) + int(options["reset_in"])
                window.used = self.limits[endpoint]
            return response
        if kind == "usage_cap":
            cap: dict[str, Any] = {
                "account_id": 1234567890,
                "product_name": "standard-basic",
                "title": "UsageCapExceeded",
                "period": "Monthly",
                "scope": "Product",
                "detail": "Usage cap exceeded: Monthly product cap",
                "type": f"{PROBLEMS}/usage-capped",
            }
            return web.json_response(cap, status=429, content_type="application/problem+json")
        if kind == "unauthorized":
            return problem(401, "Unauthorized", "Unauthorized")
        if kind == "forbidden":
            return problem(
                403,
                "Client Forbidden",
                "When authenticating requests to the Twitter API v2 endpoints, you must use "
                "keys and tokens from a Twitter developer App that is attached to a Project.",
                f"{PROBLEMS}/client-forbidden",
            )
        if kind == "server_error":
            status = int(options.get("status", 503))
            if options.get("html"):
                return web.Response(
                    status=status, text="<html>Over capacity</html>", content_type="text/html"
                )
            return problem(status, "Service Unavailable", "Service Unavailable")
        if kind == "slow":
            await self._release.wait()
            return web.Response(status=504)
        if kind == "malformed":
            return web.Response(text='{"data": [ {"id": ', content_type="application/json")
        if kind == "truncated":
            full = json.dumps(build(request, endpoint, token))
            return web.Response(text=full[: len(full) // 2], content_type="application/json")
        if kind == "html":
            return web.Response(text="<html><body>Sorry</body></html>", content_type="text/html")
        if kind == "invalid_request":
            return problem(
                400,
                "Invalid Request",
                "One or more parameters to your request was invalid.",
                f"{PROBLEMS}/invalid-request",
            )
        if kind == "empty_page_with_next":
            here = request.query.get("pagination_token") or _encode_token(0)
            return web.json_response({"meta": {"result_count": 0, "next_token": here}})
        # "recorded": a body someone captured from the real API.
        return web.json_response(
            options["body"],
            status=int(options.get("status", 200)),
            content_type=str(options.get("content_type", "application/json")),
        )

    # -- bodies --------------------------------------------------------------------------

    @staticmethod
    def _limit(request: web.Request, low: int, high: int, default: int) -> int:
        raw = request.query.get("max_results", str(default))
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise _invalid(f"`max_results` [{raw}] is not between {low} and {high}")
        return int(raw)

    @staticmethod
    def _start_time(request: web.Request) -> datetime | None:
        raw = request.query.get("start_time")
        if raw is None:
            return None
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise _invalid(f"Invalid start_time [{raw}]") from None
        if parsed.tzinfo is None:
            raise _invalid(f"Invalid start_time [{raw}]")
        return parsed

    def _page(self, request: web.Request, rows: list[dict[str, Any]], size: int) -> dict[str, Any]:
        start = 0
        if "pagination_token" in request.query:
            decoded = _decode_token(request.query["pagination_token"])
            if decoded is None:
                raise _invalid("The `pagination_token` query parameter value is not valid")
            start = decoded
        chunk = rows[start : start + size]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if chunk:
            meta.update(newest_id=chunk[0]["id"], oldest_id=chunk[-1]["id"])
        if start + size < len(rows):
            meta["next_token"] = _encode_token(start + size)
        if start > 0:
            meta["previous_token"] = _encode_token(max(0, start - size))
        body: dict[str, Any] = {"meta": meta}
        if chunk:
            body = {"data": chunk, "meta": meta}
        return body

    def _timeline(self, request: web.Request, endpoint: str, _token: str) -> dict[str, Any]:
        user = request.match_info["user_id"]
        if user not in self.usernames:
            return {
                "errors": [
                    {
                        "value": user,
                        "detail": f"Could not find user with id: [{user}].",
                        "title": "Not Found Error",
                        "resource_type": "user",
                        "parameter": "id",
                        "resource_id": user,
                        "type": f"{PROBLEMS}/resource-not-found",
                    }
                ]
            }
        size = self._limit(request, 5, 100, 10)
        start_time = self._start_time(request)
        since = int(request.query.get("since_id", "0") or 0)
        excluded = set(request.query.get("exclude", "").split(","))
        if endpoint == "mentions":
            posts = [p for p in self.posts if user in p.mentions]
        else:
            posts = [p for p in self.posts if p.author == user]
            if "retweets" in excluded:
                posts = [p for p in posts if not any(k == "retweeted" for k, _ in p.references)]
            if "replies" in excluded:
                posts = [p for p in posts if p.in_reply_to_user is None]
        posts.sort(key=lambda p: int(p.id), reverse=True)
        posts = posts[: REACHABLE[endpoint]]
        posts = [p for p in posts if int(p.id) > since]
        if start_time is not None:
            posts = [p for p in posts if p.created >= start_time]
        fields = set(request.query.get("tweet.fields", "").split(","))
        return self._page(request, [self._render_post(p, fields) for p in posts], size)

    @staticmethod
    def _render_post(post: _Post, fields: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "edit_history_tweet_ids": [post.id],
            "id": post.id,
            "text": post.text,
        }
        optional: dict[str, Any] = {
            "author_id": post.author,
            "created_at": x_time(post.created),
            "conversation_id": post.conversation,
        }
        if post.in_reply_to_user is not None:
            optional["in_reply_to_user_id"] = post.in_reply_to_user
        if post.references:
            optional["referenced_tweets"] = [{"type": k, "id": i} for k, i in post.references]
        row.update((key, value) for key, value in optional.items() if key in fields)
        return row

    def _direct_messages(self, request: web.Request, _endpoint: str, token: str) -> dict[str, Any]:
        user = self.user_tokens.get(token)
        if user is None:
            raise _Refusal(
                problem(
                    403,
                    "Unsupported Authentication",
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this "
                    "endpoint.  Supported authentication types are "
                    "[OAuth 1.0a User Context, OAuth 2.0 User Context].",
                    f"{PROBLEMS}/unsupported-authentication",
                    numbered=True,
                )
            )
        size = self._limit(request, 1, 100, 100)
        kinds = request.query.get("event_types", "MessageCreate").split(",")
        oldest = datetime.fromtimestamp(self.clock(), UTC) - DM_RETENTION
        messages = [
            m
            for m in self.messages
            if user in m.members and m.created >= oldest and "MessageCreate" in kinds
        ]
        messages.sort(key=lambda m: int(m.id), reverse=True)
        fields = set(request.query.get("dm_event.fields", "").split(","))
        rows = []
        for message in messages:
            row: dict[str, Any] = {
                "id": message.id,
                "event_type": "MessageCreate",
                "text": message.text,
            }
            optional = {
                "sender_id": message.sender,
                "created_at": x_time(message.created),
                "dm_conversation_id": message.conversation,
            }
            row.update((key, value) for key, value in optional.items() if key in fields)
            rows.append(row)
        body = self._page(request, rows, size)
        body["meta"].pop("newest_id", None)
        body["meta"].pop("oldest_id", None)
        return body


def demo_traffic() -> DemoTraffic:
    """The demo's airline answering mentions on X."""
    token = "demo-x-token"
    fake = FakeX(app_token=token)
    fake.add_user("900001", "airline_help")

    def write(n: int, at: datetime) -> Handle:
        customer = f"91{n:06d}"
        fake.add_user(customer, f"traveller{n}")
        return fake.customer_mention("900001", customer, at)

    return DemoTraffic(
        "airline-x",
        "x",
        fake.app,
        {"user_id": "900001"},
        {"bearer_token": token},
        write,
        lambda post, at: fake.business_reply("900001", post, at),
        5,
        (6, 30),
        0.1,
        channels=("mention",),
    )
