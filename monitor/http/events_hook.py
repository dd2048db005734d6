"""``POST /hooks/events``: normalized events from channels replywatch has no connector for.

A WhatsApp provider or a helpdesk posts the import CSV's fields as JSON, with a bearer token
from the config. Validation is the import's, plus: only accounts the token may write (by
default those with ``source = "push"``; a token's ``accounts`` list may name polled ones), no
unknown fields, at most ``max_events`` per request. The answer has one result per event, so
the sender knows exactly which were refused and why; valid events are stored even when others
in the same request are not.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from connectors.base import Event
from monitor.config.loading import Config
from monitor.core.intake_bounds import check_identifier
from monitor.export.metrics import Metrics
from monitor.http.webhooks import (
    BodyRefused,
    delivery_outcome,
    read_limited,
    refusal_fields,
    store_failure_fields,
)
from monitor.intake.csv_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RowParser
from monitor.store.engine import store_failures

__all__ = ["FIELDS", "EventToken", "EventsHook", "parse_event", "push_accounts"]

log = logging.getLogger("monitor.webhooks")
FIELDS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "thread_url")
_HEADER = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]


def parse_event(
    item: object, parser: RowParser, config: Config, allowed: Collection[str] | None = None
) -> Event:
    """One JSON object to an Event, or ValueError saying what is wrong.

    ``allowed``: the accounts the sender's token may write (None: any configured account).
    """
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
    if account and allowed is not None and account not in allowed:
        raise ValueError(
            f"this token may not write account {account!r} (a token writes the push accounts, "
            "or those its accounts list names)"
        )
    event = parser(row)
    url = item.get("thread_url")
    if url is not None:
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
            raise ValueError("thread_url must be an http(s) URL")
        if len(url) > 1024:
            raise ValueError("thread_url is longer than 1024 characters")
        event = replace(event, thread_url=check_identifier("thread_url", url))
    return event


def push_accounts(config: Config) -> frozenset[str]:
    """The accounts a token without an accounts list may write: those not polled."""
    return frozenset(a.name for a in config.accounts.values() if a.source == "push")


@dataclass(frozen=True)
class EventToken:
    """A bearer token and the accounts it may write (None: every ``source = "push"`` one)."""

    secret: str = field(repr=False)
    accounts: frozenset[str] | None = None


@dataclass
class EventsHook:
    """The generic intake endpoint.

    ``token`` (may be empty) writes every push account; ``tokens`` are further tokens, each
    with its own accounts.
    """

    token: str
    config: Config
    store: Callable[[Sequence[Event]], Awaitable[int]]
    metrics: Metrics
    max_body_bytes: int = 1_048_576
    max_events: int = 1000
    platform: str = "events"
    tokens: Sequence[EventToken] = ()
    body_timeout: float = 30.0

    def __post_init__(self) -> None:
        every = [EventToken(self.token)] if self.token else []
        push = push_accounts(self.config)
        # (secret as bytes, the accounts it may write)
        self._tokens = [
            (t.secret.encode("utf-8", "surrogatepass"), push if t.accounts is None else t.accounts)
            for t in [*every, *self.tokens]
            if t.secret
        ]

    def _scope(self, header: str) -> frozenset[str] | None:
        """The accounts the request's bearer token may write, or None when it is not one."""
        given = header[7:] if header.startswith("Bearer ") else ""
        # Bytes: a header may hold any bytes; every token is compared, in constant time each.
        offered = given.encode("utf-8", "surrogatepass")
        found = None
        for secret, accounts in self._tokens:
            if hmac.compare_digest(offered, secret) and found is None:
                found = accounts
        return found if given else None

    def routes(self) -> list[web.RouteDef]:
        """The one route."""
        return [web.post("/hooks/events", self.deliver)]

    async def deliver(self, request: web.Request) -> web.Response:
        """Authenticate, validate each event, store the valid ones, answer per event."""
        allowed = self._scope(request.headers.get("Authorization", ""))
        if allowed is None:
            return self._refuse(
                "bad_signature",
                401,
                "missing or wrong bearer token",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            body = await read_limited(request, self.max_body_bytes, self.body_timeout)
        except BodyRefused as refused:
            return self._refuse(refused.outcome, refused.status, refused.reason)
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._refuse("malformed", 400, "body is not JSON")
        except RecursionError:
            return self._refuse("malformed", 400, "body is nested too deeply")
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
                event = parse_event(item, parser, self.config, allowed)
            except ValueError as err:
                results.append({"index": index, "status": "rejected", "error": str(err)})
                continue
            valid.append(event)
            results.append({"index": index, "status": "accepted"})
        stored = 0
        if valid:
            try:
                stored = await self.store(valid)
            except store_failures():
                log.exception(
                    "events hook: could not store %d event(s)",
                    len(valid),
                    extra=store_failure_fields(self.platform, len(valid)),
                )
                self.metrics.webhooks.labels(self.platform, "error").inc()
                return web.json_response({"error": "store unavailable, send again"}, status=503)
        rejected = len(items) - len(valid)
        self.metrics.webhooks.labels(self.platform, delivery_outcome(len(valid), rejected)).inc()
        return web.json_response(
            {"accepted": len(valid), "stored": stored, "rejected": rejected, "results": results}
        )

    def _refuse(
        self, outcome: str, status: int, reason: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        log.warning(
            "events hook refused (%d): %s",
            status,
            reason,
            extra=refusal_fields(self.platform, outcome, status),
        )
        return web.json_response({"error": reason}, status=status, headers=headers)
