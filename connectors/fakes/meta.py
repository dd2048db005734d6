"""A local fake of Meta's Graph API and webhook sender, for tests and ``replywatch demo``.

Shaped like aiohttp's ``FakeFacebook`` example: a class holding a ``web.Application``, its
routes and mutable state. It reproduces what the connectors rely on (platform-apis.md 1, 2
and 11): versioned paths, ``access_token`` checks, cursor paging with full ``next`` URLs,
newest-first conversations with the 20-most-recent-messages cap, Page feed and Instagram
media comments, ISO ``+0000`` times, the Graph error envelope, usage headers, and signed
webhook bodies. Failure switches (:meth:`FakeMeta.fail_next`, or
:meth:`FakeMeta.fail_account` for one Page or Instagram account) make it throttle, expire
tokens, fail, hang, drop the connection, or answer garbage on demand.

Times are passed in by the caller and kept to whole seconds, as the Graph API shows them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connectors.fakes._switches import Failure, FailureSwitches

__all__ = ["Failure", "FakeMeta"]

MESSAGE_DETAIL_LIMIT = 20
FAILURE_KINDS = frozenset({
    "throttle", "http_429", "expired_token", "permission", "server_error", "slow",
    "malformed", "truncated", "html", "missing_data", "empty_page_with_next",
    "invalid_cursor", "recorded", "reset",
})  # fmt: skip


@dataclass
class _Message:
    mid: str
    sender: str
    recipient: str
    created: datetime


@dataclass
class _Comment:
    id: str
    author: str | None
    created: datetime
    top: str | None


@dataclass
class _Owner:
    id: str
    platform: str
    token: str
    page_id: str | None = None
    conversations: dict[str, list[_Message]] = field(default_factory=dict)
    # customer -> when the last message left in their conversation was unsent.
    emptied: dict[str, datetime] = field(default_factory=dict)
    posts: list[tuple[str, datetime]] = field(default_factory=list)
    comments: dict[str, list[_Comment]] = field(default_factory=dict)


def graph_time(at: datetime) -> str:
    """Graph's ISO form: ``2017-08-31T18:10:30+0000``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _whole_seconds(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("fake Meta times must be timezone-aware")
    return at.astimezone(UTC).replace(microsecond=0)


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


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"idx:{index}".encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "idx" and number.isdigit() else None


