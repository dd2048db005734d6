"""A small Meta Graph API client shared by the Facebook and Instagram connectors.

One private ``_request`` does all I/O and turns every failure into the exception tree of
``connectors.errors`` (platform-apis.md 1.5-1.7): throttling codes and HTTP 429 become
``ConnectorRateLimited`` with the time to wait, code 190 and permission codes become
``ConnectorAuthError``, codes 1 and 2, 5xx, timeouts and resets become
``ConnectorConnectionError``, and anything unparseable becomes ``ConnectorResponseError``.
The access token travels as the ``access_token`` query parameter and appears in no message,
repr or log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from connectors._http import Refusals, Reply, refusal, retry_after, send
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)

__all__ = ["GraphClient", "epoch_time", "parse_graph_time", "usage_fraction"]

log = logging.getLogger("connectors.graph")

# Throttling codes (platform-apis.md 1.5): app, user, page, custom, BUC Pages/IG/Messenger.
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002, 80006})
# Seconds to wait when the platform gives no estimate: app-level limits reset within the hour.
THROTTLE_DEFAULTS = {4: 60.0}
DEFAULT_THROTTLE_WAIT = 300.0
AUTH_SUBCODES = {
    458: "app not installed",
    459: "user checkpointed",
    460: "password changed",
    463: "token expired",
    464: "user not confirmed",
    467: "token invalid (logged out)",
}
USAGE_HEADERS = ("X-App-Usage", "X-Business-Use-Case-Usage", "X-Page-Usage")
# A 429 without Graph's error object (a gateway's) and without Retry-After: a minute.
BARE_THROTTLE_WAIT = 60.0
BARE_REFUSALS = Refusals(
    rate_limited="throttled",
    unauthorized="access token refused",
    refused="refused without a Graph error object",
)
# Graph answers JSON, some endpoints as text/javascript.
GRAPH_TYPES = ("json", "javascript")
# Consecutive empty pages with a next link followed before paging counts as stuck.
MAX_EMPTY_PAGES = 10


def epoch_time(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime; ValueError (not OSError) when out of range."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # Found by fuzzing: 10**20 ms made the webhook answer 500 (OSError: value too large).
        raise ValueError(f"time {seconds!r} is out of range") from None


def parse_graph_time(value: object) -> datetime:
    """Parse Graph times: ISO 8601 with ``+0000``, or epoch seconds (or milliseconds)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        seconds = float(value) / 1000 if value > 1e11 else float(value)
        return epoch_time(seconds)
    if isinstance(value, str) and value:
        if value.isdigit():
            return parse_graph_time(int(value))
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"time {value!r} has no offset")
        return parsed.astimezone(UTC)
    raise ValueError(f"{type(value).__name__} is not a time")


def usage_fraction(headers: Mapping[str, str]) -> float | None:
    """The highest usage percentage in Meta's usage headers, as 0-1 (None when absent)."""
    highest: float | None = None
    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            continue
        for item in _usage_items(parsed):
            for key in ("call_count", "total_cputime", "total_time"):
                value = item.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    highest = max(highest or 0.0, float(value) / 100)
    return highest


def _usage_items(parsed: object) -> list[dict[str, Any]]:
    # X-App-Usage is one object; the BUC header maps object ids to lists of objects.
    if isinstance(parsed, dict) and "call_count" in parsed:
        return [parsed]
    items: list[dict[str, Any]] = []
    if isinstance(parsed, dict):
        for value in parsed.values():
            if isinstance(value, list):
                items += [v for v in value if isinstance(v, dict)]
    return items


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return None
    minutes: list[float] = []
    for item in _usage_items(parsed):
        value = item.get("estimated_time_to_regain_access")
        if isinstance(value, int | float) and not isinstance(value, bool):
            minutes.append(float(value))
    return max(minutes) * 60.0 if minutes else None


