"""The long-running monitor: connectors, coordinators, the scheduler and the HTTP app.

One APScheduler job per polled account (in-memory job store, rebuilt from the config and the
store at start). Each job is a one-shot date trigger that the account's coordinator moves
after every poll, which gives backoff, rate-limit waits and jitter without overlapping polls.
Database writes run in a worker thread, one at a time, so the event loop never blocks on
SQLite and SQLite never sees two writers.
"""

from __future__ import annotations

import asyncio
import json
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
from sqlalchemy import select

from connectors import CONNECTORS
from connectors.base import ConnectorSettings, Event, FetchResult
from monitor.config.loading import AccountConfig
from monitor.config.secrets import LiveSecrets
from monitor.core.platforms import PLATFORMS
from monitor.core.polls import PollOutcome, PollRecord
from monitor.core.round_health import ALERT_ROUNDS, RoundHealth
from monitor.export.cluster_health import ClusterHealth
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.http.app import build_app
from monitor.http.events_hook import EventsHook, EventToken
from monitor.http.server import start_server
from monitor.http.webhooks import MetaWebhook, TelegramWebhook
from monitor.notify.alert_cycle import AlertCycle
from monitor.notify.receivers import AlertReceiver, build_receivers
from monitor.polling.connector_factory import Unavailable, build_connector
from monitor.polling.coordinator import PollCoordinator
from monitor.polling.group_commit import GroupCommit
from monitor.store.context import AppContext
from monitor.store.cursors import read_cursor
from monitor.store.ingest import Ingestor
from monitor.store.instance_lock import InstanceLock, InstanceLockError
from monitor.store.intake_screen import Refusal
from monitor.store.recent import RecentlyStored
from monitor.store.tables import ACCOUNTS
from monitor.summary.delivery import SummaryMailer

__all__ = ["Runtime"]

log = logging.getLogger("monitor.runtime")
_META_PLATFORMS = {"facebook": "page_id", "instagram": "ig_user_id"}
# Missed or failed weekly summaries are tried again this often.
_SUMMARY_RETRY = timedelta(minutes=15)


