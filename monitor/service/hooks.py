"""The webhook endpoints the config asks for, wired to the store and the metrics.

Each configured ``[webhooks.<name>]`` becomes its intake (``monitor.http``): the generic
events hook, Meta's signed deliveries and Telegram's per-account updates. Pushed events are
stored by the same ingestor as polls, so they are screened and deduplicated the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from connectors.base import Event
from connectors.registry import PLATFORMS, webhook_routes
from monitor.config.loading import Config
from monitor.export.metrics import Metrics
from monitor.http.events_hook import EventsHook, EventToken
from monitor.http.webhooks import MetaWebhook, TelegramWebhook
from monitor.store.cursors import read_cursor
from monitor.store.ingest import Ingestor

__all__ = ["WebhookIntake", "hook_paths"]


def hook_paths() -> dict[str, str]:
    """The path each webhook is served on (what `replywatch run` prints), by config name."""
    paths = {name: route.path for name, route in webhook_routes().items()}
    return {**paths, "events": "/hooks/events"}


def _meta_account_ids() -> dict[str, str]:
    # Meta pushes by Page or Instagram user id: the id key of each platform it serves.
    return {
        spec.name: spec.webhook.account_id
        for spec in PLATFORMS.values()
        if spec.webhook is not None
        and spec.webhook.name == "meta"
        and spec.webhook.account_id is not None
    }


@dataclass
class WebhookIntake:
    """Builds the routes of every configured webhook."""

    config: Config
    ingestor: Ingestor
    write_lock: asyncio.Lock
    metrics: Metrics
    clock: Callable[[], datetime]
    store_events: Callable[[Sequence[Event]], Awaitable[int]]

    def routes(self, account_ids: Mapping[str, int]) -> list[web.RouteDef]:
        """The routes of the configured webhooks (none when the config has no webhooks)."""
        config = self.config
        routes: list[web.RouteDef] = []
        if "events" in config.webhooks:
            routes += self._events_hook().routes()
        if "telegram" in config.webhooks:
            routes += self._telegram_hook(account_ids).routes()
        if "meta" in config.webhooks:
            routes += self._meta_hook().routes()
        return routes

    def _events_hook(self) -> EventsHook:
        config = self.config
        self.metrics.prepare_webhooks("events")
        return EventsHook(
            token=config.resolve_webhook_secrets("events").get("token", ""),
            config=config,
            store=self.store_events,
            metrics=self.metrics,
            max_body_bytes=config.webhooks["events"].max_body_bytes,
            tokens=[
                EventToken(secret, None if accounts is None else frozenset(accounts))
                for secret, accounts in config.resolve_event_tokens()
            ],
        )

    def _meta_hook(self) -> MetaWebhook:
        config = self.config
        secrets = config.resolve_webhook_secrets("meta")
        keys = _meta_account_ids()
        accounts = {
            (account.platform, account.ids[keys[account.platform]]): account.name
            for account in config.accounts.values()
            if account.platform in keys and keys[account.platform] in account.ids
        }
        self.metrics.prepare_webhooks("meta")
        return MetaWebhook(
            app_secret=secrets["app_secret"],
            verify_token=secrets["verify_token"],
            accounts=accounts,
            store=self.store_events,
            metrics=self.metrics,
            max_body_bytes=config.webhooks["meta"].max_body_bytes,
            bounds=config.intake,
            clock=self.clock,
        )

    def _telegram_hook(self, account_ids: Mapping[str, int]) -> TelegramWebhook:
        config = self.config
        names = [a.name for a in config.accounts.values() if a.platform == "telegram"]
        owners: dict[str, dict[str, str]] = {}
        for name in names:
            ident = account_ids.get(name)
            cursor = {} if ident is None else read_cursor(self.ingestor.engine, ident)
            known = cursor.get("connections")
            owners[name] = dict(json.loads(known)) if known else {}
        self.metrics.prepare_webhooks("telegram")
        bots = {
            a.name: tuple(b for b in a.options.get("automated_bots", "").split(",") if b)
            for a in config.accounts.values()
            if a.platform == "telegram"
        }
        return TelegramWebhook(
            secret=config.resolve_webhook_secrets("telegram")["secret_token"],
            owners=owners,
            automated_bots=bots,
            store=self.store_events,
            remember_owners=self._remember_telegram_owners,
            metrics=self.metrics,
            max_body_bytes=config.webhooks["telegram"].max_body_bytes,
            bounds=config.intake,
            clock=self.clock,
        )

    async def _remember_telegram_owners(self, account: str, owners: Mapping[str, str]) -> None:
        # Kept in the account's cursor, as the poller keeps them, so a restart knows them.
        cursor = {"connections": json.dumps(dict(sorted(owners.items())))}
        async with self.write_lock:
            await asyncio.to_thread(
                self.ingestor.ingest, [], cursor=("telegram", account, cursor), seen_at=self.clock()
            )