@dataclass
class GraphClient:
    """Calls the Graph API for one account; remembers the highest usage it saw."""

    base_url: str
    version: str
    access_token: str = field(repr=False)
    session: aiohttp.ClientSession = field(repr=False)
    platform: str
    account: str
    request_timeout: float = 30.0
    quota_used: float | None = None

    def _where(self, path: str) -> str:
        return f"{self.platform}/{self.account} {path}"

    def _url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{self.version}/{path.lstrip('/')}"

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET one Graph object or edge page."""
        return await self._request(self._url(path), dict(params), path)

    async def pages(
        self, path: str, params: Mapping[str, str]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's ``data`` list, following ``paging.next`` until it ends."""
        url, query = self._url(path), dict(params)
        empty = 0
        while True:
            body = await self._request(url, query, path)
            data = body.get("data")
            if not isinstance(data, list):
                raise ConnectorResponseError(f"{self._where(path)}: page without a data list")
            # Empty pages with a next link are followed, but a cursor that keeps returning
            # them would hold the poll forever (found while building the soak's faults): give
            # up, so the poll fails, backs off and starts again from our own high-water mark.
            empty = 0 if data else empty + 1
            if empty > MAX_EMPTY_PAGES:
                raise ConnectorResponseError(
                    f"{self._where(path)}: {empty} empty pages in a row; paging does not advance"
                )
            yield [item for item in data if isinstance(item, dict)]
            following = self._next(body)
            if following is None:
                return
            url, query = following

    def _next(self, body: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
        paging = body.get("paging")
        if not isinstance(paging, dict):
            return None
        link = paging.get("next")
        if not isinstance(link, str) or not link:
            return None
        parts = urlsplit(link)
        ours = urlsplit(self.base_url)
        if (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
            # Never send the token to a host we were not configured for.
            raise ConnectorResponseError(
                f"{self.platform}/{self.account}: paging link points at another host"
            )
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.pop("access_token", None)
        return f"{parts.scheme}://{parts.netloc}{parts.path}", query

    async def _request(self, url: str, params: dict[str, str], path: str) -> dict[str, Any]:
        reply = await send(
            self.session,
            "GET",
            url,
            where=self._where(path),
            timeout=self.request_timeout,
            params={**params, "access_token": self.access_token},
        )
        usage = usage_fraction(reply.headers)
        if usage is not None:
            self.quota_used = max(self.quota_used or 0.0, usage)
        body, problem = reply.decode(GRAPH_TYPES)
        if problem is not None:
            # Gateways answer 5xx and some 429s with HTML: the status says enough.
            if reply.status >= 500 or reply.status == 429:
                raise self._bare_refusal(reply)
            raise ConnectorResponseError(f"{reply.where}: {problem} (HTTP {reply.status})")
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise self._error(reply.status, error, reply.headers, reply.where)
        if reply.status >= 400 or error is not None:
            raise self._bare_refusal(reply)
        if not isinstance(body, dict):
            raise ConnectorResponseError(f"{reply.where}: expected a JSON object")
        return body

    def _bare_refusal(self, reply: Reply) -> ConnectorError:
        """A refusal without Graph's error object: judged on the HTTP status."""
        return refusal(
            reply.status,
            f"{reply.where}: HTTP {reply.status}",
            wait=reply.retry_after(BARE_THROTTLE_WAIT),
            words=BARE_REFUSALS,
        )

    def _error(
        self, status: int, error: dict[str, Any], headers: Mapping[str, str], where: str
    ) -> ConnectorError:
        code = _int(error.get("code"))
        subcode = _int(error.get("error_subcode"))
        kind = str(error.get("type") or "error")
        label = f"{where}: Graph error {code}" + (f"/{subcode}" if subcode else "") + f" ({kind})"
        if code in THROTTLE_CODES or status == 429:
            wait = _regain_seconds(headers)
            if wait is None or wait <= 0:
                wait = retry_after(headers, THROTTLE_DEFAULTS.get(code or 0, DEFAULT_THROTTLE_WAIT))
            return ConnectorRateLimited(f"{label}: throttled", wait)
        if code == 190:
            meaning = AUTH_SUBCODES.get(subcode or 0, "access token invalid")
            return ConnectorAuthError(f"{label}: {meaning}")
        if code in (10, 102) or (code is not None and 200 <= code <= 299):
            return ConnectorAuthError(f"{label}: permission missing")
        if code in (1, 2) or status >= 500:
            return ConnectorConnectionError(f"{label}: temporary platform failure")
        return ConnectorResponseError(f"{label}: request refused")


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
