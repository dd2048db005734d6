"""A local fake of the Telegram Bot API (with Telegram Business), for tests and demos.

Shaped like aiohttp's ``FakeFacebook`` example: a class holding a ``web.Application``, its
routes and mutable state. It reproduces what the connector relies on (platform-apis.md 8 and
11):

* ``/bot<token>/<method>`` with parameters in the query string, a form or a JSON body; a token
  of the wrong shape answers 404 ``Not Found``, a well-formed but unknown one 401
  ``Unauthorized``, both in the ``{"ok": false, "error_code", "description"}`` envelope;
* ``getUpdates`` offset semantics: calling with an offset confirms (forgets) every update
  below it; unconfirmed updates come again; a negative offset keeps only the newest ones;
  ``limit`` 1-100; ``timeout`` long polls until an update arrives; a newer ``getUpdates``
  ends a waiting one with 409; ``allowed_updates`` is remembered and filters updates as
  they are created; updates older than 24 hours are dropped;
* ``setWebhook`` / ``deleteWebhook`` / ``getWebhookInfo``: while a webhook is set,
  ``getUpdates`` answers 409, and :meth:`FakeTelegram.webhook_delivery` builds the POST
  Telegram would send, with ``X-Telegram-Bot-Api-Secret-Token``;
* Telegram Business: business connections, customers' messages, the owner's replies, replies
  sent through a bot (``sender_business_bot``), away messages (``is_from_offline``), edits,
  and ``getBusinessConnection``.

Failure switches (:meth:`FakeTelegram.fail_next`) make it throttle, refuse the token, fail,
hang, reset the connection or answer garbage on demand. Wordings marked UNCONFIRMED in
platform-apis.md are the commonly reported ones.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.fakes._demo import DemoTraffic, Handle
from connectors.fakes._switches import Failure

__all__ = ["FAILURE_KINDS", "Failure", "FakeTelegram", "demo_traffic"]

RETENTION = timedelta(hours=24)
MAX_LIMIT = 100
# An empty allowed_updates list means everything except these (Bot API getUpdates).
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")
SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
DATA_METHODS = frozenset({"getUpdates", "getBusinessConnection"})
FAILURE_KINDS = frozenset({
    "server_error", "slow", "reset", "rate_limited", "expired_token", "invalid_token",
    "conflict", "malformed", "truncated", "missing_fields", "recorded",
})  # fmt: skip
CONFLICT_OTHER = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)


@dataclass
class _Update:
    id: int
    kind: str
    payload: dict[str, Any]
    queued: datetime

    def body(self) -> dict[str, Any]:
        return {"update_id": self.id, self.kind: self.payload}


@dataclass
class _Connection:
    id: str
    owner: int
    date: datetime
    enabled: bool = True
    can_reply: bool = True
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)


def _seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("fake Telegram times must be timezone-aware")
    return int(at.timestamp())


def _person(user_id: int, name: str, username: str | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name}
    if username:
        person["username"] = username
    return person


class FakeTelegram:
    """The fake Bot API for one bot: state, routes and switches."""

    def __init__(
        self,
        token: str,
        *,
        bot_id: int = 7000000001,
        bot_username: str = "replywatch_test_bot",
        first_update_id: int = 862000000,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Replywatch test",
            "username": bot_username,
        }
        self.connections: dict[str, _Connection] = {}
        self.pending: list[_Update] = []
        # None: Telegram's default, every type but NOT_BY_DEFAULT.
        self.allowed: frozenset[str] | None = None
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.failures: deque[Failure] = deque()
        # (method, parameters) of every request, never the token.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._next_update = first_update_id
        self._boxes: dict[int, int] = {}
        self._connection_counter = 0
        self._generation = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._release = asyncio.Event()
        # Set while a long poll waits for updates, so tests need no sleeps.
        self.waiting = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes([web.route("*", "/{bot}/{method}", self._handle)])
        self.app.on_shutdown.append(self._on_shutdown)

    # -- state --------------------------------------------------------------------------

    def add_business_connection(
        self,
        owner_id: int,
        at: datetime,
        *,
        connection_id: str | None = None,
        announce: bool = True,
        can_reply: bool = True,
    ) -> str:
        """A business account connects the bot; ``announce=False``: it did so long ago."""
        if connection_id is None:
            self._connection_counter += 1
            connection_id = f"BCfake{self._connection_counter:04d}AAAAdTb6"
        connection = _Connection(connection_id, owner_id, at, can_reply=can_reply)
        self.connections[connection_id] = connection
        if announce:
            self._queue("business_connection", self._connection_body(connection), at)
        return connection_id

    def disable_connection(self, connection_id: str, at: datetime) -> None:
        """The business disconnects the bot (a business_connection with is_enabled false)."""
        connection = self.connections[connection_id]
        connection.enabled = False
        self._queue("business_connection", self._connection_body(connection), at)

    def forget_connection(self, connection_id: str) -> None:
        """getBusinessConnection no longer knows the connection (deleted long ago)."""
        del self.connections[connection_id]

    def customer_message(
        self, connection_id: str, customer_id: int, at: datetime, *, username: str | None = None
    ) -> int:
        """A customer writes to the business; returns Telegram's message id."""
        sender = _person(customer_id, f"Customer {customer_id}", username)
        return self._business_message(connection_id, customer_id, sender, at, username)

    def business_reply(
        self, connection_id: str, customer_id: int, at: datetime, *, via_bot: int | None = None
    ) -> int:
        """The business answers; ``via_bot``: sent by that bot on the business's behalf."""
        connection = self.connections[connection_id]
        extra: dict[str, Any] = {}
        if via_bot is not None:
            extra["sender_business_bot"] = {
                "id": via_bot,
                "is_bot": True,
                "first_name": "Helper bot",
                "username": f"helper{via_bot}_bot",
            }
        sender = _person(connection.owner, "Owner")
        return self._business_message(connection_id, customer_id, sender, at, None, extra)

    def away_message(self, connection_id: str, customer_id: int, at: datetime) -> int:
        """Telegram sends the business's away or greeting message (``is_from_offline``)."""
        connection = self.connections[connection_id]
        sender = _person(connection.owner, "Owner")
        extra = {"is_from_offline": True}
        return self._business_message(connection_id, customer_id, sender, at, None, extra)

    def edit_message(
        self, connection_id: str, customer_id: int, message_id: int, at: datetime
    ) -> None:
        """Someone edits a message: an edited_business_message with the original date."""
        connection = self.connections[connection_id]
        edited = dict(connection.messages[(customer_id, message_id)])
        edited["edit_date"] = _seconds(at)
        self._queue("edited_business_message", edited, at)

    def delete_messages(
        self, connection_id: str, customer_id: int, message_ids: list[int], at: datetime
    ) -> None:
        """Messages are deleted in a business chat (deleted_business_messages)."""
        body = {
            "business_connection_id": connection_id,
            "chat": {"id": customer_id, "type": "private", "first_name": "Customer"},
            "message_ids": message_ids,
        }
        self._queue("deleted_business_messages", body, at)

    def bot_message(self, user_id: int, at: datetime) -> int:
        """Someone writes to the bot itself (a plain ``message`` update)."""
        number = self._box(self.bot_id * 1000 + user_id)
        body = {
            "message_id": number,
            "from": _person(user_id, f"User {user_id}"),
            "chat": {"id": user_id, "type": "private", "first_name": f"User {user_id}"},
            "date": _seconds(at),
            "text": "(simulated)",
        }
        self._queue("message", body, at)
        return number

    def add_update(self, update: dict[str, Any], at: datetime | None = None) -> int:
        """Queue a raw Update (a recorded payload); keeps its update_id when it is newer."""
        kinds = [k for k in update if k != "update_id"]
        if len(kinds) != 1:
            raise ValueError("an Update carries exactly one kind of payload")
        given = update.get("update_id")
        if isinstance(given, int) and given >= self._next_update:
            self._next_update = given
        payload = update[kinds[0]]
        when = at
        if when is None and isinstance(payload, dict) and isinstance(payload.get("date"), int):
            when = datetime.fromtimestamp(payload["date"], tz=UTC)
        return self._queue(kinds[0], payload, when or self.clock(), keep_id=given)

    def _box(self, owner: int) -> int:
        # Private-chat message ids count up per account, shared by both directions.
        self._boxes[owner] = self._boxes.get(owner, 0) + 1
        return self._boxes[owner]

    def _business_message(
        self,
        connection_id: str,
        customer_id: int,
        sender: dict[str, Any],
        at: datetime,
        username: str | None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        connection = self.connections[connection_id]
        number = self._box(connection.owner)
        chat: dict[str, Any] = {
            "id": customer_id,
            "type": "private",
            "first_name": f"Customer {customer_id}",
        }
        if username:
            chat["username"] = username
        body: dict[str, Any] = {
            "business_connection_id": connection_id,
            "message_id": number,
            "from": sender,
            "chat": chat,
            "date": _seconds(at),
            "text": "(simulated)",
            **(extra or {}),
        }
        connection.messages[(customer_id, number)] = body
        self._queue("business_message", body, at)
        return number

    def _connection_body(self, connection: _Connection) -> dict[str, Any]:
        return {
            "id": connection.id,
            "user": _person(connection.owner, "Owner"),
            "user_chat_id": connection.owner,
            "date": _seconds(connection.date),
            "rights": {"can_reply": connection.can_reply, "can_read_messages": True},
            "is_enabled": connection.enabled,
        }

    def _queue(
        self, kind: str, payload: dict[str, Any], at: datetime, keep_id: object = None
    ) -> int:
        wanted = kind not in NOT_BY_DEFAULT if self.allowed is None else kind in self.allowed
        if isinstance(keep_id, int) and keep_id >= self._next_update:
            ident = keep_id
            self._next_update = keep_id + 1
        else:
            ident = self._next_update
            self._next_update += 1
        if wanted:  # Telegram drops types nobody asked for when they happen
            self.pending.append(_Update(ident, kind, payload, at.astimezone(UTC)))
            self._wake()
        return ident

    def pending_updates(self) -> list[dict[str, Any]]:
        """The unconfirmed updates, as getUpdates would return them."""
        self._expire()
        return [u.body() for u in self.pending]

    def _expire(self) -> None:
        oldest = self.clock() - RETENTION
        self.pending = [u for u in self.pending if u.queued >= oldest]

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- switches ------------------------------------------------------------------------

    def fail_next(self, kind: str, times: int = 1, **options: Any) -> None:
        """Make the next ``times`` data requests fail as ``kind`` (see FAILURE_KINDS).

        ``method="getBusinessConnection"`` limits a failure to one method. Options per kind:
        ``server_error`` status, html; ``rate_limited`` retry_after; ``conflict`` reason
        ("other" or "webhook"); ``missing_fields`` field; ``recorded`` body, status.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure {kind!r}")
        self.failures.append(Failure(kind, times, options))

    def _take_failure(self, method: str) -> Failure | None:
        for failure in self.failures:
            if failure.options.get("method", method) == method:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def release_slow(self) -> None:
        """Let hanging ('slow') requests finish."""
        self._release.set()

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._release.set()
        self._generation += 1
        self._wake()

    # -- webhooks ------------------------------------------------------------------------

    def webhook_delivery(self, update_id: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The POST body and headers Telegram sends a webhook for a pending update."""
        self._expire()
        chosen = [u for u in self.pending if update_id is None or u.id == update_id]
        if not chosen:
            raise KeyError(f"no pending update {update_id}")
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        return json.dumps(chosen[0].body()).encode(), headers

    # -- HTTP ----------------------------------------------------------------------------

    @staticmethod
    def error_body(code: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
        """Telegram's error envelope."""
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return body

    def _error(self, code: int, description: str, retry_after: int | None = None) -> web.Response:
        return web.json_response(self.error_body(code, description, retry_after), status=code)

    @staticmethod
    def _ok(result: object) -> dict[str, Any]:
        return {"ok": True, "result": result}

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    body = None
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update(dict(await request.post()))
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        prefix, method = request.match_info["bot"], request.match_info["method"]
        token = prefix[3:] if prefix.startswith("bot") else ""
        if not TOKEN_SHAPE.match(token):
            return self._error(404, "Not Found")
        if token != self.token:
            return self._error(401, "Unauthorized")
        params = await self._params(request)
        self.requests.append((method, params))
        handler = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "getBusinessConnection": self._get_business_connection,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }.get(method)
        if handler is None:
            return self._error(404, "Not Found")
        failure = self._take_failure(method) if method in DATA_METHODS else None
        if failure is not None:
            response = await self._failure_response(failure, request, handler, params)
            if response is not None:
                return response
        answer = await handler(params)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer)

    async def _failure_response(
        self,
        failure: Failure,
        request: web.Request,
        handler: Callable[[dict[str, Any]], Any],
        params: dict[str, Any],
    ) -> web.StreamResponse | None:
        options, kind = failure.options, failure.kind
        if kind == "server_error":
            status = int(options.get("status", 502))
            if options.get("html"):
                text = f"<html><head><title>{status} Bad Gateway</title></head></html>"
                return web.Response(status=status, text=text, content_type="text/html")
            return self._error(status, "Internal Server Error" if status == 500 else "Bad Gateway")
        if kind == "slow":
            await self._release.wait()
            return web.Response(status=504)
        if kind == "reset":
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:  # SO_LINGER 0: close with RST, as a dropped connection does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if kind == "rate_limited":
            wait = int(options.get("retry_after", 34))
            return self._error(429, f"Too Many Requests: retry after {wait}", wait)
        if kind == "expired_token":
            return self._error(401, "Unauthorized")
        if kind == "invalid_token":
            return self._error(404, "Not Found")
        if kind == "conflict":
            reason = CONFLICT_WEBHOOK if options.get("reason") == "webhook" else CONFLICT_OTHER
            return self._error(409, reason)
        if kind == "malformed":
            return web.Response(
                text='{"ok":true,"result":[{"update_id":', content_type="application/json"
            )
        if kind in ("truncated", "missing_fields"):
            answer = await handler(params)
            if not isinstance(answer, dict):
                return None
            if kind == "truncated":
                full = json.dumps(answer)
                return web.Response(text=full[: len(full) // 2], content_type="application/json")
            return web.json_response(self._without(answer, str(options.get("field", "result"))))
        if kind == "recorded":
            return web.json_response(options["body"], status=int(options.get("status", 200)))
        return None

    @staticmethod
    def _without(answer: dict[str, Any], name: str) -> dict[str, Any]:
        result = answer.get("result")
        if name == "result" or result is None:
            answer.pop("result", None)
        elif isinstance(result, dict):
            result.pop(name, None)
        elif isinstance(result, list) and result:
            first = dict(result[0])
            if name in first:
                first.pop(name)
            else:
                kind = next(k for k in first if k != "update_id")
                first[kind] = {k: v for k, v in first[kind].items() if k != name}
            result[0] = first
        return answer

    async def _get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        return self._ok(self.bot)

    async def _get_updates(self, params: dict[str, Any]) -> dict[str, Any] | web.Response:
        if self.webhook_url:
            return self._error(409, CONFLICT_WEBHOOK)
        try:
            offset = int(params.get("offset", 0) or 0)
            limit = min(max(int(params.get("limit", MAX_LIMIT) or MAX_LIMIT), 1), MAX_LIMIT)
            timeout = max(float(params.get("timeout", 0) or 0), 0.0)
            allowed = params.get("allowed_updates")
            if isinstance(allowed, str):
                allowed = json.loads(allowed)
        except (ValueError, TypeError):
            return self._error(400, "Bad Request: wrong parameter value")
        if allowed is not None:
            if not isinstance(allowed, list):
                return self._error(400, "Bad Request: can't parse allowed_updates JSON array")
            self.allowed = frozenset(map(str, allowed)) or None
        # A newer getUpdates ends any that is still waiting (it answers 409).
        self._generation += 1
        mine = self._generation
        self._wake()
        if offset > 0:
            self.pending = [u for u in self.pending if u.id >= offset]
        elif offset < 0:
            self.pending = self.pending[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._expire()
            if self.pending or loop.time() >= deadline:
                return self._ok([u.body() for u in self.pending[:limit]])
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            self.waiting.set()
            try:
                await asyncio.wait_for(waiter, deadline - loop.time())
            except TimeoutError:
                pass
            finally:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self.waiting.clear()
            if self._generation != mine:
                return self._error(409, CONFLICT_OTHER)

    async def _get_business_connection(
        self, params: dict[str, Any]
    ) -> dict[str, Any] | web.Response:
        ident = params.get("business_connection_id")
        if not ident:
            return self._error(400, "Bad Request: business_connection_id is empty")
        connection = self.connections.get(str(ident))
        if connection is None:
            return self._error(400, "Bad Request: business connection not found")
        return self._ok(self._connection_body(connection))

    async def _set_webhook(self, params: dict[str, Any]) -> dict[str, Any] | web.Response:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not SECRET_SHAPE.match(str(secret)):
            return self._error(400, "Bad Request: secret token contains unallowed characters")
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self.pending.clear()
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret is not None and url else None
        return self._ok(True)

    async def _delete_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self.pending.clear()
        self.webhook_url = ""
        self.webhook_secret = None
        return self._ok(True)

    async def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        return self._ok(
            {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self.pending),
            }
        )


def demo_traffic() -> DemoTraffic:
    """The demo's florist chatting with customers through Telegram Business."""
    token = "7000000001:AAHdemoTOKENfor_the_replywatch_demo_0123"
    fake = FakeTelegram(token)
    connection = fake.add_business_connection(
        5100000001, datetime.now(UTC), connection_id="BCdemo0001AAAAdTb6"
    )
    rng = random.Random(7)

    def write(n: int, at: datetime) -> Handle:
        customer = 6100000000 + n
        fake.customer_message(connection, customer, at)
        if rng.random() < 0.2:  # an away message: automated, never an answer
            fake.away_message(connection, customer, at)
        return customer

    return DemoTraffic(
        "florist-telegram",
        "telegram",
        fake.app,
        {},
        {"bot_token": token},
        write,
        lambda customer, at: fake.business_reply(connection, customer, at),
        4,
        (4, 20),
    )
