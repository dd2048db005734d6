"""The monitor's background rounds: window figures, then the alert round; the weekly summary.

Every refresh interval the window figures are recomputed into a snapshot that scrapes only
read, then SLI outcomes are decided and conversation alerts raised and delivered
(``monitor.notify.alert_cycle``). A ``replywatch serve`` replica runs only the figures part,
after reading what the workers decided and how their polls went from the shared store. Each
part reports to :class:`RoundHealth`, which counts failures and judges /healthz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp

from monitor.core.round_health import RoundHealth
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.notify.alert_cycle import AlertCycle
from monitor.store.instance_lock import InstanceLock, InstanceLockError
from monitor.summary.delivery import SummaryMailer

__all__ = ["SUMMARY_RETRY", "RefreshRound", "SummaryRound"]

log = logging.getLogger("monitor.runtime")
# Missed or failed weekly summaries are tried again this often.
SUMMARY_RETRY = timedelta(minutes=15)


@dataclass
class RefreshRound:
    """Window figures, then (where this process alerts) the alert round."""

    health: RoundHealth
    metrics: Metrics
    alerts: AlertCycle
    figures: FiguresSnapshot
    exposition: ExpositionCache
    clock: Callable[[], datetime]
    write_lock: asyncio.Lock
    # The HTTP session alerts go out through; None: this process sends no alerts (serve).
    session: Callable[[], aiohttp.ClientSession | None] = lambda: None
    # Read before the figures, off the event loop: what other processes decided (serve).
    readers: Sequence[Callable[[], None]] = ()
    # The store's single writer re-takes its lock each round (None: no lock to hold).
    lock: InstanceLock | None = None
    on_lost_lock: Callable[[str], None] = lambda _reason: None

    # Set once the first round has ended: /metrics then has the window figures.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Why this monitor stopped working: another one took the store (see InstanceLock).
    lost_lock: str | None = None
    # Held while a round runs, so stopping waits for it to end.
    running: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self) -> None:
        """One round; a failed part is counted and logged, never raised."""
        async with self.running:
            await self.run_now()
        self.ready.set()

    async def run_now(self) -> None:
        """One round without waiting for a round in progress (tests drive it directly)."""
        if not await self._still_the_only_monitor():
            return
        now = self.clock()
        # Needs no store: an account goes stale even while the figures cannot be refreshed.
        self.metrics.mark_stale(now.timestamp())
        try:
            for read in self.readers:
                await asyncio.to_thread(read)
            await asyncio.to_thread(self.figures.refresh)
        except Exception as err:  # a round isolates its failure: /metrics keeps the last figures
            message = "could not refresh the window figures; /metrics keeps the last ones"
            self.health.failed(("figures",), now, err, message)
        else:
            self.health.succeeded("figures", now)
        try:
            session = self.session()
            if session is not None:
                # Never raises: a failed part is counted and logged by self.health.
                report = await self.alerts.run(session, self.write_lock)
                if report is not None:
                    self.metrics.record_alert_deliveries(report)
        finally:
            # Even after a failed round: large deployments' /metrics is only rendered here.
            if self.exposition.background_due():
                await asyncio.to_thread(self.exposition.refresh)

    async def _still_the_only_monitor(self) -> bool:
        # PostgreSQL drops the lock with the session (a server restart): take it again, and
        # stop working if another monitor took it meanwhile, or alerts would go out twice.
        if self.lost_lock is not None:
            return False
        if self.lock is None:
            return True
        try:
            await asyncio.to_thread(self.lock.verify)
        except InstanceLockError as err:
            self.lost_lock = str(err)
            log.critical(
                "this monitor stops polling and alerting: %s",
                err,
                extra={"event": "monitor_lock_lost"},
            )
            self.on_lost_lock(self.lost_lock)
            return False
        except Exception as err:  # the store is briefly unreachable: keep working, check again
            log.warning(
                "could not check the monitor lock (%s); trying again",
                type(err).__name__,
                extra={"event": "monitor_lock_unchecked"},
            )
        return True


@dataclass
class SummaryRound:
    """Sends the weekly summaries that are due, and retries missed ones."""

    mailer: SummaryMailer
    health: RoundHealth
    metrics: Metrics
    clock: Callable[[], datetime]
    session: Callable[[], aiohttp.ClientSession | None]

    async def run(self) -> None:
        """Send what is due; a failure is counted and the next round retries."""
        session = self.session()
        assert session is not None
        now = self.clock()
        try:
            report = await self.mailer.send_due(session)
        except Exception as err:  # a round isolates its failure; the next round retries
            message = "weekly summary round failed; the next round retries"
            self.health.failed(("summary",), now, err, message)
            return
        self.health.succeeded("summary", now)
        if report is not None:
            self.metrics.record_summary_sends(report.sent, report.failed)