class FakeMeta(FailureSwitches):
    """The fake Graph API: state, routes and switches."""

    failure_kinds = FAILURE_KINDS

    def __init__(self, *, app_call_limit: int = 5000, usage_headers: bool = True) -> None:
        self.owners: dict[str, _Owner] = {}
        self.failures: deque[Failure] = deque()
        self.requests: list[str] = []
        self.app_call_limit = app_call_limit
        self.usage_headers = usage_headers
        self.extra_fields = False
        self._counter = 0
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes([web.get("/{version}/{node}/{edge}", self._edge)])
        self.app.on_shutdown.append(self._on_shutdown)

    # -- state --------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    def add_page(self, page_id: str, token: str) -> None:
        """A Facebook Page reachable with ``token``."""
        self.owners[page_id] = _Owner(page_id, "facebook", token)

    def add_ig_account(self, ig_user_id: str, page_id: str, token: str) -> None:
        """An Instagram professional account linked to ``page_id``."""
        self.owners[ig_user_id] = _Owner(ig_user_id, "instagram", token, page_id)

    def customer_message(self, owner_id: str, customer_id: str, at: datetime) -> str:
        """A customer writes to the business; returns the message id."""
        return self._message(owner_id, customer_id, customer_id, owner_id, at)

    def business_reply(self, owner_id: str, customer_id: str, at: datetime) -> str:
        """The business writes to a customer; returns the message id."""
        return self._message(owner_id, customer_id, owner_id, customer_id, at)

    def _message(
        self, owner_id: str, customer: str, sender: str, recipient: str, at: datetime
    ) -> str:
        owner = self.owners[owner_id]
        prefix = "aWdf" if owner.platform == "instagram" else "m_"
        mid = f"{prefix}{self._next_id():08d}"
        owner.conversations.setdefault(customer, []).append(
            _Message(mid, sender, recipient, _whole_seconds(at))
        )
        return mid

    def unsend(self, owner_id: str, mid: str, at: datetime) -> None:
        """The author takes a message back at ``at`` (Messenger and Instagram "unsend").

        A conversation left without messages stays listed, without a ``messages`` field:
        Graph leaves empty edges out of a response (tests/fixtures/facebook/
        graph-conversation.json is such a conversation as recorded).
        """
        owner = self.owners[owner_id]
        for customer, messages in owner.conversations.items():
            kept = [m for m in messages if m.mid != mid]
            if len(kept) < len(messages):
                owner.conversations[customer] = kept
                if not kept:
                    owner.emptied[customer] = _whole_seconds(at)
                return
        raise KeyError(f"no message {mid}")

    def add_post(self, owner_id: str, at: datetime) -> str:
        """A post (Facebook) or media (Instagram) by the business; returns its id."""
        owner = self.owners[owner_id]
        number = self._next_id()
        post_id = f"{owner_id}_{number}" if owner.platform == "facebook" else f"179{number:08d}"
        owner.posts.append((post_id, _whole_seconds(at)))
        owner.comments[post_id] = []
        return post_id

    def customer_comment(
        self,
        owner_id: str,
        customer_id: str | None,
        at: datetime,
        *,
        post_id: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """A customer comments on the latest post (or ``post_id``), optionally as a reply."""
        return self._comment(owner_id, customer_id, at, post_id, reply_to)

    def business_comment_reply(self, owner_id: str, reply_to: str, at: datetime) -> str:
        """The business replies under a comment; returns the reply's id."""
        return self._comment(owner_id, owner_id, at, None, reply_to)

    def _comment(
        self,
        owner_id: str,
        author: str | None,
        at: datetime,
        post_id: str | None,
        reply_to: str | None,
    ) -> str:
        owner = self.owners[owner_id]
        if reply_to is not None:
            post_id, parent = self._locate(owner, reply_to)
            top = parent.top or parent.id
        else:
            if post_id is None:
                post_id = owner.posts[-1][0] if owner.posts else self.add_post(owner_id, at)
            top = None
        number = self._next_id()
        ident = f"{post_id}_{number}" if owner.platform == "facebook" else f"178{number:08d}"
        owner.comments[post_id].append(_Comment(ident, author, _whole_seconds(at), top))
        return ident

    def _locate(self, owner: _Owner, comment_id: str) -> tuple[str, _Comment]:
        for post_id, comments in owner.comments.items():
            for comment in comments:
                if comment.id == comment_id:
                    return post_id, comment
        raise KeyError(f"no comment {comment_id}")

    # -- switches ------------------------------------------------------------------------

    # -- HTTP ----------------------------------------------------------------------------

    def _headers(self, owner: _Owner | None) -> dict[str, str]:
        if not self.usage_headers:
            return {}
        used = min(100, round(100 * len(self.requests) / self.app_call_limit))
        headers = {
            "X-App-Usage": json.dumps({"call_count": used, "total_cputime": 1, "total_time": 1})
        }
        if owner is not None:
            headers["X-Business-Use-Case-Usage"] = json.dumps({owner.id: [{
                "type": "pages", "call_count": used, "total_cputime": 1, "total_time": 1,
                "estimated_time_to_regain_access": 0,
            }]})  # fmt: skip
        return headers

    @staticmethod
    def error_body(
        code: int, message: str, subcode: int | None = None, kind: str = "OAuthException"
    ) -> dict[str, Any]:
        """The Graph error envelope."""
        error: dict[str, Any] = {
            "message": message,
            "type": kind,
            "code": code,
            "fbtrace_id": "AbCdEfGhIjK",
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return {"error": error}

    def _json(
        self,
        body: object,
        status: int = 200,
        owner: _Owner | None = None,
        extra: dict[str, str] | None = None,
    ) -> web.Response:
        return web.json_response(
            body, status=status, headers={**self._headers(owner), **(extra or {})}
        )

    async def _failure_response(
        self, failure: Failure, request: web.Request, owner: _Owner
    ) -> web.StreamResponse | None:
        options = failure.options
        kind = failure.kind
        if kind == "throttle":
            code = int(options.get("code", 80001))
            headers = self._headers(owner)
            regain = options.get("regain_minutes")
            if regain is not None:
                headers["X-Business-Use-Case-Usage"] = json.dumps({owner.id: [{
                    "type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 20,
                    "estimated_time_to_regain_access": regain,
                }]})  # fmt: skip
            body = self.error_body(
                code,
                f"(#{code}) There have been too many calls. Wait a bit and try again.",
                kind="OAuthException",
            )
            return web.json_response(body, status=int(options.get("status", 400)), headers=headers)
        if kind == "http_429":
            extra = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            return web.Response(status=429, text="Too Many Requests", headers=extra)
        if kind == "expired_token":
            body = self.error_body(
                190,
                "Error validating access token: Session has expired.",
                subcode=int(options.get("subcode", 463)),
            )
            return self._json(body, 400, owner)
        if kind == "permission":
            return self._json(
                self.error_body(int(options.get("code", 200)), "(#200) Permissions error"),
                403,
                owner,
            )
        if kind == "server_error":
            status = int(options.get("status", 500))
            if options.get("html"):
                return web.Response(
                    status=status, text="<html>Service Unavailable</html>", content_type="text/html"
                )
            body = self.error_body(
                int(options.get("code", 2)),
                "An unexpected error has occurred.",
                kind="OAuthException",
            )
            return self._json(body, status, owner)
        if kind == "slow":
            await self._hang(options)
            return web.Response(status=504)
        if kind == "reset":
            return await _reset(request, json.dumps(await self._page(request, owner)).encode())
        if kind == "malformed":
            return web.Response(text='{"data": [ {"id": ', content_type="application/json")
        if kind == "truncated":
            full = json.dumps(await self._page(request, owner))
            return web.Response(text=full[: len(full) // 2], content_type="application/json")
        if kind == "html":
            return web.Response(text="<html><body>Sorry</body></html>", content_type="text/html")
        if kind == "missing_data":
            return self._json({"paging": {}}, 200, owner)
        if kind == "empty_page_with_next":
            query = dict(request.query)
            return self._json(
                {"data": [], "paging": {"next": str(request.url.with_query(query))}}, 200, owner
            )
        if kind == "invalid_cursor":
            body = self.error_body(
                100, "(#100) The parameter after is invalid (cursor expired)", kind="OAuthException"
            )
            return self._json(body, 400, owner)
        if kind == "recorded":
            return self._json(options["body"], int(options.get("status", 200)), owner)
        return None

    def _owner_for(self, node: str, edge: str, platform: str | None, token: str) -> _Owner | None:
        if node == "me":
            # An Instagram-login token names its account; prefer the platform asked for.
            matches = [o for o in self.owners.values() if o.token == token]
            preferred = [o for o in matches if o.platform == platform]
            found = preferred or matches
            return found[0] if found else None
        if edge == "conversations" and platform == "instagram":
            for owner in self.owners.values():
                if owner.platform == "instagram" and node in (owner.id, owner.page_id):
                    return owner
            return None
        direct = self.owners.get(node)
        if direct is not None:
            return direct
        # A post or media id: find its owner.
        return next((o for o in self.owners.values() if node in o.comments), None)

    async def _edge(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        node, edge = request.match_info["node"], request.match_info["edge"]
        token = request.query.get("access_token", "")
        owner = self._owner_for(node, edge, request.query.get("platform"), token)
        if owner is None:
            return self._json(
                self.error_body(
                    100, f"Unsupported get request: {node}", kind="GraphMethodException"
                ),
                400,
            )
        if token != owner.token:
            return self._json(self.error_body(190, "Invalid OAuth access token."), 400)
        failure = self._take_failure(owner.id)
        if failure is not None:
            response = await self._failure_response(failure, request, owner)
            if response is not None:
                return response
        return self._json(await self._page(request, owner), 200, owner)

    async def _page(self, request: web.Request, owner: _Owner) -> dict[str, Any]:
        node, edge = request.match_info["node"], request.match_info["edge"]
        if edge == "conversations":
            items = self._conversations(owner)
            cap = 25
        elif edge in ("feed", "media"):
            items = self._posts(owner)
            cap = 100
        elif edge == "comments":
            items = self._comments(owner, node)
            cap = 100
        else:
            raise web.HTTPNotFound()
        limit = min(int(request.query.get("limit", "25") or 25), cap)
        start = 0
        if "after" in request.query:
            decoded = _decode_cursor(request.query["after"])
            if decoded is None:
                raise web.HTTPBadRequest(
                    text=json.dumps(self.error_body(100, "(#100) Invalid cursor")),
                    content_type="application/json",
                )
            start = decoded
        chunk = items[start : start + limit]
        body: dict[str, Any] = {"data": chunk}
        paging: dict[str, Any] = {
            "cursors": {"before": _encode_cursor(start), "after": _encode_cursor(start + limit)}
        }
        if start + limit < len(items):
            query = {**request.query, "after": _encode_cursor(start + limit)}
            paging["next"] = str(request.url.with_query(query))
        if start > 0:
            query = {**request.query, "before": _encode_cursor(start)}
            query.pop("after", None)
            paging["previous"] = str(request.url.with_query(query))
        body["paging"] = paging
        return body

    def _conversations(self, owner: _Owner) -> list[dict[str, Any]]:
        rows = []
        for customer, messages in owner.conversations.items():
            ordered = sorted(messages, key=lambda m: (m.created, m.mid), reverse=True)
            recent = ordered[:MESSAGE_DETAIL_LIMIT]
            updated = ordered[0].created if ordered else owner.emptied[customer]
            people = [{"id": customer}, {"id": owner.id}]
            if owner.platform == "facebook":
                people = [
                    {
                        "id": customer,
                        "name": f"Customer {customer}",
                        "email": f"{customer}@facebook.com",
                    },
                    {"id": owner.id, "name": "Page"},
                ]
            row: dict[str, Any] = {
                "id": f"t_{owner.id}_{customer}",
                "updated_time": graph_time(updated),
                "link": f"/{owner.id}/inbox/{customer}/",
                "message_count": len(messages),
                "participants": {"data": people},
                "messages": {
                    "data": [
                        {
                            "id": m.mid,
                            "created_time": graph_time(m.created),
                            "from": {"id": m.sender},
                        }
                        for m in recent
                    ],
                    "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}},
                },
            }
            if len(messages) > MESSAGE_DETAIL_LIMIT:
                row["messages"]["paging"]["next"] = "https://graph.facebook.invalid/next"
            if not recent:
                del row["messages"]  # Graph leaves an empty edge out
            if self.extra_fields:
                row["unread_count"] = 1
                row["can_reply"] = True
            rows.append((updated, row))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        return [row for _at, row in rows]

    def _posts(self, owner: _Owner) -> list[dict[str, Any]]:
        rows = []
        for post_id, created in sorted(owner.posts, key=lambda p: p[1], reverse=True):
            if owner.platform == "facebook":
                rows.append(
                    {
                        "id": post_id,
                        "created_time": graph_time(created),
                        "permalink_url": f"https://www.facebook.com/{post_id}",
                    }
                )
            else:
                rows.append(
                    {
                        "id": post_id,
                        "timestamp": graph_time(created),
                        "permalink": f"https://www.instagram.com/p/{post_id}/",
                    }
                )
        return rows

    def _comments(self, owner: _Owner, post_id: str) -> list[dict[str, Any]]:
        comments = sorted(owner.comments.get(post_id, []), key=lambda c: (c.created, c.id))
        if owner.platform == "facebook":
            rows = []
            for comment in comments:
                row: dict[str, Any] = {
                    "id": comment.id,
                    "created_time": graph_time(comment.created),
                    "permalink_url": f"https://www.facebook.com/{comment.id}",
                }
                if comment.author is not None:
                    row["from"] = {"id": comment.author, "name": f"Person {comment.author}"}
                if comment.top is not None:
                    row["parent"] = {"id": comment.top}
                rows.append(row)
            return rows
        tops = [c for c in comments if c.top is None]
        result = []
        for top in tops:
            row = self._ig_comment(top)
            replies = [self._ig_comment(c) for c in comments if c.top == top.id]
            if replies:
                row["replies"] = {"data": replies}
            result.append(row)
        return result

    @staticmethod
    def _ig_comment(comment: _Comment) -> dict[str, Any]:
        row: dict[str, Any] = {"id": comment.id, "timestamp": graph_time(comment.created)}
        if comment.author is not None:
            row["from"] = {"id": comment.author, "username": f"user{comment.author}"}
        if comment.top is not None:
            row["parent_id"] = comment.top
        return row

    # -- webhooks ------------------------------------------------------------------------

    def message_webhook(self, owner_id: str, mid: str) -> bytes:
        """The webhook body Meta sends for a stored message (or its echo)."""
        owner = self.owners[owner_id]
        for messages in owner.conversations.values():
            for message in messages:
                if message.mid == mid:
                    break
            else:
                continue
            break
        else:
            raise KeyError(f"no message {mid}")
        ms = int(message.created.timestamp() * 1000)
        body: dict[str, Any] = {"mid": mid, "text": "(simulated)"}
        if message.sender == owner.id:
            body.update(is_echo=True, app_id=1517776481860352)
        event = {
            "sender": {"id": message.sender},
            "recipient": {"id": message.recipient},
            "timestamp": ms,
            "message": body,
        }
        envelope = {
            "object": "page" if owner.platform == "facebook" else "instagram",
            "entry": [{"id": owner.id, "time": ms, "messaging": [event]}],
        }
        return json.dumps(envelope).encode()

    def comment_webhook(self, owner_id: str, comment_id: str) -> bytes:
        """The webhook body Meta sends for a stored comment."""
        owner = self.owners[owner_id]
        post_id, comment = self._locate(owner, comment_id)
        seconds = int(comment.created.timestamp())
        author = {"id": comment.author, "name": f"Person {comment.author}"}
        if owner.platform == "facebook":
            value: dict[str, Any] = {
                "item": "comment", "verb": "add", "comment_id": comment.id, "post_id": post_id,
                "parent_id": comment.top or post_id, "from": author,
                "created_time": seconds, "message": "(simulated)",
            }  # fmt: skip
            change = {"field": "feed", "value": value}
            envelope = {
                "object": "page",
                "entry": [{"id": owner.id, "time": seconds, "changes": [change]}],
            }
        else:
            value = {
                "id": comment.id,
                "text": "(simulated)",
                "from": {"id": comment.author, "username": f"user{comment.author}"},
                "media": {"id": post_id, "media_product_type": "FEED"},
            }
            if comment.top is not None:
                value["parent_id"] = comment.top
            envelope = {
                "object": "instagram",
                "entry": [
                    {
                        "id": owner.id,
                        "time": seconds,
                        "changes": [{"field": "comments", "value": value}],
                    }
                ],
            }
        return json.dumps(envelope).encode()

    @staticmethod
    def signed_webhook(app_secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
        """Sign the exact bytes as Meta does (X-Hub-Signature-256)."""
        digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
