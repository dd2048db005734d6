"""Telegram webhook deliveries: the secret header, and one Update turned into events.

With ``setWebhook(url, secret_token=...)`` Telegram POSTs every Update as one JSON object and
sends the secret in ``X-Telegram-Bot-Api-Secret-Token`` (a plain value, no HMAC:
platform-apis.md 8). The events are the poller's (:mod:`connectors.telegram`): same threads,
message ids and roles, so a message seen both ways is stored once.

Telegram refuses ``getUpdates`` while a webhook is set, so an account is either polled or
receives webhooks, never both. The owner map the monitor passes comes from
:func:`connection_owners` on earlier deliveries (or the poller's cursor key ``connections``);
a message of a connection not in it is classified by its chat, whose id is the customer's.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping

from connectors.base import Event
from connectors.telegram import (
    TelegramPayloadError,
    connection_owner,
    update_event,
    update_id,
)

__all__ = [
    "SECRET_HEADER",
    "TelegramPayloadError",
    "connection_owners",
    "parse_update",
    "verify_secret",
]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def verify_secret(header_value: str | None, expected: str) -> bool:
    """Compare the secret header with the configured secret in constant time."""
    if not header_value or not expected:
        return False
    # Bytes, not str: a header may hold any bytes (undecodable ones arrive as surrogates).
    given = header_value.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, expected.encode("utf-8", "surrogatepass"))


def _update(body: bytes) -> dict[str, object]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TelegramPayloadError("body is not JSON") from None
    except RecursionError:
        raise TelegramPayloadError("body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise TelegramPayloadError("body is not a JSON object")
    update_id(payload)
    return payload


def parse_update(
    body: bytes, account: str, owners: Mapping[str, str], automated_bots: Iterable[str] = ()
) -> list[Event]:
    """The events of one delivery (none for connection changes, deletions, other updates).

    Raises :class:`TelegramPayloadError` (a ``ValueError``) for a body that is not an Update;
    the message never quotes the body.
    """
    update = _update(body)
    connection_owner(update)  # a malformed connection change is refused like a message
    event = update_event(update, account, owners, automated_bots)
    return [] if event is None else [event]


def connection_owners(body: bytes) -> dict[str, str]:
    """``{connection id: owner user id}`` from a ``business_connection`` delivery, else empty."""
    found = connection_owner(_update(body))
    return {} if found is None else {found[0]: found[1]}
