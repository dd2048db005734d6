"""Webhook intake over HTTP: size limit, signature, parse, store; every outcome counted.

Bad input never produces a 500: an unsigned or wrongly signed body is 403, an oversized one
413, a body that does not arrive in time 408, one in an unsupported Content-Encoding 415, a
malformed one 400. Items the store cannot hold (an id with half an emoji, a time outside the
plausibility window) are skipped alone: the rest of the delivery is stored and the answer is
200. A store that cannot take the events answers 503 so the platform delivers again later
(nothing is lost). Logs name the platform and outcome, never the body or a header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from connectors.base import Event
from connectors.meta_webhook import (
    WebhookPayloadError,
    parse_meta_webhook,
    verify_challenge,
    verify_signature,
)
from connectors.telegram_webhook import (
    SECRET_HEADER,
    TelegramPayloadError,
    connection_owners,
    parse_update,
    verify_secret,
)
from monitor.core.intake_bounds import IntakeBounds
from monitor.export.metrics import Metrics
from monitor.store.engine import store_failures
from monitor.store.intake_screen import describe, screen_events

__all__ = [
    "BodyRefused",
    "BodyTooLarge",
    "MetaWebhook",
    "TelegramWebhook",
    "delivery_outcome",
    "read_limited",
    "refusal_fields",
    "screen_delivery",
    "store_failure_fields",
]

log = logging.getLogger("monitor.webhooks")
# How the log names each platform hook.
_META = "meta webhook"
_TELEGRAM = "telegram webhook"

StoreEvents = Callable[[Sequence[Event]], Awaitable[int]]
# What aiohttp decodes itself; anything else would reach the parsers still encoded.
_ENCODINGS = {"", "identity", "gzip", "deflate"}
_BODY_TIMEOUT = 30.0


class BodyRefused(Exception):
    """The body cannot be taken: ``outcome`` for the metric, ``status`` and ``reason`` to answer."""

    def __init__(self, outcome: str, status: int, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.status = status
        self.reason = reason


class BodyTooLarge(BodyRefused):
    """The request body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__("too_large", 413, f"body over {limit} bytes")


async def read_limited(request: web.Request, limit: int, timeout: float = _BODY_TIMEOUT) -> bytes:
    """Read the raw body: at most ``limit`` bytes (never buffered beyond), within ``timeout``.

    Raises :class:`BodyRefused` for a body too large, too slow, in an encoding aiohttp does not
    decode, or that cannot be decoded (``Content-Encoding: gzip`` over bytes that are not).
    """
    # The header's value is never quoted back: it is whatever the client sent.
    if request.headers.get("Content-Encoding", "").strip().lower() not in _ENCODINGS:
        raise BodyRefused("malformed", 415, "unsupported Content-Encoding (use gzip or none)")
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(65536):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused("timeout", 408, f"body not received within {timeout:g} s") from None
    except (web.RequestPayloadError, ConnectionError) as err:
        reason = f"body could not be read ({type(err).__name__}; is Content-Encoding right?)"
        raise BodyRefused("malformed", 400, reason) from None
    return b"".join(chunks)


def screen_delivery(
    hook: str, events: Sequence[Event], bounds: IntakeBounds, now: datetime, metrics: Metrics
) -> tuple[list[Event], int]:
    """The events the store can hold; the others are counted and logged in one line."""
    kept, refused = screen_events(events, bounds, now)
    if refused:
        for refusal in refused:
            metrics.events_rejected.labels(refusal.platform).inc()
        log.warning(
            "%s: skipped %d item(s) the store cannot hold (the rest is stored): %s",
            hook,
            len(refused),
            describe(refused),
            extra={"event": "webhook_items_skipped", "hook": hook, "count": len(refused)},
        )
    return kept, len(refused)


def refusal_fields(hook: str, outcome: str, status: int) -> dict[str, object]:
    """The log fields of a refused delivery (``webhook_refused``)."""
    return {"event": "webhook_refused", "hook": hook, "outcome": outcome, "status": status}


def store_failure_fields(hook: str, count: int) -> dict[str, object]:
    """The log fields of a delivery the store could not take (``webhook_store_failed``)."""
    return {"event": "webhook_store_failed", "hook": hook, "count": count}


def refuse(
    metrics: Metrics, hook: str, platform: str, outcome: str, status: int, reason: str
) -> web.Response:
    """Count and log a refused delivery, and answer it with the reason in plain text."""
    metrics.webhooks.labels(platform, outcome).inc()
    log.warning(
        "%s delivery refused (%d): %s",
        hook,
        status,
        reason,
        extra=refusal_fields(platform, outcome, status),
    )
    return web.Response(status=status, text=f"{reason}\n")


async def store_delivery(
    store: StoreEvents,
    events: Sequence[Event],
    skipped: int,
    *,
    hook: str,
    platform: str,
    metrics: Metrics,
) -> web.Response:
    """Store a platform's screened delivery: 503 when the store cannot take it, else 200.

    The platforms deliver a non-2xx delivery again (Meta for hours, Telegram for a while), so
    nothing is lost while the store is away. 200 even when items were skipped: delivering them
    again would not make them storable.
    """
    if events:
        try:
            await store(events)
        except store_failures():
            log.exception(
                "%s: could not store %d event(s)",
                hook,
                len(events),
                extra=store_failure_fields(platform, len(events)),
            )
            metrics.webhooks.labels(platform, "error").inc()
            return web.Response(status=503, text="store unavailable, deliver again\n")
    metrics.webhooks.labels(platform, delivery_outcome(len(events), skipped)).inc()
    return web.Response(text="ok\n")


