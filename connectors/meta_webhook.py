"""Meta webhook deliveries: the handshake, the signature, and payloads turned into events.

Handles object ``page`` (Messenger ``messaging[]`` and ``standby[]``: messages and
``message_echoes``; ``changes[]`` field ``feed`` comments) and object ``instagram``
(``messaging[]`` DMs and echoes; ``changes[]`` fields ``comments`` and ``live_comments``).
Ids arrive as JSON strings or numbers; message timestamps are epoch milliseconds, comment
times epoch seconds. Threads match the poller's (see ``connectors._meta``): ``dm/<customer>``
and ``<top comment>/<customer>``.

What is deliberately not turned into events: deliveries, reads, edits, deletions (counted as
ignored), entries for accounts that are not configured, and the business's own comment
replies: which customer such a reply answers depends on the rest of the tree, which a
delivery does not carry, so the next poll stores them with the right thread. Customer
comments are stored at once, so their waits open without delay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors._graph import parse_graph_time
from connectors.base import Event, comment_thread, dm_thread

__all__ = [
    "WebhookBatch",
    "WebhookPayloadError",
    "parse_meta_webhook",
    "verify_challenge",
    "verify_signature",
]

_OBJECTS = {"page": "facebook", "instagram": "instagram"}
_COMMENT_FIELDS = {"feed", "comments", "live_comments"}


class WebhookPayloadError(ValueError):
    """The body is not a Meta webhook payload; the message never quotes the body."""


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """The events a delivery carried and how many items were deliberately ignored."""

    events: tuple[Event, ...]
    ignored: int


def _raw(text: str) -> bytes:
    # Header values hold whatever bytes a client sent (aiohttp keeps undecodable ones as
    # surrogates): compare bytes, which never raises, not str, which refuses non-ASCII.
    return text.encode("utf-8", "surrogatepass")


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Check ``X-Hub-Signature-256: sha256=<hex>`` over the exact received bytes."""
    if not header or not app_secret:
        return False
    scheme, _, received = header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), _raw(received.strip().lower()))


def verify_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when mode and verify token are right, else None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    offered = params.get("hub.verify_token", "")
    if not hmac.compare_digest(_raw(offered), _raw(verify_token)):
        return None
    challenge = params.get("hub.challenge")
    # Meta's challenge is a number; anything else is not echoed into a response.
    if not challenge or not (challenge.isascii() and challenge.isprintable()):
        return None
    return challenge


def _id(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def parse_meta_webhook(body: bytes, accounts: Mapping[tuple[str, str], str]) -> WebhookBatch:
    """Turn one delivery into events for the configured accounts.

    ``accounts`` maps ``(platform, page id or Instagram account id)`` to the account name.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookPayloadError("body is not JSON") from None
    except RecursionError:
        raise WebhookPayloadError("body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body is not a JSON object")
    platform = _OBJECTS.get(str(payload.get("object")))
    if platform is None:
        raise WebhookPayloadError("unknown or missing 'object'")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise WebhookPayloadError("'entry' is missing or not a list")
    events: list[Event] = []
    ignored = 0
    for entry in entries:
        if not isinstance(entry, dict):
            raise WebhookPayloadError("an entry is not an object")
        owner = _id(entry.get("id"))
        account = accounts.get((platform, owner)) if owner else None
        items = _entry_items(entry)
        if account is None or owner is None:
            ignored += len(items) or 1
            continue
        for kind, item in items:
            event = None
            if kind == "messaging":
                event = _message_event(platform, account, owner, item)
            elif kind == "comment":
                event = _comment_event(platform, account, owner, item)
            if event is None:
                ignored += 1
            else:
                events.append(event)
    return WebhookBatch(tuple(events), ignored)


def _entry_items(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    items: list[tuple[str, dict[str, Any]]] = []
    for key in ("messaging", "standby"):
        value = entry.get(key, [])
        if not isinstance(value, list):
            raise WebhookPayloadError(f"'{key}' is not a list")
        items += [("messaging", item) for item in value if isinstance(item, dict)]
    changes = entry.get("changes", [])
    if not isinstance(changes, list):
        raise WebhookPayloadError("'changes' is not a list")
    for change in changes:
        if isinstance(change, dict) and change.get("field") in _COMMENT_FIELDS:
            value = change.get("value")
            if not isinstance(value, dict):
                raise WebhookPayloadError("a change has no value object")
            # Instagram comment values carry no time of their own; the entry's time is it.
            items.append(("comment", {"_entry_time": entry.get("time"), **value}))
        else:
            items.append(("other", {}))
    return items


def _party(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return _id(value.get("id")) if isinstance(value, dict) else None


def _message_event(platform: str, account: str, owner: str, item: dict[str, Any]) -> Event | None:
    message = item.get("message")
    if not isinstance(message, dict) or message.get("is_deleted"):
        return None  # delivery and read receipts, edits, reactions, deletions
    mid = _id(message.get("mid"))
    sender, recipient = _party(item, "sender"), _party(item, "recipient")
    if mid is None or sender is None or recipient is None:
        raise WebhookPayloadError("a message lacks its mid, sender or recipient")
    business = bool(message.get("is_echo")) or sender == owner
    # The customer is whoever is not the business (some echo samples do not swap the two).
    customer = recipient if sender == owner else sender
    try:
        created = parse_graph_time(item.get("timestamp"))
    except ValueError:
        raise WebhookPayloadError("a message has no readable timestamp") from None
    return Event(
        platform=platform,
        account=account,
        channel="dm",
        thread_id=dm_thread(customer),
        message_id=mid,
        author_role="business" if business else "customer",
        created_at=created,
    )


def _comment_event(platform: str, account: str, owner: str, value: dict[str, Any]) -> Event | None:
    if platform == "facebook" and (value.get("item") != "comment" or value.get("verb") != "add"):
        return None  # posts, reactions, edits and removals
    ident = _id(value.get("comment_id")) or _id(value.get("id"))
    author = value.get("from")
    author_id = _id(author.get("id")) if isinstance(author, dict) else _id(value.get("sender_id"))
    if ident is None:
        raise WebhookPayloadError("a comment has no id")
    if author_id == owner:
        return None  # the business's reply: stored by the next poll with its thread
    parent = _id(value.get("parent_id"))
    post = _id(value.get("post_id"))
    # Facebook marks top-level comments with parent_id == post_id; Instagram omits it.
    top = parent if parent and parent != post else ident
    when = value.get("created_time", value.get("timestamp", value.get("_entry_time")))
    try:
        created = parse_graph_time(when)
    except ValueError:
        raise WebhookPayloadError("a comment has no readable time") from None
    return Event(
        platform=platform,
        account=account,
        channel="comment",
        thread_id=comment_thread(top, author_id or f"anonymous-{ident}"),
        message_id=ident,
        author_role="customer",
        created_at=created,
    )
