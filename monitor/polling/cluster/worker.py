"""``replywatch worker``: one of any number of processes sharing the accounts' polls.

Every worker builds a connector for every configured account, but polls an account only
when it runs that account's poll job. Three tasks run on the shared procrastinate queue:

* ``tick`` (periodic, deferred once per tick for the whole cluster): releases the jobs of
  workers that stopped sending heartbeats and ends the database sessions they left inside a
  transaction (``monitor.polling.cluster.fencing``), then defers one poll job per due account. The
  job's lock is the account, so two polls of one account never run at once; its queueing
  lock is the account too, so at most one waits in the queue.
* ``poll``: takes the account's lease, polls it through the same :class:`PollingHost` as
  ``replywatch run`` (backoff, rate limits, auth pauses), stores events and cursor only
  while it holds the lease (:class:`LeasedWriter`), and records when to poll next.
* ``refresh`` (periodic, one at a time): vacuums the queue's tables, then runs the rounds the
  service layer gives the worker (``monitor.service.worker``: SLI outcomes, alerts and weekly
  summaries, as ``replywatch run`` does after each figures refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import Job, Status
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import FetchResult
from monitor.config.loading import AccountConfig
from monitor.polling.cluster import poll_state
from monitor.polling.cluster.fencing import end_stalled_sessions
from monitor.polling.cluster.queue import (
    QUEUE,
    build_queue_app,
    cron_every,
    ensure_queue_schema,
    tidy_queue_tables,
)
from monitor.polling.coordinator import RecordedSchedule
from monitor.polling.host import PollingHost
from monitor.store.context import AppContext
from monitor.store.cursors import read_cursor
from monitor.store.ingest import Ingestor

__all__ = ["ClusterWorker", "LeasedWriter", "WorkerSettings"]

log = logging.getLogger("monitor.cluster")
# One record when a poll job takes its account and one when it ends (DEBUG; `worker
# --poll-log FILE` writes them as JSON lines): a start without an end is a poll cut off.
poll_log = logging.getLogger("monitor.cluster.polls")
# The worker's rounds after the queue is tidied (alerts, summaries): composed by the service.
Rounds = Callable[[aiohttp.ClientSession], Awaitable[None]]

_POLL_TASK = "replywatch.poll"
_CONTROL_PRIORITY = 10  # the tick and the refresh go before waiting polls


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker shares the work; every worker of a cluster should use the same values."""

    concurrency: int = 50
    tick_seconds: float = 2.0
    # A worker silent this long is taken for dead and its running jobs are released.
    stalled_after: float = 30.0
    heartbeat_seconds: float = 5.0
    # How long a taken account waits for its poll before another tick may take it again.
    hold: timedelta = timedelta(seconds=60)
    first_poll_spread: float = 5.0
    request_timeout: float = 30.0


class LeasedWriter:
    """Stores a worker's polls only while their job holds the account's lease."""

    def __init__(
        self,
        ingestor: Ingestor,
        clock: Callable[[], datetime],
        account_ids: Mapping[str, int],
        leases: Mapping[str, int],
    ) -> None:
        self.ingestor = ingestor
        self.clock = clock
        self.account_ids = account_ids
        self.leases = leases
        # The cursor each account's running poll started from.
        self._loaded: dict[str, dict[str, str]] = {}

    async def load_cursor(self, account: str) -> Mapping[str, str]:
        """Read every time: the last poll may have run on another worker."""
        engine = self.ingestor.engine
        cursor = await asyncio.to_thread(read_cursor, engine, self.account_ids[account])
        self._loaded[account] = cursor
        return cursor

    async def store(
        self, platform: str, account: str, result: FetchResult, cursor: Mapping[str, str]
    ) -> int:
        """Store the poll in one transaction that first checks the lease (a fence)."""
        account_id, job_id = self.account_ids[account], self.leases[account]
        if not result.events and dict(cursor) == self._loaded.get(account):
            # Nothing new and the cursor did not move (most polls): nothing to write.
            return 0

        def guard(connection: Any) -> None:
            poll_state.check_lease(connection, account_id, job_id)

        stored = await asyncio.to_thread(
            self.ingestor.ingest,
            result.events,
            cursor=(platform, account, cursor),
            seen_at=self.clock(),
            guard=guard,
        )
        return stored.stored

    async def drain(self) -> None:
        """Each poll's transaction ends before its job does: nothing is in flight."""