def delivery_outcome(kept: int, refused: int) -> str:
    """The outcome label of a delivery that was read: accepted, partial, malformed or ignored."""
    if kept:
        return "partial" if refused else "accepted"
    return "malformed" if refused else "ignored"


@dataclass
class MetaWebhook:
    """``GET``/``POST /hooks/meta`` for Messenger, Instagram and Page feed webhooks."""

    app_secret: str
    verify_token: str
    accounts: Mapping[tuple[str, str], str]
    store: StoreEvents
    metrics: Metrics
    max_body_bytes: int = 1_048_576
    platform: str = "meta"
    bounds: IntakeBounds = field(default_factory=IntakeBounds)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    body_timeout: float = _BODY_TIMEOUT

    def routes(self) -> list[web.RouteDef]:
        """The two routes of this webhook."""
        return [
            web.get("/hooks/meta", self.handshake),
            web.post("/hooks/meta", self.deliver),
        ]

    async def handshake(self, request: web.Request) -> web.Response:
        """Answer Meta's subscription check with the challenge, or refuse it."""
        challenge = verify_challenge(request.query, self.verify_token)
        if challenge is None:
            log.warning(
                "meta webhook handshake refused: wrong or missing verify token",
                extra={"event": "webhook_handshake_refused", "hook": self.platform},
            )
            return web.Response(status=403, text="verify token mismatch\n")
        return web.Response(text=challenge)

    async def deliver(self, request: web.Request) -> web.Response:
        """Verify, parse and store one delivery."""
        try:
            body = await read_limited(request, self.max_body_bytes, self.body_timeout)
        except BodyRefused as refused:
            return self._refuse(refused.outcome, refused.status, refused.reason)
        if not verify_signature(self.app_secret, body, request.headers.get("X-Hub-Signature-256")):
            return self._refuse("bad_signature", 403, "signature mismatch")
        try:
            batch = parse_meta_webhook(body, self.accounts)
        except WebhookPayloadError as err:
            return self._refuse("malformed", 400, str(err))
        events, skipped = screen_delivery(
            _META, batch.events, self.bounds, self.clock(), self.metrics
        )
        return await store_delivery(
            self.store, events, skipped, hook=_META, platform=self.platform, metrics=self.metrics
        )

    def _refuse(self, outcome: str, status: int, reason: str) -> web.Response:
        return refuse(self.metrics, _META, self.platform, outcome, status, reason)


# The one answer for a wrong secret and for an account that does not exist, so the names of
# the configured accounts cannot be found by trying.
_TELEGRAM_REFUSAL = "secret token mismatch"


@dataclass
class TelegramWebhook:
    """``POST /hooks/telegram/{account}``: one Update per delivery, checked by secret header."""

    secret: str
    # account name -> business connection id -> owner user id (shared with the store)
    owners: dict[str, dict[str, str]]
    automated_bots: Mapping[str, Sequence[str]]
    store: StoreEvents
    remember_owners: Callable[[str, Mapping[str, str]], Awaitable[None]]
    metrics: Metrics
    max_body_bytes: int = 1_048_576
    platform: str = "telegram"
    bounds: IntakeBounds = field(default_factory=IntakeBounds)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    body_timeout: float = _BODY_TIMEOUT

    def routes(self) -> list[web.RouteDef]:
        """The one route."""
        return [web.post("/hooks/telegram/{account}", self.deliver)]

    async def deliver(self, request: web.Request) -> web.Response:
        """Check the secret, then the account, parse the Update, store its events."""
        if not verify_secret(request.headers.get(SECRET_HEADER), self.secret):
            return self._refuse("bad_signature", 403, _TELEGRAM_REFUSAL)
        account = request.match_info["account"]
        if account not in self.owners:
            # Only a sender with the secret gets here: Telegram, with a wrong URL.
            log.warning(
                "telegram webhook: the secret is right but no telegram account is named like "
                "the URL's last part; check the URL given to setWebhook",
                extra={"event": "webhook_account_unknown", "hook": self.platform},
            )
            self.metrics.webhooks.labels(self.platform, "ignored").inc()
            return web.Response(status=403, text=f"{_TELEGRAM_REFUSAL}\n")
        try:
            body = await read_limited(request, self.max_body_bytes, self.body_timeout)
        except BodyRefused as refused:
            return self._refuse(refused.outcome, refused.status, refused.reason)
        try:
            learned = connection_owners(body)
            owners = self.owners[account]
            if learned and any(owners.get(k) != v for k, v in learned.items()):
                owners.update(learned)
                await self.remember_owners(account, owners)
            parsed = parse_update(body, account, owners, self.automated_bots.get(account, ()))
        except TelegramPayloadError as err:
            return self._refuse("malformed", 400, str(err))
        events, skipped = screen_delivery(
            _TELEGRAM, parsed, self.bounds, self.clock(), self.metrics
        )
        return await store_delivery(
            self.store,
            events,
            skipped,
            hook=_TELEGRAM,
            platform=self.platform,
            metrics=self.metrics,
        )

    def _refuse(self, outcome: str, status: int, reason: str) -> web.Response:
        return refuse(self.metrics, _TELEGRAM, self.platform, outcome, status, reason)