@dataclass
class Runtime:
    """Everything ``replywatch run`` (and the demo) keeps alive."""

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
    # ``replywatch serve``: webhooks and /metrics only, beside ``replywatch worker``
    # processes that poll, decide outcomes and alert; figures and poll health come from
    # the shared database, so every replica serves the same numbers.
    serve_only: bool = False

    coordinators: dict[str, PollCoordinator] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    observers: list[Callable[[PollRecord], None]] = field(default_factory=list)
    address: str = ""

    def __post_init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.poll_health: ClusterHealth | None = None
        if self.serve_only:
            self.metrics = Metrics(process_registry=CollectorRegistry())
        self.ingestor = Ingestor(
            self.context.engine,
            self.context.accounts,
            keep_text=self.context.config.store_excerpts,
            # Only a process that is the store's single writer may skip what it stored.
            recent=None if self.serve_only else RecentlyStored(),
            on_refused=self._count_refused,
        )
        self._platforms = {a.platform for a in self.context.config.accounts.values()} | set(
            PLATFORMS
        )
        # The background rounds: counted in /metrics, judged by /healthz.
        self.rounds = RoundHealth(log, self.metrics)
        if self.serve_only:
            intervals = {
                a.name: a.poll_interval.total_seconds()
                for a in self.context.config.accounts.values()
            }
            self.poll_health = ClusterHealth(self.context.engine, intervals)
            self.metrics.registry.register(self.poll_health)
        self._cursors: dict[str, Mapping[str, str]] = {}
        self._write_lock = asyncio.Lock()
        self._writes = GroupCommit(self.ingestor, self._write_lock, self.clock)
        self._lock = InstanceLock(self.context.engine)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ids: dict[str, int] = {}
        self._settings: dict[str, ConnectorSettings] = {}
        # account -> fingerprint of the secrets that were refused
        self._refused: dict[str, str] = {}
        # Held while figures and alerts are refreshed, so stopping waits for a round to end.
        self._refresh_lock = asyncio.Lock()
        # Set once the first figures refresh has ended: /metrics then has the window figures.
        self.figures_ready = asyncio.Event()
        # Why this monitor stopped working: another one took the store (see InstanceLock).
        self.lost_lock: str | None = None

    async def start(self) -> None:
        """Take the store, build the connectors, start polling and serving."""
        if not self.serve_only:
            self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        )
        with self.context.engine.connect() as connection:
            self._ids = {
                name: int(ident)
                for ident, name in connection.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.name))
            }
        now = self.clock()
        for account in self.context.config.accounts.values():
            self.metrics.set_targets(account.platform, account.name, account.profile)
            if account.source == "poll" and not self.serve_only:
                self._add_account(account, now)
        receivers = self.receivers
        if receivers is None:
            receivers = [] if self.serve_only else build_receivers(self.context.config)
        self.alerts = AlertCycle(
            self.context.engine, self.context.accounts, receivers, self.clock, self.rounds
        )
        self.rounds.start(["figures"], now, self._figures_seconds())
        if not self.serve_only:
            # The parts of the alert round this process runs (monitor.notify.alert_cycle).
            steps = {
                "outcomes": True,
                "alerts": self.context.config.alerts.enabled,
                "delivery": bool(receivers),
            }
            ran = [step for step in ALERT_ROUNDS if steps[step]]
            self.rounds.start(ran, now, self._figures_seconds())
        await asyncio.to_thread(self.alerts.load)
        self.figures = FiguresSnapshot(
            self.context.engine,
            self.context.accounts,
            self.clock,
            self.alerts.totals,
            include_live=False,
        )
        self.exposition = ExpositionCache(
            self.metrics.registry, self.figures.render_live, self.figures.render_static
        )
        self.scheduler.start()
        # Window figures are computed in the background; a scrape only reads the snapshot.
        self.scheduler.add_job(
            self._refresh_figures,
            trigger=IntervalTrigger(seconds=self._figures_seconds(), timezone=UTC),
            id="figures",
            name="refresh window figures",
            next_run_time=now,
            coalesce=True,
            max_instances=1,
        )
        if self.serve_only:
            return await self._serve()
        self._schedule_summaries(receivers)
        # Paused accounts resume by themselves once their token is replaced (file or env).
        self.scheduler.add_job(
            self._resume_refreshed_credentials,
            trigger=IntervalTrigger(seconds=60, timezone=UTC),
            id="credentials",
            name="resume accounts whose credentials changed",
            coalesce=True,
            max_instances=1,
        )
        for index, coordinator in enumerate(self.coordinators.values()):
            # Spread first polls so a restart does not hit every platform in the same second.
            offset = self.first_poll_spread * index / max(1, len(self.coordinators))
            self._schedule(coordinator, now + timedelta(seconds=offset))
        await self._serve()

    async def _serve(self) -> None:
        app = build_app(self.exposition.handle, self.health, self._webhook_routes(), self.metrics)
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
        self.summaries = SummaryMailer(
            self.context.engine, self.context.accounts, self.context.config, receivers, self.clock
        )
        self.rounds.start(["summary"], self.clock(), _SUMMARY_RETRY.total_seconds())
        zone = self.summaries.zone
        # The configured moment, and a retry round every 15 minutes: a failed or missed send
        # (the monitor was down at the moment) goes out as soon as it can, never twice.
        self.scheduler.add_job(
            self._send_summaries,
            trigger=CronTrigger(day_of_week=settings.day[:3], hour=settings.hour, timezone=zone),
            id="summary",
            name="weekly summary",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self._send_summaries,
            trigger=IntervalTrigger(seconds=_SUMMARY_RETRY.total_seconds(), timezone=UTC),
            id="summary-retry",
            name="weekly summary retries",
            coalesce=True,
            max_instances=1,
        )

    async def _send_summaries(self) -> None:
        assert self._session is not None
        now = self.clock()
        try:
            report = await self.summaries.send_due(self._session)
        except Exception as err:
            message = "weekly summary round failed; the next round retries"
            self.rounds.failed(("summary",), now, err, message)
            return
        self.rounds.succeeded("summary", now)
        if report is not None:
            self.metrics.record_summary_sends(report.sent, report.failed)

    def _add_account(self, account: AccountConfig, now: datetime) -> None:
        assert self._session is not None
        built = build_connector(
            self.context.config,
            account,
            self._session,
            now=now,
            base_url=self.base_url_for(account),
            request_timeout=self.request_timeout,
        )
        if isinstance(built, Unavailable):
            self.unavailable[account.name] = built.reason
            return
        connector, settings = built
        self._settings[account.name] = settings
        self.metrics.prepare_account(
            account.platform, account.name, account.poll_interval.total_seconds()
        )
        name = account.name
        coordinator = PollCoordinator(
            platform=account.platform,
            account=name,
            connector=connector,
            interval=account.poll_interval,
            load_cursor=lambda: self._load_cursor(name),
            store=lambda result, cursor: self._store_poll(account.platform, name, result, cursor),
            clock=self.clock,
            on_record=self._on_record,
        )
        self.coordinators[name] = coordinator

    def _webhook_routes(self) -> list[web.RouteDef]:
        config = self.context.config
        routes: list[web.RouteDef] = []
        if "events" in config.webhooks:
            self.metrics.prepare_webhooks("events")
            hook = EventsHook(
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
            routes += hook.routes()
        if "telegram" in config.webhooks:
            routes += self._telegram_hook().routes()
        if "meta" not in config.webhooks:
            return routes
        secrets = config.resolve_webhook_secrets("meta")
        accounts = {
            (account.platform, account.ids[_META_PLATFORMS[account.platform]]): account.name
            for account in config.accounts.values()
            if account.platform in _META_PLATFORMS
            and _META_PLATFORMS[account.platform] in account.ids
        }
        self.metrics.prepare_webhooks("meta")
        meta = MetaWebhook(
            app_secret=secrets["app_secret"],
            verify_token=secrets["verify_token"],
            accounts=accounts,
            store=self.store_events,
            metrics=self.metrics,
            max_body_bytes=config.webhooks["meta"].max_body_bytes,
            bounds=config.intake,
            clock=self.clock,
        )
        return routes + meta.routes()

    def _telegram_hook(self) -> TelegramWebhook:
        config = self.context.config
        names = [a.name for a in config.accounts.values() if a.platform == "telegram"]
        owners: dict[str, dict[str, str]] = {}
        for name in names:
            ident = self._ids.get(name)
            cursor = {} if ident is None else read_cursor(self.context.engine, ident)
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
        async with self._write_lock:
            await asyncio.to_thread(
                self.ingestor.ingest, [], cursor=("telegram", account, cursor), seen_at=self.clock()
            )

    def _schedule(self, coordinator: PollCoordinator, at: datetime) -> None:
        # One interval job per account: APScheduler keeps the rhythm (with jitter); the
        # coordinator only moves the next run after failures and rate limits.
        interval = coordinator.interval.total_seconds()
        self.scheduler.add_job(
            self._run_poll,
            trigger=IntervalTrigger(
                seconds=interval,
                start_date=at,
                timezone=UTC,
                jitter=interval * coordinator.jitter or None,
            ),
            args=[coordinator],
            id=coordinator.account,
            name=f"poll {coordinator.platform}/{coordinator.account}",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    def _figures_seconds(self) -> float:
        if self.figures_interval is not None:
            return self.figures_interval
        return self.context.config.refresh_interval.total_seconds()

    async def _resume_refreshed_credentials(self) -> None:
        for name, refused in list(self._refused.items()):
            coordinator = self.coordinators[name]
            settings = self._settings[name]
            if not coordinator.paused or not isinstance(settings.secrets, LiveSecrets):
                continue
            if settings.secrets.fingerprint() == refused:
                continue
            del self._refused[name]
            # A fresh connector takes the new token (some connectors keep it from the start).
            async with coordinator.idle():
                await coordinator.connector.aclose()
                connector_class = CONNECTORS[coordinator.platform]
                assert self._session is not None
                coordinator.connector = connector_class(settings, self._session)  # type: ignore[call-arg]
            log.info("credentials of %s/%s changed: polling resumes", coordinator.platform, name)
            self.scheduler.resume_job(name)
            self.scheduler.modify_job(name, next_run_time=self.clock())

    async def _refresh_figures(self) -> None:
        async with self._refresh_lock:
            await self._refresh_figures_now()
        self.figures_ready.set()

    async def _refresh_figures_now(self) -> None:
        if not self.serve_only and not await self._still_the_only_monitor():
            return
        now = self.clock()
        try:
            if self.poll_health is not None:
                # The workers decide outcomes and poll: read their counts from the store.
                await asyncio.to_thread(self.alerts.load)
                await asyncio.to_thread(self.poll_health.refresh)
            await asyncio.to_thread(self.figures.refresh)
        except Exception as err:
            message = "could not refresh the window figures; /metrics keeps the last ones"
            self.rounds.failed(("figures",), now, err, message)
        else:
            self.rounds.succeeded("figures", now)
        try:
            if not self.serve_only:
                assert self._session is not None
                # Never raises: a failed part is counted and logged by self.rounds.
                report = await self.alerts.run(self._session, self._write_lock)
                if report is not None:
                    self.metrics.record_alert_deliveries(report)
        finally:
            # Even after a failed round: large deployments' /metrics is only rendered here.
            await self._render_if_due()

    async def _still_the_only_monitor(self) -> bool:
        # PostgreSQL drops the lock with the session (a server restart): take it again, and
        # stop working if another monitor took it meanwhile, or alerts would go out twice.
        if self.lost_lock is not None:
            return False
        try:
            await asyncio.to_thread(self._lock.verify)
        except InstanceLockError as err:
            self.lost_lock = str(err)
            log.critical("this monitor stops polling and alerting: %s", err)
            self.scheduler.pause()
            return False
        except Exception as err:
            log.warning("could not check the monitor lock (%s); trying again", type(err).__name__)
        return True

    async def _render_if_due(self) -> None:
        if self.exposition.background_due():
            # Large deployments: render here, in the background, not in the scrape.
            await asyncio.to_thread(self.exposition.refresh)

    async def _run_poll(self, coordinator: PollCoordinator) -> None:
        record = await coordinator.poll()
        if not self.scheduler.running or record.outcome is PollOutcome.SUCCESS:
            return
        if record.next_poll_at is None:
            self.scheduler.pause_job(coordinator.account)
        else:
            self.scheduler.modify_job(coordinator.account, next_run_time=record.next_poll_at)

    def _on_record(self, record: PollRecord) -> None:
        if record.outcome is PollOutcome.AUTH:
            secrets = self._settings[record.account].secrets
            if isinstance(secrets, LiveSecrets):
                self._refused[record.account] = secrets.fingerprint()
        self.metrics.record_poll(record)
        for observer in self.observers:
            observer(record)

    async def _load_cursor(self, account: str) -> Mapping[str, str]:
        # This process is the only writer of its accounts' cursors: read each once.
        if account in self._cursors:
            return self._cursors[account]
        account_id = self._ids.get(account)
        if account_id is None:
            return {}
        cursor = await asyncio.to_thread(read_cursor, self.context.engine, account_id)
        self._cursors[account] = cursor
        return cursor

    async def _store_poll(
        self, platform: str, account: str, result: FetchResult, cursor: Mapping[str, str]
    ) -> int:
        stored = await self._writes.store(platform, account, result.events, cursor)
        self._cursors[account] = dict(cursor)
        newest = cursor.get("last_update_at")
        if newest:
            # Platforms that keep no history (Telegram): the age of the newest update shows gaps.
            self.metrics.last_update.labels(platform, account).set(
                datetime.fromisoformat(newest).timestamp()
            )
        return stored

    async def store_events(self, events: Sequence[Event]) -> int:
        """Store pushed events (webhooks); returns how many were new."""
        async with self._write_lock:
            result = await asyncio.to_thread(
                self.ingestor.ingest, list(events), seen_at=self.clock()
            )
        for (platform, account), count in result.stored_by_account.items():
            self.metrics.events_stored.labels(platform, account, "webhook").inc(count)
        return result.stored

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the scheduler runs and the rounds succeed, and each account's polling state.

        Unhealthy when the figures round or a part of the alert round has failed and not
        succeeded for more than GRACE_INTERVALS (3) refresh intervals: the process answers,
        but the figures are stale or no conversation alert goes out.
        """
        running = bool(self.scheduler.running) and self.lost_lock is None
        if self.lost_lock is not None:
            return False, {"status": "stopped", "reason": self.lost_lock}
        failing = self.rounds.unhealthy(("figures", *ALERT_ROUNDS), self.clock())
        status = "ok" if running else "stopped"
        if running and failing:
            status = "failing"
        body: dict[str, Any] = {"status": status}
        if failing:
            body["reason"] = "; ".join(failing)
        body["rounds"] = self.rounds.describe()
        if self.serve_only:
            return running and not failing, {**body, "role": "serve"}
        accounts: dict[str, Any] = {
            name: coordinator.describe() for name, coordinator in self.coordinators.items()
        }
        for name, reason in self.unavailable.items():
            accounts[name] = {"state": "unavailable", "last_error": reason}
        return running and not failing, {
            **body,
            "scheduler": "running" if running else "stopped",
            "accounts": accounts,
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
            async with self._refresh_lock:
                pass  # a refresh round in progress finishes instead of being cancelled
            for coordinator in self.coordinators.values():
                async with coordinator.idle():
                    await coordinator.connector.aclose()
            await self._writes.drain()
            self.scheduler.shutdown(wait=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._lock.release()