@dataclass
class ClusterWorker:
    """One worker process: the procrastinate worker plus the accounts' coordinators."""

    context: AppContext
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    base_url_for: Callable[[AccountConfig], str | None] = lambda account: account.base_url
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Run by the periodic refresh task after the queue is tidied (monitor.service.worker).
    rounds: Rounds | None = None

    def __post_init__(self) -> None:
        # Several processes write: no in-memory shortcut over what is stored (monitor.store.recent).
        self.ingestor = Ingestor(
            self.context.engine, self.context.accounts, keep_text=self.context.config.store_excerpts
        )
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._ids: dict[str, int] = {}
        self._leases: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self.polling = PollingHost(
            self.context.config,
            LeasedWriter(self.ingestor, self.clock, self._ids, self._leases),
            # The next poll time goes to poll_state with the outcome (poll_state.finish).
            RecordedSchedule(),
            clock=self.clock,
            base_url_for=self.base_url_for,
            request_timeout=self.settings.request_timeout,
        )
        self.app = self._build_app()

    def _build_app(self) -> App:
        s = self.settings
        app = build_queue_app(
            self.context.engine,
            pool_size=min(20, s.concurrency + 2),
            idle_transaction_seconds=s.stalled_after,
        )

        @app.periodic(cron=cron_every(s.tick_seconds))
        @app.task(
            name="replywatch.tick", queue=QUEUE, queueing_lock="tick", priority=_CONTROL_PRIORITY
        )
        async def tick(timestamp: int) -> int:
            return await self.tick()

        @app.task(name=_POLL_TASK, queue=QUEUE, pass_context=True)
        async def poll(context: JobContext, account: str, deferred_at: str) -> str:
            assert context.job.id is not None
            return await self.poll(context.job.id, account, datetime.fromisoformat(deferred_at))

        refresh_every = self.context.config.refresh_interval.total_seconds()

        @app.periodic(cron=cron_every(refresh_every))
        @app.task(
            name="replywatch.refresh",
            queue=QUEUE,
            lock="refresh",
            queueing_lock="refresh",
            priority=_CONTROL_PRIORITY,
        )
        async def refresh(timestamp: int) -> None:
            await self.refresh()

        return app

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; running polls finish (and store) before it returns."""
        await asyncio.to_thread(ensure_queue_schema, self.context.engine)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)
        )
        try:
            await self._start_accounts()
            async with self.app.open_async():
                await self._work_until(stop)
        finally:
            await self.polling.close()
            await self._session.close()

    async def _start_accounts(self) -> None:
        assert self._session is not None
        config = self.context.config
        now = self.clock()
        with self.context.engine.connect() as connection:
            self._ids.update(
                {
                    name: ident
                    for (_platform, name), ident in self.context.accounts.ensure(
                        connection, {(a.platform, a.name) for a in config.accounts.values()}
                    ).items()
                }
            )
            connection.commit()
        self.polling.open(self._session, now)
        polled = [self._ids[name] for name in self.polling.coordinators]
        await asyncio.to_thread(
            poll_state.enroll, self.context.engine, polled, now, self.settings.first_poll_spread
        )
        self._polled_ids = polled

    async def _work_until(self, stop: asyncio.Event) -> None:
        s = self.settings
        while not stop.is_set():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    name=self.name,
                    concurrency=s.concurrency,
                    install_signal_handlers=False,
                    delete_jobs="always",
                    update_heartbeat_interval=s.heartbeat_seconds,
                    # A job that waited behind a released lock gets no notification when
                    # it becomes free: look for work at least every tick.
                    fetch_job_polling_interval=s.tick_seconds,
                    stalled_worker_timeout=s.stalled_after,
                    shutdown_graceful_timeout=s.request_timeout * 4,
                )
            )
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                # Cancelling asks procrastinate for a graceful stop: running jobs finish.
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
                return
            stopping.cancel()
            error = worker.exception()
            # A worker whose registration was pruned while it was frozen fails its next
            # fetch: start again under a new registration instead of dying.
            log.error("the job worker stopped (%s); starting it again", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=s.heartbeat_seconds)

    async def tick(self) -> int:
        """Release stalled jobs and sessions, then defer a poll job for every due account."""
        await self._release_stalled()
        stalled_after = timedelta(seconds=self.settings.stalled_after)
        await asyncio.to_thread(end_stalled_sessions, self.context.engine, stalled_after)
        due, at = await asyncio.to_thread(
            poll_state.take_due, self.context.engine, self._polled_ids, self.settings.hold
        )
        names = {ident: name for name, ident in self._ids.items()}
        jobs = [
            Job(
                queue=QUEUE,
                lock=poll_state.poll_lock(ident),
                queueing_lock=poll_state.poll_lock(ident),
                task_name=_POLL_TASK,
                task_kwargs={"account": names[ident], "deferred_at": at.isoformat()},
            )
            for ident in due
        ]
        if not jobs:
            return 0
        manager = self.app.job_manager
        try:
            await manager.batch_defer_jobs_async(jobs)
        except AlreadyEnqueued:
            # One account still has a job waiting (the workers are behind): defer the others
            # one by one; the waiting job polls that account.
            for job in jobs:
                try:
                    await manager.defer_job_async(job)
                except AlreadyEnqueued:
                    continue
        return len(jobs)

    async def _release_stalled(self) -> None:
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=self.settings.stalled_after
        )
        for job in stalled:
            assert job.id is not None
            try:
                # Not retried: the account becomes due again and the next tick defers it.
                await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=True)
            except ConnectorException as err:  # another tick released it first
                log.debug("stalled job %s already released: %s", job.id, err)
                continue
            log.warning(
                "released %s job %s: worker %s sent no heartbeat for %.0f s",
                job.task_name,
                job.id,
                job.worker_id,
                self.settings.stalled_after,
            )

    async def poll(self, job_id: int, account: str, deferred_at: datetime) -> str:
        """Run one account's poll job; returns what happened (for procrastinate's log)."""
        coordinator = self.polling.coordinators.get(account)
        if coordinator is None:
            log.warning(
                "poll job for %s, which this worker cannot poll; is its config the same?",
                account,
                extra={"event": "poll_job_unknown_account", "account": account},
            )
            return "unknown account"
        account_id = self._ids[account]
        engine, hold = self.context.engine, self.settings.hold
        claimed = await asyncio.to_thread(
            poll_state.claim, engine, account_id, job_id, deferred_at, hold
        )
        if claimed is None:
            return "not due"
        started = claimed.at
        self._log_poll("poll_started", account, job_id, at=started.isoformat())
        coordinator.restore(claimed.state, claimed.failures, claimed.last_success)
        self._leases[account] = job_id
        record = await coordinator.poll()
        try:
            given_back = await asyncio.to_thread(
                poll_state.finish,
                engine,
                account_id,
                job_id,
                record,
                failures=coordinator.failures,
                error=coordinator.last_error,
            )
        except SQLAlchemyError as err:
            # The store went away while the outcome was written (a frozen worker's session
            # is ended by the server): the hold runs out and the account is handed out again.
            log.warning(
                "could not record the poll of %s: %s",
                account,
                type(err).__name__,
                extra={"event": "poll_unrecorded", "account": account},
            )
            given_back = None
        committed = given_back is not None
        finished = given_back or self.clock()
        if not committed:
            log.warning(
                "poll job %s of %s lost the account to a newer job (this worker was stalled): "
                "its outcome is not recorded",
                job_id,
                account,
                extra={"event": "poll_lease_lost", "account": account},
            )
        self._log_poll(
            "poll_ended",
            account,
            job_id,
            started=started.isoformat(),
            finished=finished.isoformat(),
            outcome=record.outcome.value,
            committed=committed,
        )
        return record.outcome.value

    async def refresh(self) -> None:
        """Tidy the queue, then run the worker's rounds (one worker at a time)."""
        assert self._session is not None
        try:
            await asyncio.to_thread(tidy_queue_tables, self.context.engine)
        except SQLAlchemyError as err:  # the polls go on; a slower fetch is no reason to stop
            log.warning(
                "could not vacuum the queue's tables: %s",
                type(err).__name__,
                extra={"event": "queue_tidy_failed"},
            )
        if self.rounds is not None:
            await self.rounds(self._session)

    def _log_poll(self, event: str, account: str, job: int, **fields: object) -> None:
        if poll_log.isEnabledFor(logging.DEBUG):
            poll_log.debug(
                "%s %s job %s",
                event,
                account,
                job,
                extra={
                    "event": event,
                    "account": account,
                    "job": job,
                    "worker": self.name,
                    **fields,
                },
            )
