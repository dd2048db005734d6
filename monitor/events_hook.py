"""``POST /hooks/events``: normalized events from channels replywatch has no connector for.

A WhatsApp provider or a helpdesk posts the import CSV's fields as JSON, with a bearer token
from the config. Validation is the import's, plus: only configured accounts, no unknown
fields, at most ``max_events`` per request. The answer has one result per event, so the sender
knows exactly which were refused and why; valid events are stored even when others in the
same request are not.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from connectors.base import Event
from monitor.config import Config
from monitor.csv_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RowParser
from monitor.metrics import Metrics
from monitor.webhooks import BodyTooLarge, read_limited

__all__ = ["FIELDS", "EventsHook", "parse_event"]

log = logging.getLogger("monitor.webhooks")
FIELDS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "thread_url")
_HEADER = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]


def parse_event(item: object, parser: RowParser, config: Config) -> Event:
    """One JSON object to an Event, or ValueError saying what is wrong."""
    if not isinstance(item, dict):
        raise ValueError("an event must be a JSON object")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)})")
    row = []
    for name in _HEADER:
        value = item.get(name)
        if value is None:
            row.append("")
        elif name == "rating" and isinstance(value, int) and not isinstance(value, bool):
            row.append(str(value))
        elif isinstance(value, str):
            row.append(value)
        else:
            raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    account = row[1].strip()
    if account and account not in config.accounts:
        raise ValueError(f'account {account!r} is not configured (add it with source = "push")')
    event = parser(row)
    url = item.get("thread_url")
    if url is not None:
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
            raise ValueError("thread_url must be an http(s) URL")
        if len(url) > 1024:
            raise ValueError("thread_url is longer than 1024 characters")
        event = replace(event, thread_url=url)
    return event


@dataclass
class EventsHook:
    """The generic intake endpoint."""

    token: str
    config: Config
    store: Callable[[Sequence[Event]], Awaitable[int]]
    metrics: Metrics
    max_body_bytes: int = 1_048_576
    max_events: int = 1000
    platform: str = "events"

    def routes(self) -> list[web.RouteDef]:
        """The one route."""
        return [web.post("/hooks/events", self.deliver)]

    async def deliver(self, request: web.Request) -> web.Response:
        """Authenticate, validate each event, store the valid ones, answer per event."""
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._refuse(
                "bad_signature",
                401,
                "missing or wrong bearer token",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            body = await read_limited(request, self.max_body_bytes)
        except BodyTooLarge:
            return self._refuse("too_large", 413, f"body over {self.max_body_bytes} bytes")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._refuse("malformed", 400, "body is not JSON")
        items = document.get("events") if isinstance(document, dict) else document
        if not isinstance(items, list):
            return self._refuse("malformed", 400, 'expected {"events": [...]} or a JSON array')
        if len(items) > self.max_events:
            return self._refuse("too_large", 413, f"more than {self.max_events} events")
        parser = RowParser(_HEADER, self.config, None)
        results: list[dict[str, Any]] = []
        valid: list[Event] = []
        for index, item in enumerate(items):
            try:
                event = parse_event(item, parser, self.config)
            except ValueError as err:
                results.append({"index": index, "status": "rejected", "error": str(err)})
                continue
            valid.append(event)
            results.append({"index": index, "status": "accepted"})
        stored = 0
        if valid:
            try:
                stored = await self.store(valid)
            except Exception:
                log.exception("events hook: could not store %d event(s)", len(valid))
                self.metrics.webhooks.labels(self.platform, "error").inc()
                return web.json_response({"error": "store unavailable, send again"}, status=503)
        rejected = len(items) - len(valid)
        outcome = "accepted" if valid else ("malformed" if rejected else "ignored")
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        return web.json_response(
            {"accepted": len(valid), "stored": stored, "rejected": rejected, "results": results}
        )

    def _refuse(
        self, outcome: str, status: int, reason: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        log.warning("events hook refused (%d): %s", status, reason)
        return web.json_response({"error": reason}, status=status, headers=headers)
