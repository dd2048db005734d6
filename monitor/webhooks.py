"""Webhook intake over HTTP: size limit, signature, parse, store; every outcome counted.

Bad input never produces a 500: an unsigned or wrongly signed body is 403, an oversized one
413, a malformed one 400. A store that cannot take the events answers 503 so the platform
delivers again later (nothing is lost). Logs name the platform and outcome, never the body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

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
from monitor.metrics import Metrics

__all__ = ["BodyTooLarge", "MetaWebhook", "TelegramWebhook", "read_limited"]

log = logging.getLogger("monitor.webhooks")

StoreEvents = Callable[[Sequence[Event]], Awaitable[int]]


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


async def read_limited(request: web.Request, limit: int) -> bytes:
    """Read the raw body, refusing more than ``limit`` bytes without buffering them."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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
            log.warning("meta webhook handshake refused: wrong or missing verify token")
            return web.Response(status=403, text="verify token mismatch\n")
        return web.Response(text=challenge)

    async def deliver(self, request: web.Request) -> web.Response:
        """Verify, parse and store one delivery."""
        try:
            body = await read_limited(request, self.max_body_bytes)
        except BodyTooLarge:
            return self._refuse("too_large", 413, "body too large")
        if not verify_signature(self.app_secret, body, request.headers.get("X-Hub-Signature-256")):
            return self._refuse("bad_signature", 403, "signature mismatch")
        try:
            batch = parse_meta_webhook(body, self.accounts)
        except WebhookPayloadError as err:
            return self._refuse("malformed", 400, str(err))
        if batch.events:
            try:
                await self.store(batch.events)
            except Exception:
                log.exception("meta webhook: could not store %d event(s)", len(batch.events))
                self.metrics.webhooks.labels(self.platform, "error").inc()
                return web.Response(status=503, text="store unavailable, deliver again\n")
        outcome = "accepted" if batch.events else "ignored"
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        return web.Response(text="ok\n")

    def _refuse(self, outcome: str, status: int, reason: str) -> web.Response:
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        log.warning("meta webhook delivery refused (%d): %s", status, reason)
        return web.Response(status=status, text=f"{reason}\n")


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

    def routes(self) -> list[web.RouteDef]:
        """The one route."""
        return [web.post("/hooks/telegram/{account}", self.deliver)]

    async def deliver(self, request: web.Request) -> web.Response:
        """Check the secret, parse the Update, store its events."""
        account = request.match_info["account"]
        if account not in self.owners:
            return self._refuse("ignored", 404, "no such telegram account")
        try:
            body = await read_limited(request, self.max_body_bytes)
        except BodyTooLarge:
            return self._refuse("too_large", 413, "body too large")
        if not verify_secret(request.headers.get(SECRET_HEADER), self.secret):
            return self._refuse("bad_signature", 403, "secret token mismatch")
        try:
            learned = connection_owners(body)
            owners = self.owners[account]
            if learned and any(owners.get(k) != v for k, v in learned.items()):
                owners.update(learned)
                await self.remember_owners(account, owners)
            events = parse_update(body, account, owners, self.automated_bots.get(account, ()))
        except TelegramPayloadError as err:
            return self._refuse("malformed", 400, str(err))
        if events:
            try:
                await self.store(events)
            except Exception:
                log.exception("telegram webhook: could not store %d event(s)", len(events))
                self.metrics.webhooks.labels(self.platform, "error").inc()
                # Telegram retries non-2xx deliveries for a while: nothing is lost.
                return web.Response(status=503, text="store unavailable, deliver again\n")
        self.metrics.webhooks.labels(self.platform, "accepted" if events else "ignored").inc()
        return web.Response(text="ok\n")

    def _refuse(self, outcome: str, status: int, reason: str) -> web.Response:
        self.metrics.webhooks.labels(self.platform, outcome).inc()
        log.warning("telegram webhook delivery refused (%d): %s", status, reason)
        return web.Response(status=status, text=f"{reason}\n")
