"""The long-running monitor: the polling host, the rounds and the HTTP app, composed.

``replywatch run`` (and the demo) composes all of it: the :class:`PollingHost` with its
APScheduler scheduler and group-commit writer, the background rounds that refresh the window
figures and alert, the weekly summary, and the HTTP app (``/metrics``, ``/healthz``, webhooks).
``replywatch serve`` composes the same runtime without the polling host and without
alerting, beside ``replywatch worker`` processes that poll and alert: its figures and poll
health come from the shared database, so every replica serves the same numbers. Database
writes run in a worker thread, one at a time, so the event loop never blocks on SQLite and
SQLite never sees two writers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from connectors.base import Event
from connectors.registry import PLATFORMS
from monitor.config.loading import AccountConfig
from monitor.core.polls import PollRecord
from monitor.core.round_health import ALERT_ROUNDS, RoundHealth
from monitor.export.cluster_health import ClusterHealth
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.http.app import build_app
from monitor.http.server import start_server
from monitor.notify.alert_cycle import AlertCycle
from monitor.notify.receivers import AlertReceiver, build_receivers
from monitor.polling.coordinator import PollCoordinator
from monitor.polling.host import PollingHost
from monitor.polling.local import LocalScheduler, LocalWriter
from monitor.service.hooks import WebhookIntake
from monitor.service.rounds import SUMMARY_RETRY, RefreshRound, SummaryRound
from monitor.store.accounts import account_names
from monitor.store.context import AppContext
from monitor.store.ingest import Ingestor
from monitor.store.instance_lock import InstanceLock
from monitor.store.intake_screen import Refusal
from monitor.store.recent import RecentlyStored
from monitor.summary.delivery import SummaryMailer

__all__ = ["Runtime"]

log = logging.getLogger("monitor.runtime")


@dataclass
class Runtime:
    """Everything ``replywatch run``, ``serve`` and the demo keep alive."""

    context: AppContext
    host: str = "127.0.0.1"
    port: int = 9874
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    base_url_for: Callable[[AccountConfig], str | None] = lambda account: account.base_url
    request_timeout: float = 30.0
    first_poll_spread: float = 5.0
    # None: the config's refresh_interval.
    figures_interval: float | None = None
    metrics: Metrics = field(default_factory=Metrics)
    # None: the receivers the config names (tests pass their own).
    receivers: list[AlertReceiver] | None = None
    # ``replywatch serve``: compose without the polling host and without alerting.
    serve_only: bool = False
    address: str = ""

    def __post_init__(self) -> None:
        config = self.context.config
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        if self.serve_only:
            # Replicas share nothing in-process: each registry describes only this process.
            self.metrics = Metrics(process_registry=CollectorRegistry())
        self.metrics.apply(config.metrics)
        self.ingestor = Ingestor(
            self.context.engine,
            self.context.accounts,
            keep_text=config.store_excerpts,
            # Only a process that is the store's single writer may skip what it stored.
            recent=None if self.serve_only else RecentlyStored(),
            on_refused=self._count_refused,
        )
        self._platforms = {a.platform for a in config.accounts.values()} | set(PLATFORMS)
        # The background rounds: counted in /metrics, judged by /healthz.
        self.rounds = RoundHealth(log, self.metrics)
        self._write_lock = asyncio.Lock()
        self._ids: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        # Set once the first figures refresh has ended: /metrics then has the window figures.
        self.figures_ready = asyncio.Event()
        self.refresh: RefreshRound | None = None
        self.hooks = WebhookIntake(
            config, self.ingestor, self._write_lock, self.metrics, self.clock, self.store_events
        )
        # The parts this runtime is composed of; a part it does not run is None.
        self.polling: PollingHost | None = None
        self.poll_health: ClusterHealth | None = None
        self._lock: InstanceLock | None = None
        if self.serve_only:
            intervals = {a.name: a.poll_interval.total_seconds() for a in config.accounts.values()}
            self.poll_health = ClusterHealth(
                self.context.engine, intervals, config.metrics.account_details, self.clock
            )
            self.metrics.registry.register(self.poll_health)
        else:
            self._lock = InstanceLock(self.context.engine)
            self.local = LocalScheduler(self.scheduler, self._poll)
            self.polling = PollingHost(
                config,
                LocalWriter(
                    self.context.engine,
                    self.ingestor,
                    self._write_lock,
                    self.clock,
                    self._ids,
                    on_stored=self._note_last_update,
                ),
                self.local,
                clock=self.clock,
                base_url_for=self.base_url_for,
                request_timeout=self.request_timeout,
                observers=[self.metrics.record_poll],
            )

    @property
    def coordinators(self) -> dict[str, PollCoordinator]:
        """The polled accounts' coordinators, by account name."""
        return {} if self.polling is None else self.polling.coordinators

    @property
    def unavailable(self) -> dict[str, str]:
        """The accounts that are not polled, with the reason."""
        return {} if self.polling is None else self.polling.unavailable

    @property
    def observers(self) -> list[Callable[[PollRecord], None]]:
        """Called with every finished poll (append to watch them)."""
        return [] if self.polling is None else self.polling.observers

    @property
    def lost_lock(self) -> str | None:
        """Why this monitor stopped working: another one took the store (see InstanceLock)."""
        return None if self.refresh is None else self.refresh.lost_lock

    async def start(self) -> None:
        """Take the store, build the connectors, start polling and serving."""
        if self._lock is not None:
            self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.context.config
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        )
        ids = await asyncio.to_thread(self._account_ids)
        self._ids.update(ids)
        now = self.clock()
        for account in config.accounts.values():
            self.metrics.set_targets(account.platform, account.name, account.profile)
        if self.polling is not None:
            self.polling.open(self._session, now)
            for name, coordinator in self.polling.coordinators.items():
                self.metrics.prepare_account(
                    coordinator.platform, name, coordinator.interval.total_seconds()
                )
        receivers = self.receivers
        if receivers is None:
            receivers = build_receivers(config) if self.polling is not None else []
        alerts = AlertCycle(
            self.context.engine,
            self.context.accounts,
            receivers,
            self.clock,
            self.rounds,
            # The store's single writer hears of every change (see the figures below).
            incremental=not self.serve_only,
        )
        self.ingestor.on_stored.append(alerts.mark_changed)
        self.rounds.start(["figures"], now, self._figures_seconds())
        if self.polling is not None:
            # The parts of the alert round this process runs (monitor.notify.alert_cycle).
            steps = {"outcomes": True, "alerts": config.alerts.enabled, "delivery": bool(receivers)}
            ran = [step for step in ALERT_ROUNDS if steps[step]]
            self.rounds.start(ran, now, self._figures_seconds())
        await asyncio.to_thread(alerts.load)
        self.alerts = alerts
        self.figures = FiguresSnapshot(
            self.context.engine,
            self.context.accounts,
            self.clock,
            alerts.totals,
            include_live=False,
            # The store's single writer hears of every change; serve replicas do not (the
            # workers write), so they recompute every account at each refresh.
            incremental=not self.serve_only,
        )
        self.ingestor.on_stored.append(self.figures.mark_changed)
        self.exposition = ExpositionCache(
            self.metrics.registry, self.figures.render_live, self.figures.render_static
        )
        self.refresh = RefreshRound(
            self.rounds,
            self.metrics,
            alerts,
            self.figures,
            self.exposition,
            self.clock,
            self._write_lock,
            session=(lambda: self._session) if self.polling is not None else (lambda: None),
            # serve: the workers decide outcomes and poll; read their counts from the store.
            readers=[] if self.poll_health is None else [alerts.load, self.poll_health.refresh],
            lock=self._lock,
            on_lost_lock=lambda _reason: self.scheduler.pause(),
            ready=self.figures_ready,
        )
        self.scheduler.start()
        # Window figures are computed in the background; a scrape only reads the snapshot.
        self.scheduler.add_job(
            self.refresh.run,
            trigger=IntervalTrigger(seconds=self._figures_seconds(), timezone=UTC),
            id="figures",
            name="refresh window figures",
            next_run_time=now,
            coalesce=True,
            max_instances=1,
        )
        if self.polling is not None:
            self._schedule_summaries(receivers)
            self._schedule_polls(self.polling, now)
        await self._serve()

    def _schedule_polls(self, polling: PollingHost, now: datetime) -> None:
        # Paused accounts resume by themselves once their token is replaced (file or env).
        self.scheduler.add_job(
            polling.resume_refreshed_credentials,
            trigger=IntervalTrigger(seconds=60, timezone=UTC),
            id="credentials",
            name="resume accounts whose credentials changed",
            coalesce=True,
            max_instances=1,
        )
        coordinators = list(polling.coordinators.values())
        for index, coordinator in enumerate(coordinators):
            # Spread first polls so a restart does not hit every platform in the same second.
            offset = self.first_poll_spread * index / max(1, len(coordinators))
            self.local.add(
                coordinator.account,
                coordinator.platform,
                coordinator.interval,
                coordinator.jitter,
                now + timedelta(seconds=offset),
            )

    async def _poll(self, account: str) -> None:
        assert self.polling is not None
        await self.polling.poll(account)

    async def _serve(self) -> None:
        routes = self.hooks.routes(self._ids)
        app = build_app(self.exposition.handle, self.health, routes, self.metrics)
        # Header and idle timeouts and a connection limit (monitor.http.server).
        self._runner, _guard = await start_server(app, self.host, self.port, metrics=self.metrics)
        # With port 0 the system picks a free port; report the one actually bound.
        bound = self._runner.addresses
        if bound:
            self.port = int(bound[0][1])
        self.address = f"http://{self.host}:{self.port}"

    def _schedule_summaries(self, receivers: list[AlertReceiver]) -> None:
        settings = self.context.config.summary
        if not settings.enabled or not (settings.recipients or settings.digest_receivers):
            return
        mailer = SummaryMailer(
            self.context.engine, self.context.accounts, self.context.config, receivers, self.clock
        )
        self.summaries = SummaryRound(
            mailer, self.rounds, self.metrics, self.clock, lambda: self._session
        )
        self.rounds.start(["summary"], self.clock(), SUMMARY_RETRY.total_seconds())
        # The configured moment, and a retry round every 15 minutes: a failed or missed send
        # (the monitor was down at the moment) goes out as soon as it can, never twice.
        self.scheduler.add_job(
            self.summaries.run,
            trigger=CronTrigger(
                day_of_week=settings.day[:3], hour=settings.hour, timezone=mailer.zone
            ),
            id="summary",
            name="weekly summary",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self.summaries.run,
            trigger=IntervalTrigger(seconds=SUMMARY_RETRY.total_seconds(), timezone=UTC),
            id="summary-retry",
            name="weekly summary retries",
            coalesce=True,
            max_instances=1,
        )

    def _figures_seconds(self) -> float:
        if self.figures_interval is not None:
            return self.figures_interval
        return self.context.config.refresh_interval.total_seconds()

    def _account_ids(self) -> dict[str, int]:
        with self.context.engine.connect() as connection:
            return {name: ident for ident, (_platform, name) in account_names(connection).items()}

    async def refresh_now(self) -> None:
        """Run one figures and alert round now, beside the scheduled ones (tests drive it)."""
        assert self.refresh is not None, "start() first"
        await self.refresh.run_now()

    def _note_last_update(self, platform: str, account: str, cursor: Mapping[str, str]) -> None:
        newest = cursor.get("last_update_at")
        if newest:
            # Platforms that keep no history (Telegram): the age of the newest update shows gaps.
            self.metrics.last_update.labels(platform, account).set(
                datetime.fromisoformat(newest).timestamp()
            )

    async def store_events(self, events: Sequence[Event]) -> int:
        """Store pushed events (webhooks); returns how many were new."""
        async with self._write_lock:
            result = await asyncio.to_thread(
                self.ingestor.ingest, list(events), seen_at=self.clock()
            )
        for (platform, _account), count in result.stored_by_account.items():
            self.metrics.events_stored.labels(platform, "webhook").inc(count)
        return result.stored

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the scheduler runs and the rounds succeed, and each account's polling state.

        Unhealthy when the figures round or a part of the alert round has failed and not
        succeeded for more than GRACE_INTERVALS (3) refresh intervals: the process answers,
        but the figures are stale or no conversation alert goes out.
        """
        lost_lock = self.lost_lock
        if lost_lock is not None:
            return False, {"status": "stopped", "reason": lost_lock}
        running = bool(self.scheduler.running)
        failing = self.rounds.unhealthy(("figures", *ALERT_ROUNDS), self.clock())
        status = "ok" if running else "stopped"
        if running and failing:
            status = "failing"
        body: dict[str, Any] = {"status": status}
        if failing:
            body["reason"] = "; ".join(failing)
        body["rounds"] = self.rounds.describe()
        if self.polling is None:
            return running and not failing, {**body, "role": "serve"}
        return running and not failing, {
            **body,
            "scheduler": "running" if running else "stopped",
            "accounts": self.polling.describe(),
        }

    def _count_refused(self, refused: Sequence[Refusal]) -> None:
        for refusal in refused:
            # Bounded labels: a platform replywatch knows or one of the config's, else "other".
            platform = refusal.platform if refusal.platform in self._platforms else "other"
            self.metrics.events_rejected.labels(platform).inc()

    async def stop(self) -> None:
        """Stop polling and serving, close connectors, release the store."""
        if self.scheduler.running:
            # No new polls; let the running ones finish (and store) before shutting down,
            # so nothing is cancelled halfway.
            self.scheduler.pause()
            if self.refresh is not None:
                async with self.refresh.running:
                    pass  # a refresh round in progress finishes instead of being cancelled
            if self.polling is not None:
                await self.polling.close()
            self.scheduler.shutdown(wait=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._lock is not None:
            self._lock.release()
