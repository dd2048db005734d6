"""``replywatch worker`` composed: the cluster's polling worker with the alert and summary rounds.

The worker (``monitor.polling.cluster.worker``) shares the accounts' polls with the other
workers; its periodic refresh task, which runs on one worker at a time, decides SLI outcomes,
delivers conversation alerts and sends due weekly summaries, as ``replywatch run`` does after
each figures refresh. Those rounds live in the layers above polling, so they are wired here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from monitor.config.loading import AccountConfig
from monitor.notify.alert_cycle import AlertCycle
from monitor.notify.receivers import build_receivers
from monitor.polling.cluster.worker import ClusterWorker, WorkerSettings
from monitor.store.context import AppContext
from monitor.summary.delivery import SummaryMailer

__all__ = ["WorkerRounds", "build_worker"]

log = logging.getLogger("monitor.cluster")


@dataclass
class WorkerRounds:
    """What the worker holding the refresh task does: outcomes, alerts, weekly summaries."""

    alerts: AlertCycle
    summaries: SummaryMailer | None

    async def __call__(self, session: aiohttp.ClientSession) -> None:
        """Run the rounds; a failed one is logged and the next refresh retries it."""
        try:
            await self.alerts.run(session, asyncio.Lock())
        except Exception:  # a round isolates its failure: the polls and the summary go on
            log.exception(
                "alert round failed; the next round retries", extra={"event": "round_failed"}
            )
        if self.summaries is None:
            return
        try:
            await self.summaries.send_due(session)
        except Exception:  # a round isolates its failure: the next refresh retries the send
            log.exception(
                "weekly summary round failed; the next round retries",
                extra={"event": "round_failed"},
            )


def build_worker(
    context: AppContext,
    settings: WorkerSettings,
    *,
    base_url_for: Callable[[AccountConfig], str | None] = lambda account: account.base_url,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ClusterWorker:
    """A cluster worker whose refresh task runs the alert and summary rounds."""
    config = context.config
    receivers = build_receivers(config)
    summaries = None
    if config.summary.enabled and (config.summary.recipients or config.summary.digest_receivers):
        summaries = SummaryMailer(context.engine, context.accounts, config, receivers, clock)
    alerts = AlertCycle(context.engine, context.accounts, receivers, clock)
    rounds = WorkerRounds(alerts, summaries)
    return ClusterWorker(context, settings, base_url_for=base_url_for, clock=clock, rounds=rounds)
