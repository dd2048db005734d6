"""One round of alert work, run after every figures refresh.

Under the store's write lock: decide due SLI outcomes, move per-conversation alert levels,
and put the changes in the outbox, all in one transaction. Then, outside it: deliver what is
due and re-send firing alerts to Alertmanager so they stay alive.

Each part reports to :class:`RoundHealth` as its own round (``outcomes``, ``alerts``,
``delivery``): a wait that cannot be decided is skipped and counted, the rest go on, and a
round that fails as a whole is logged when it starts failing and when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import Engine

from monitor.core.due_times import FULL_EVERY, DueTimes, full_round_due
from monitor.core.escaping import one_line
from monitor.core.round_health import ItemFailure, RoundHealth
from monitor.notify.conversation_alerts import (
    AlertChange,
    firing_alerts,
    update_conversation_alerts,
)
from monitor.notify.outbox import DeliveryReport, Outbox, enqueue
from monitor.notify.receivers import AlertmanagerReceiver, AlertReceiver, DeliveryError
from monitor.store.accounts import AccountDirectory, AccountPolicy, account_names
from monitor.store.sli import Decision, SliTotals, decide_outcomes, histogram_buckets

__all__ = ["AlertCycle"]

log = logging.getLogger("monitor.alerts")


@dataclass
class AlertCycle:
    """SLI decisions, conversation alerts and their delivery for one store."""

    engine: Engine
    accounts: AccountDirectory
    receivers: list[AlertReceiver]
    clock: Callable[[], datetime]
    health: RoundHealth = field(default_factory=lambda: RoundHealth(log))
    # True where this process hears of every stored change (the store's single writer):
    # a round then derives only the accounts changed since the last one and those whose
    # deadlines have come, and every account each ``full_every``. The full round is the
    # oracle the incremental one is tested against (tests/monitor/test_incremental_alerts.py).
    incremental: bool = False
    full_every: timedelta = FULL_EVERY
    totals: SliTotals = field(init=False)

    def __post_init__(self) -> None:
        config = self.accounts.config
        self.settings = config.alerts
        # Every profile that judges a wait: an account's own targets make a profile of its
        # own, whose bounds the histogram must hold too.
        in_use = [
            *config.profiles.values(),
            *(p for name in config.accounts for p in self.accounts.policy(name).profiles),
        ]
        self.totals = SliTotals(histogram_buckets(in_use))
        self.outbox = Outbox(self.engine, self.receivers, self.clock, self.settings.retry_max)
        self._last_resend: datetime | None = None
        self._due: DueTimes[int] = DueTimes()
        self._changed: set[tuple[str, str]] = set()
        self._changed_lock = threading.Lock()
        self._full_at: datetime | None = None

    def mark_changed(self, keys: Iterable[tuple[str, str]]) -> None:
        """Note (platform, account) pairs whose waits changed (the ingestor calls this)."""
        with self._changed_lock:
            self._changed.update(keys)

    def load(self) -> None:
        """Read the outcome totals from the store (once, before the first scrape)."""
        with self.engine.connect() as connection:
            self.totals.load(connection)

    async def run(
        self, session: aiohttp.ClientSession, write_lock: asyncio.Lock
    ) -> DeliveryReport | None:
        """Decide, record and deliver; returns what delivery did.

        None when there are no receivers, or when a part failed as a whole: that is counted
        and logged by ``health`` (once, when it starts failing), and the next round retries.
        """
        now = self.clock()
        skipped: list[ItemFailure] = []
        try:
            async with write_lock:
                decisions, changes = await asyncio.to_thread(self._step, now, skipped)
        except Exception as err:
            # Broad on purpose: this is a round. Whatever failed (the store, a rule meeting
            # data it did not expect), the process and the next round go on; ``health``
            # counts the failure and logs it once, when the part starts failing.
            steps = ("outcomes", "alerts") if self.settings.enabled else ("outcomes",)
            self.health.failed(steps, now, err, "alert round failed; the next round retries")
            return None
        self.health.succeeded("outcomes", now, skipped)
        if self.settings.enabled:
            self.health.succeeded("alerts", now)
        self.totals.add(decisions)
        for change in changes:
            # Names come from imported files and platforms: one line each in the log.
            account, channel = one_line(change.account), one_line(change.channel)
            log.info(
                "conversation on %s/%s (%s) is now %s after %.0f s",
                change.platform,
                account,
                channel,
                change.level,
                change.waited_seconds,
                extra={
                    "event": "conversation_alert_changed",
                    "platform": change.platform,
                    "account": account,
                    "channel": channel,
                    "alert_level": change.level,
                    "waited_seconds": change.waited_seconds,
                },
            )
        if not self.receivers:
            return None
        try:
            report = await self.outbox.deliver_due(session, write_lock)
            refused = await self._keep_alive(session, now)
        except Exception as err:
            # Broad on purpose, as above: a round. The changes are in the outbox, so the
            # next round delivers them.
            self.health.failed(("delivery",), now, err, "alert delivery round failed")
            return None
        self.health.succeeded("delivery", now)
        return replace(report, refused=refused) if refused else report

    def _step(
        self, now: datetime, skipped: list[ItemFailure]
    ) -> tuple[list[Decision], list[AlertChange]]:
        with self._changed_lock:
            changed, self._changed = self._changed, set()
        try:
            with self.engine.begin() as connection:
                who = account_names(connection)

                def policy(account_id: int) -> AccountPolicy:
                    return self.accounts.policy(who[account_id][1])

                scope = self._scope(now, who, changed)
                if scope is not None and not scope:
                    return [], []
                self._due.forget(scope)
                decisions = decide_outcomes(
                    connection, policy, now, skipped=skipped, accounts=scope, due=self._due
                )
                changes: list[AlertChange] = []
                if self.settings.enabled:
                    changes = update_conversation_alerts(
                        connection,
                        who,
                        policy,
                        now,
                        self.settings.max_age,
                        accounts=scope,
                        due=self._due,
                    )
                    enqueue(connection, changes, self.receivers, now)
        except Exception:
            # Rolled back: the next round derives every account again.
            self._full_at = None
            raise
        if scope is None:
            self._full_at = now
        return decisions, changes

    def _scope(
        self, now: datetime, who: dict[int, tuple[str, str]], changed: set[tuple[str, str]]
    ) -> set[int] | None:
        # The accounts this round derives; None: every one (a full round).
        if full_round_due(self.incremental, self._full_at, now, self.full_every):
            return None
        scope = self._due.due(now) | {ident for ident, names in who.items() if names in changed}
        # Past half the accounts, one scan of every wait costs less than a long list of ids.
        return None if 2 * len(scope) > len(who) else scope

    async def _keep_alive(self, session: aiohttp.ClientSession, now: datetime) -> int:
        # Returns how many firing alerts Alertmanager refused for their content.
        managers = [r for r in self.receivers if isinstance(r, AlertmanagerReceiver)]
        due = self._last_resend is None or now - self._last_resend >= self.settings.resend_interval
        if not managers or not due:
            return 0
        self._last_resend = now

        def read() -> list[AlertChange]:
            with self.engine.connect() as connection:
                return firing_alerts(connection, account_names(connection), now)

        firing = await asyncio.to_thread(read)
        refused = 0
        for manager in managers:
            try:
                refused += (await manager.refresh(session, firing, now)).refused
            except DeliveryError as err:
                log.warning(
                    "could not re-send firing alerts to Alertmanager: %s",
                    err,
                    extra={"event": "alert_resend_failed", "receiver": manager.name},
                )
        return refused
