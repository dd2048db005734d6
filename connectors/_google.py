"""What the Google Business Profile and Google Play connectors share.

* :class:`GoogleClient` does all the I/O. The OAuth access token travels in an
  ``Authorization: Bearer`` header and appears in no message, repr or log line. Google's error
  envelope (``{"error": {"code", "message", "status", "errors": [{"reason"}]}}``,
  platform-apis.md 4 and 5) maps to the exception tree:

  - HTTP 429, ``RESOURCE_EXHAUSTED`` or a rate-limit reason: ``ConnectorRateLimited``, waiting
    ``Retry-After`` (seconds or an HTTP date) or else the client's ``throttle_wait``;
  - 401 ``UNAUTHENTICATED`` and 403 ``PERMISSION_DENIED``: ``ConnectorAuthError``;
  - 5xx, ``UNAVAILABLE``/``INTERNAL``/``DEADLINE_EXCEEDED``, timeouts and resets:
    ``ConnectorConnectionError``;
  - any other refusal, and bodies that are not a JSON object: ``ConnectorResponseError``.

* :func:`parse_rfc3339` reads Google's RFC 3339 times (``Z`` or an offset, 0-9 fractional
  digits; digits beyond microseconds are cut, which can only make a time earlier) and the ISO
  marks the connectors keep in their cursors.

* :class:`ReplyMemory` keeps the earliest time seen for each reply in the cursor: Google
  overwrites a reply's time when the owner edits it (metrics.md section 2, rule 8).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors import _http as http
from connectors.base import ConnectorSettings
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorResponseError

__all__ = ["GoogleClient", "GooglePage", "ReplyMemory", "current_token", "parse_rfc3339"]


def current_token(settings: ConnectorSettings, platform: str) -> str:
    """The access token as the secrets say now (a refreshed token file takes effect)."""
    token = settings.secrets.get("access_token")
    if not token:
        raise ConnectorAuthError(f"{platform}/{settings.account}: no access token")
    return token


RATE_STATUSES = frozenset({"RESOURCE_EXHAUSTED"})
# Older Google APIs signal quota with a 403 and one of these reasons instead of a 429.
RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)
REFUSALS = http.Refusals(
    rate_limited="quota exhausted",
    unauthorized="access token refused (expired, revoked or wrong)",
    forbidden="permission denied (scope, role or API access missing)",
)
TEMPORARY_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN"})
# Google's own messages are worth showing (they say which API is not enabled, for example),
# but only a bounded piece of them.
MESSAGE_LIMIT = 160

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def _meant_status(status: int, state: str, reasons: list[str]) -> int:
    """The HTTP status Google's error means: its status and reasons outrank the HTTP one."""
    if status == 429 or state in RATE_STATUSES or RATE_REASONS.intersection(reasons):
        return 429
    if status == 401 or state == "UNAUTHENTICATED":
        return 401
    if status == 403 or state == "PERMISSION_DENIED":
        return 403
    if status >= 500 or state in TEMPORARY_STATUSES:
        return 503
    return status


def parse_rfc3339(value: object) -> datetime:
    """An RFC 3339 time (``2014-10-02T15:01:23.045123456Z``) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"{type(value).__name__} is not a time")
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"time {value[:40]!r} is not RFC 3339")
    day, clock, fraction, offset = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}").astimezone(UTC)


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else ``default``."""
    return http.retry_after(headers, default, http_dates=True)


@dataclass(frozen=True, slots=True)
class GooglePage:
    """One decoded response: its JSON object and the server's clock (``Date``), if sent."""

    body: dict[str, Any]
    server_time: datetime | None


@dataclass
class GoogleClient:
    """Calls one Google REST API for one account."""

    base_url: str
    access_token: str = field(repr=False)
    session: aiohttp.ClientSession = field(repr=False)
    platform: str
    account: str
    throttle_wait: float
    request_timeout: float = 30.0

    def _where(self, path: str) -> str:
        return f"{self.platform}/{self.account} {path}"

    async def get(self, path: str, params: Mapping[str, str]) -> GooglePage:
        """GET ``path`` (relative to the base URL) and return its JSON object."""
        reply = await http.send(
            self.session,
            "GET",
            f"{self.base_url.rstrip('/')}/{path.lstrip('/')}",
            where=self._where(path),
            timeout=self.request_timeout,
            params=params,
            headers={"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"},
            allow_redirects=False,
        )
        if reply.status >= 300:
            # Judged on the status and Google's error envelope, if the body holds one.
            raise self._error(reply.status, reply.json_or_none(), reply.headers, reply.where)
        body = reply.json()
        if not isinstance(body, dict):
            raise ConnectorResponseError(
                f"{reply.where}: expected a JSON object (HTTP {reply.status})"
            )
        return GooglePage(body, http.http_date(reply.headers.get("Date")))

    def _error(
        self, status: int, body: object, headers: Mapping[str, str], where: str
    ) -> ConnectorError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        raw_state = error.get("status")
        state = raw_state if isinstance(raw_state, str) else ""
        reasons: list[str] = [
            item["reason"]
            for item in error.get("errors") or []
            if isinstance(item, dict) and isinstance(item.get("reason"), str)
        ]
        label = f"{where}: HTTP {status}" + (f" {state}" if state else "")
        if reasons:
            label += f" ({reasons[0]})"
        return http.refusal(
            _meant_status(status, state, reasons),
            label,
            wait=retry_after(headers, self.throttle_wait),
            words=REFUSALS,
            detail=self._message(error.get("message")),
        )

    def _message(self, message: object) -> str:
        if not isinstance(message, str) or not message:
            return ""
        # Google does not echo tokens, but a message must never carry one, whatever it says.
        text = " ".join(message.replace(self.access_token, "[token]").split())
        if len(text) > MESSAGE_LIMIT:
            text = text[: MESSAGE_LIMIT - 3] + "..."
        return f": {text}"


class ReplyMemory:
    """The earliest time seen for each reply, kept in the cursor (metrics.md section 2, rule 8).

    Google overwrites a reply's time when the owner edits it, so a reply read again after an
    edit carries a later time. The store keeps the earliest time per message id anyway; this
    memory makes the connector itself never report a reply later than the earliest time it
    returned before, whatever reads its results. It holds the ``limit`` most recent replies;
    an older reply that is edited falls back on the store's rule. What was overwritten before
    replywatch first saw a reply cannot be recovered by anyone.
    """

    def __init__(self, encoded: str | None, limit: int = 300) -> None:
        self.limit = limit
        self._times: dict[str, datetime] = {}
        if not encoded:
            return
        try:
            loaded = json.loads(encoded)
        except json.JSONDecodeError:
            return  # a damaged memory only costs the store's own earliest-time rule
        if not isinstance(loaded, dict):
            return
        for key, value in loaded.items():
            try:
                self._times[str(key)] = parse_rfc3339(value)
            except ValueError:
                continue

    def __len__(self) -> int:
        return len(self._times)

    def earliest(self, message_id: str, seen: datetime) -> datetime:
        """The time to report for a reply now seen at ``seen``, and remember it."""
        known = self._times.get(message_id)
        chosen = seen if known is None or seen < known else known
        self._times[message_id] = chosen
        return chosen

    def encode(self) -> str:
        """The memory as a cursor value: a JSON object of the most recent replies."""
        recent = sorted(self._times.items(), key=lambda item: (item[1], item[0]), reverse=True)
        return json.dumps(
            {key: at.isoformat() for key, at in recent[: self.limit]},
            separators=(",", ":"),
            sort_keys=True,
        )
