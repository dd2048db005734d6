"""One round of alert work, run after every figures refresh.

Under the store's write lock: decide due SLI outcomes, move per-conversation alert levels,
and put the changes in the outbox, all in one transaction. Then, outside it: deliver what is
due and re-send firing alerts to Alertmanager so they stay alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from sqlalchemy import Engine

from monitor.accounts import AccountDirectory, AccountPolicy, account_names
from monitor.alert_outbox import DeliveryReport, Outbox, enqueue
from monitor.alert_receivers import AlertmanagerReceiver, AlertReceiver, DeliveryError
from monitor.conversation_alerts import AlertChange, firing_alerts, update_conversation_alerts
from monitor.models import Account
from monitor.sli import Decision, SliTotals, decide_outcomes, histogram_buckets

__all__ = ["AlertCycle"]

log = logging.getLogger("monitor.alerts")
_ACCOUNTS = Account.__table__  # type: ignore[attr-defined]


@dataclass
class AlertCycle:
    """SLI decisions, conversation alerts and their delivery for one store."""

    engine: Engine
    accounts: AccountDirectory
    receivers: list[AlertReceiver]
    clock: Callable[[], datetime]
    totals: SliTotals = field(init=False)

    def __post_init__(self) -> None:
        config = self.accounts.config
        self.settings = config.alerts
        self.totals = SliTotals(histogram_buckets(config.profiles.values()))
        self.outbox = Outbox(self.engine, self.receivers, self.clock, self.settings.retry_max)
        self._last_resend: datetime | None = None

    def load(self) -> None:
        """Read the outcome totals from the store (once, before the first scrape)."""
        with self.engine.connect() as connection:
            self.totals.load(connection)

    async def run(
        self, session: aiohttp.ClientSession, write_lock: asyncio.Lock
    ) -> DeliveryReport | None:
        """Decide, record and deliver; returns what delivery did (None: no receivers)."""
        now = self.clock()
        async with write_lock:
            decisions, changes = await asyncio.to_thread(self._step, now)
        self.totals.add(decisions)
        for change in changes:
            log.info(
                "conversation on %s/%s (%s) is now %s after %.0f s",
                change.platform,
                change.account,
                change.channel,
                change.level,
                change.waited_seconds,
            )
        if not self.receivers:
            return None
        report = await self.outbox.deliver_due(session, write_lock)
        await self._keep_alive(session, now)
        return report

    def _step(self, now: datetime) -> tuple[list[Decision], list[AlertChange]]:
        with self.engine.begin() as connection:
            who = account_names(connection)
            cache: dict[int, AccountPolicy] = {}

            def policy(account_id: int) -> AccountPolicy:
                if account_id not in cache:
                    cache[account_id] = self.accounts.policy(who[account_id][1])
                return cache[account_id]

            decisions = decide_outcomes(connection, policy, now)
            changes: list[AlertChange] = []
            if self.settings.enabled:
                changes = update_conversation_alerts(
                    connection, who, policy, now, self.settings.max_age
                )
                enqueue(connection, changes, self.receivers, now)
        return decisions, changes

    async def _keep_alive(self, session: aiohttp.ClientSession, now: datetime) -> None:
        managers = [r for r in self.receivers if isinstance(r, AlertmanagerReceiver)]
        due = self._last_resend is None or now - self._last_resend >= self.settings.resend_interval
        if not managers or not due:
            return
        self._last_resend = now

        def read() -> list[AlertChange]:
            with self.engine.connect() as connection:
                return firing_alerts(connection, account_names(connection), now)

        firing = await asyncio.to_thread(read)
        for manager in managers:
            try:
                await manager.refresh(session, firing, now)
            except DeliveryError as err:
                log.warning("could not re-send firing alerts to Alertmanager: %s", err)
