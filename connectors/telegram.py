"""Telegram Business chats through the Bot API: ``getUpdates`` polling and Update parsing.

A bot from @BotFather, connected to a Telegram Business account (Settings > Telegram Business >
Chatbots), receives the account's private chats as ``business_message`` updates
(platform-apis.md 8). Telegram keeps no history a bot can read: an update that is not fetched
within 24 hours is gone, so this connector must run continuously.

Offsets. One ``fetch_since`` makes exactly one ``getUpdates`` call, with the offset stored in
the cursor. Telegram confirms (and forgets) updates only when it is later called with a higher
offset, and the monitor stores the returned cursor in the same transaction as the events; so
the next poll's offset is what confirms a batch, and a crash before the store sends the old
offset again and gets the same updates back. Nothing is ever lost between fetch and store.

Who wrote a message (platform-apis.md 8): ``is_from_offline`` (away, greeting and scheduled
messages) is ``automated``; a message from the business connection's owner, or sent through a
bot on the business's behalf (``sender_business_bot``), is ``business`` (``automated`` for the
bot ids listed in ``options["automated_bots"]``); anything else is ``customer``. Owners come
from ``business_connection`` updates and, for connections seen first in a message, from
``getBusinessConnection``; they are kept in the cursor so a restart knows them. When a
connection cannot be resolved at all, the chat itself tells: a business chat is the private
chat with the customer, so its id is the customer's user id.

Ids: thread ``<business connection id>/<chat id>``; message ``<thread>:<message id>``, because
message ids are unique only within one chat of one business account, and one bot may serve
several business accounts. An edit (``edited_business_message``) carries the original ``date``
and yields the same message id, so the store keeps the first time.

Cursor keys (all strings): ``offset`` (last ``update_id`` + 1), ``connections`` (JSON object
of business connection id -> owner user id) and ``last_update_at`` (ISO 8601 time of the
newest update seen, for the "time since last update" gauge).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import aiohttp

from connectors._http import Refusals, Reply, refusal, send
from connectors.base import AuthorRole, ConnectorSettings, Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.platform import PlatformSpec, WebhookRoute

__all__ = [
    "ALLOWED_UPDATES",
    "TelegramConnector",
    "TelegramPayloadError",
    "business_message_id",
    "business_thread",
    "connection_owner",
    "parse_telegram_time",
    "update_event",
    "update_id",
    "update_time",
]

log = logging.getLogger("connectors.telegram")

DEFAULT_BASE_URL = "https://api.telegram.org"
# `message` is asked for as the issue requires; such updates (people writing to the bot
# itself) are confirmed and dropped, see `update_event`.
ALLOWED_UPDATES = ("message", "business_connection", "business_message", "edited_business_message")
MAX_LIMIT = 100
# Flood waits without a hint: Telegram's own hints are usually seconds to a few minutes.
DEFAULT_RETRY_AFTER = 30.0
# The longest flood wait obeyed. Telegram keeps an undelivered update for at most 24 hours
# (platform-apis.md 8; core.telegram.org/bots/api#getting-updates), so obeying a longer hint
# (a "retry_after" of 34 hours was seen) loses updates for certain. An hour is far above any
# real flood wait and leaves 23 of the 24 hours to catch up.
MAX_RETRY_AFTER = 3600.0
# Refusals without Telegram's JSON (a proxy's): the bot token is the only credential.
REFUSALS = Refusals(unauthorized="bot token refused", forbidden="bot token refused")
_RETRY_IN_TEXT = re.compile(r"retry after (\d+)", re.IGNORECASE)


class TelegramPayloadError(ValueError):
    """An Update without the documented shape; the message never quotes message text."""


def parse_telegram_time(value: object) -> datetime:
    """Telegram times are Unix seconds (integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TelegramPayloadError(f"a time is {type(value).__name__}, not Unix seconds")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise TelegramPayloadError(f"time {value} is out of range") from None


def business_thread(connection_id: str, chat_id: str) -> str:
    """The thread of one customer's private chat with one business account."""
    return f"{connection_id}/{chat_id}"


def business_message_id(connection_id: str, chat_id: str, message_id: str) -> str:
    """A message id unique per bot: Telegram's ids are unique only within one chat."""
    return f"{business_thread(connection_id, chat_id)}:{message_id}"


def _id(value: object) -> str | None:
    # Ids are integers up to 52 bits; connection ids are strings.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _object(parent: Mapping[str, Any], key: str, what: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise TelegramPayloadError(f"{what} has no '{key}' object")
    return value


def _required_id(parent: Mapping[str, Any], key: str, what: str) -> str:
    value = _id(parent.get(key))
    if value is None:
        raise TelegramPayloadError(f"{what} has no usable '{key}'")
    return value


def update_id(update: object) -> int:
    """The sequential ``update_id`` of one Update."""
    if not isinstance(update, dict):
        raise TelegramPayloadError("an update is not a JSON object")
    value = update.get("update_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TelegramPayloadError("an update has no integer 'update_id'")
    return value


def connection_owner(update: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(connection id, owner user id)`` from a ``business_connection`` update, else None."""
    connection = update.get("business_connection")
    if connection is None:
        return None
    if not isinstance(connection, dict):
        raise TelegramPayloadError("'business_connection' is not an object")
    ident = _required_id(connection, "id", "a business connection")
    owner = _required_id(_object(connection, "user", "a business connection"), "id", "its user")
    return ident, owner


def update_time(update: Mapping[str, Any]) -> datetime | None:
    """The newest time an update carries (an edit's ``edit_date``), or None."""
    for key in ("business_message", "edited_business_message", "business_connection", "message"):
        item = update.get(key)
        if isinstance(item, dict):
            times = [item.get("date"), item.get("edit_date")]
            found = [parse_telegram_time(t) for t in times if t is not None]
            return max(found) if found else None
    return None


def update_event(
    update: Mapping[str, Any],
    account: str,
    owners: Mapping[str, str],
    automated_bots: Iterable[str] = (),
) -> Event | None:
    """The event one Update carries, or None for updates that are not business chat messages.

    ``owners`` maps business connection ids to their owners' user ids. Plain ``message``
    updates (someone writing to the bot itself) are not events: the bot's own answers never
    come back as updates, so every such chat would look unanswered.
    """
    message = update.get("business_message", update.get("edited_business_message"))
    if message is None:
        return None
    if not isinstance(message, dict):
        raise TelegramPayloadError("a business message is not an object")
    connection = _required_id(message, "business_connection_id", "a business message")
    chat = _required_id(_object(message, "chat", "a business message"), "id", "its chat")
    number = _required_id(message, "message_id", "a business message")
    sender = _required_id(_object(message, "from", "a business message"), "id", "its sender")
    created = parse_telegram_time(message.get("date"))
    role = _role(message, sender, chat, owners.get(connection), frozenset(automated_bots))
    username = message["chat"].get("username")
    return Event(
        platform="telegram",
        account=account,
        channel="dm",
        thread_id=business_thread(connection, chat),
        message_id=business_message_id(connection, chat, number),
        author_role=role,
        created_at=created,
        thread_url=f"https://t.me/{username}" if isinstance(username, str) and username else None,
    )


def _role(
    message: Mapping[str, Any],
    sender: str,
    chat: str,
    owner: str | None,
    automated_bots: frozenset[str],
) -> AuthorRole:
    if message.get("is_from_offline") is True:
        return "automated"  # away, greeting and scheduled messages never answer anyone
    bot = message.get("sender_business_bot")
    if bot is not None:
        bot_id = _id(bot.get("id")) if isinstance(bot, dict) else None
        return "automated" if bot_id in automated_bots else "business"
    if owner is not None:
        return "business" if sender == owner else "customer"
    # Unknown owner: the chat is the private chat with the customer, so its id is theirs.
    return "customer" if sender == chat else "business"


def _decode_connections(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {}  # a damaged entry is relearned from getBusinessConnection
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items() if _id(v) is not None}


def _aware(raw: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None  # a damaged mark is replaced by the next update's time
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _offset(cursor: Mapping[str, str]) -> int | None:
    raw = cursor.get("offset", "")
    # A damaged offset reads all unconfirmed updates again: duplicates are harmless.
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


class TelegramConnector:
    """Polls one bot's Telegram Business chats with ``getUpdates``."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "telegram",
        ids=(),
        secrets=("bot_token",),
        channels=("dm",),
        default_channel="dm",
        # Telegram forgets an update after 24 h: poll often.
        poll_interval_seconds=5.0,
        launched=date(2013, 8, 14),
        # The route names the account: each account's bot has its own secret token.
        webhook=WebhookRoute("telegram", "/hooks/telegram/<account>", ("secret_token",)),
    )
    platform: ClassVar[str] = record.name

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        where = f"telegram/{settings.account}"
        token = settings.secrets.get("bot_token", "")
        if not token:
            raise ConnectorResponseError(f"{where}: missing setting bot_token")
        self._token = token
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.long_poll = self._int_option("long_poll_seconds", 0, 0, 3600)
        self.limit = self._int_option("limit", MAX_LIMIT, 1, MAX_LIMIT)
        bots = settings.options.get("automated_bots", "")
        self.automated_bots = frozenset(b.strip() for b in bots.split(",") if b.strip())
        self._since = settings.backfill_since
        # True while flood waits are being capped: the cap is logged once, not at every poll.
        self._capping = False
        self._owners: dict[str, str] = {}
        # Connections getBusinessConnection could not resolve; asked once per process.
        self._unresolvable: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.settings.account!r})"

    def _int_option(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.settings.options.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ConnectorResponseError(
                f"telegram/{self.settings.account}: option {name} must be {low}-{high}"
            )
        return value

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """One ``getUpdates`` batch after ``cursor``; an empty cursor backfills what is kept."""
        offset = _offset(cursor)
        owners = {**self._owners, **_decode_connections(cursor.get("connections"))}
        updates = await self._get_updates(offset)
        self._capping = False
        try:
            ids = [update_id(u) for u in updates]
            for update in updates:
                found = connection_owner(update)
                if found is not None:
                    owners[found[0]] = found[1]
        except TelegramPayloadError as err:
            raise ConnectorResponseError(f"{self._where('getUpdates')}: {err}") from None
        for connection in self._unknown_connections(updates, owners):
            owner = await self._resolve(connection)
            if owner is not None:
                owners[connection] = owner
        self._owners.update(owners)
        events, newest = self._events(updates, owners, backfill=offset is None)
        new_cursor = dict(cursor)
        if ids:
            new_cursor["offset"] = str(max(ids) + 1)
        if owners:
            new_cursor["connections"] = json.dumps(owners, sort_keys=True)
        previous = _aware(cursor.get("last_update_at"))
        if newest is not None:
            # Never backwards: a late edit of an old message must not age the gauge.
            newest = max(newest, previous) if previous else newest
            new_cursor["last_update_at"] = newest.isoformat()
        return FetchResult(tuple(events), new_cursor)

    def _events(
        self, updates: list[dict[str, Any]], owners: Mapping[str, str], *, backfill: bool
    ) -> tuple[list[Event], datetime | None]:
        events: list[Event] = []
        newest: datetime | None = None
        for update in updates:
            try:
                event = update_event(update, self.settings.account, owners, self.automated_bots)
                when = update_time(update)
            except TelegramPayloadError as err:
                raise ConnectorResponseError(
                    f"{self._where('getUpdates')}: update {update.get('update_id')}: {err}"
                ) from None
            if when is not None and (newest is None or when > newest):
                newest = when
            # backfill_since bounds only the first poll; later polls keep everything.
            too_old = backfill and event is not None and event.created_at < self._since
            if event is not None and not too_old:
                events.append(event)
        return events, newest

    def _unknown_connections(
        self, updates: list[dict[str, Any]], owners: Mapping[str, str]
    ) -> list[str]:
        unknown: set[str] = set()
        for update in updates:
            message = update.get("business_message", update.get("edited_business_message"))
            if not isinstance(message, dict):
                continue
            ident = _id(message.get("business_connection_id"))
            if ident and ident not in owners and ident not in unknown | self._unresolvable:
                unknown.add(ident)
        return sorted(unknown)

    async def _resolve(self, connection: str) -> str | None:
        """The owner of a connection first seen in a message, from getBusinessConnection."""
        try:
            result = await self._request(
                "getBusinessConnection", {"business_connection_id": connection}
            )
        except _Refused:
            # Deleted or unknown connection: classify its messages by the chat instead, and
            # do not block the batch (it would come back forever).
            self._unresolvable.add(connection)
            log.warning(
                "telegram/%s: a business connection could not be resolved; its messages are "
                "classified by chat id",
                self.settings.account,
                extra={
                    "event": "business_connection_unresolved",
                    "platform": "telegram",
                    "account": self.settings.account,
                },
            )
            return None
        if not isinstance(result, dict):
            raise ConnectorResponseError(
                f"{self._where('getBusinessConnection')}: result is not an object"
            )
        try:
            found = connection_owner({"business_connection": result})
        except TelegramPayloadError as err:
            raise ConnectorResponseError(f"{self._where('getBusinessConnection')}: {err}") from None
        return found[1] if found else None

    async def _get_updates(self, offset: int | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "limit": self.limit,
            "timeout": self.long_poll,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if offset is not None:
            params["offset"] = offset
        result = await self._request("getUpdates", params)
        if not isinstance(result, list):
            raise ConnectorResponseError(f"{self._where('getUpdates')}: result is not a list")
        return result

    def _where(self, method: str) -> str:
        return f"telegram/{self.settings.account} {method}"

    def _clean(self, text: str) -> str:
        # Telegram's descriptions are its own words, never message text; the token is
        # removed in case a proxy echoes the URL.
        return text.replace(self._token, "<token>")[:200]

    async def _request(self, method: str, params: Mapping[str, Any]) -> Any:
        """POST one method as JSON; return ``result`` or raise from the exception tree."""
        # The token is part of the path: never let the URL reach a message or a log line.
        reply = await send(
            self.session,
            "POST",
            f"{self.base_url}/bot{self._token}/{method}",
            where=self._where(method),
            timeout=self.settings.request_timeout + self.long_poll,
            json_body=params,
            url_holds_secret=True,
        )
        body = self._decode(reply)
        if body.get("ok") is True and reply.status < 400:
            if "result" not in body:
                raise ConnectorResponseError(f"{reply.where}: ok without a result")
            return body["result"]
        raise self._error(body, reply)

    def _decode(self, reply: Reply) -> dict[str, Any]:
        # Telegram's content type is not checked: its answers are JSON, whatever a proxy says.
        body, problem = reply.decode(accept=None)
        if isinstance(body, dict):
            return body
        status = reply.status
        if status == 429:
            raise self._flood_wait(
                f"{reply.where}: HTTP 429", reply.retry_after(DEFAULT_RETRY_AFTER)
            )
        if status >= 500 or status in (401, 403):
            raise refusal(status, f"{reply.where}: HTTP {status}", wait=0.0, words=REFUSALS)
        if problem is not None:
            raise ConnectorResponseError(f"{reply.where}: {problem} (HTTP {status})")
        raise ConnectorResponseError(f"{reply.where}: expected a JSON object (HTTP {status})")

    def _error(self, body: Mapping[str, Any], reply: Reply) -> Exception:
        status, where = reply.status, reply.where
        code = body.get("error_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else status
        description = body.get("description")
        said = self._clean(description) if isinstance(description, str) else ""
        label = f"{where}: Telegram error {code}" + (f" ({said})" if said else "")
        parameters = body.get("parameters")
        hint = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if code == 429 or status == 429 or hint is not None:
            return self._flood_wait(f"{label}: flood control", _retry_after(hint, said))
        if code in (401, 403):
            return ConnectorAuthError(f"{label}: the bot token was refused (revoked or wrong)")
        if code == 404:
            # Telegram answers 404 to a path whose token names no bot (a malformed token).
            return ConnectorAuthError(f"{label}: the bot token names no bot")
        if code == 409:
            # A ResponseError, not an AuthError: the token is fine and nothing needs replacing.
            # The coordinator keeps retrying with backoff, so polling resumes by itself as soon
            # as the operator removes the webhook or stops the other poller, while an AuthError
            # would pause the account until a restart, and a pause longer than 24 h loses
            # updates for good. The message says what to fix.
            return ConnectorResponseError(f"{label}: {_conflict_advice(said)}")
        if code >= 500:
            return ConnectorConnectionError(f"{label}: temporary platform failure")
        return _Refused(f"{label}: request refused")

    def _flood_wait(self, message: str, asked: float) -> ConnectorRateLimited:
        """The wait Telegram asked for, capped at MAX_RETRY_AFTER (logged once while capping)."""
        if asked <= MAX_RETRY_AFTER:
            self._capping = False
            return ConnectorRateLimited(message, asked)
        if not self._capping:
            log.warning(
                "telegram/%s: Telegram asked to wait %.0f s before polling again; waiting "
                "%.0f s instead, because it keeps undelivered updates for 24 h only",
                self.settings.account,
                asked,
                MAX_RETRY_AFTER,
                extra={
                    "event": "flood_wait_capped",
                    "platform": "telegram",
                    "account": self.settings.account,
                    "retry_after_s": MAX_RETRY_AFTER,
                },
            )
        self._capping = True
        return ConnectorRateLimited(
            f"{message} (asked {asked:.0f} s, capped at {MAX_RETRY_AFTER:.0f} s)", MAX_RETRY_AFTER
        )


class _Refused(ConnectorResponseError):
    """Telegram refused the request itself (HTTP 400): for a lookup, that means "not found"."""


def _conflict_advice(description: str) -> str:
    if "webhook" in description.lower():
        return (
            "a webhook is set for this bot, and Telegram refuses getUpdates while it is: "
            "call deleteWebhook, or receive this account through /hooks/telegram instead"
        )
    return (
        "another program is polling with the same bot token (two replywatch instances, or "
        "another bot framework): stop it; only one poller per token is allowed"
    )


def _retry_after(hint: object, description: str) -> float:
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        try:
            return float(hint)
        except OverflowError:
            return math.inf  # an integer past float's range: capped like any long wait
    found = _RETRY_IN_TEXT.search(description)
    return float(found.group(1)) if found else DEFAULT_RETRY_AFTER
