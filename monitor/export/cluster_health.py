"""The cluster's health metrics, read from the database by ``replywatch serve``.

Workers serve no metrics of their own: polls (``poll_state``, ``poll_counts``), alert
deliveries (``alert_outbox``) and weekly summaries (``summary_sends``) are counted from the
tables every worker writes, so every serving replica renders the same numbers, Prometheus
may scrape any of them, and the rules see one series per account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from monitor.core.polls import AccountState, PollOutcome
from monitor.polling.cluster.poll_state import POLL_COUNTS, POLL_STATE
from monitor.store.accounts import account_names
from monitor.store.tables import OUTBOX, SENDS

__all__ = ["ClusterHealth"]

_LABELS = ["platform", "account"]
SUMMARIES = SENDS


@dataclass(frozen=True, slots=True)
class _Row:
    platform: str
    account: str
    state: str
    last_success: float | None
    last_duration: float | None
    quota_used: float | None
    missed_items: int


class ClusterHealth(Collector):
    """Polls, account states, alert deliveries and summary sends of the whole cluster."""

    def __init__(self, engine: Engine, intervals: dict[str, float]) -> None:
        self.engine = engine
        self.intervals = intervals
        self._rows: list[_Row] = []
        self._counts: dict[tuple[str, str], dict[str, int]] = {}
        self._deliveries = _Deliveries(0, 0, 0, 0, 0)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the shared poll state (call from a worker thread)."""
        s, c = POLL_STATE.c, POLL_COUNTS.c
        with self.engine.connect() as connection:
            who = account_names(connection)
            rows = [
                _Row(
                    *who[int(ident)],
                    state,
                    success.timestamp() if success else None,
                    duration,
                    quota,
                    int(missed),
                )
                for ident, state, success, duration, quota, missed in connection.execute(
                    select(
                        s.account_id,
                        s.state,
                        s.last_success_at,
                        s.last_duration_seconds,
                        s.quota_used,
                        s.missed_items,
                    )
                )
                if int(ident) in who
            ]
            deliveries = _read_deliveries(connection)
            counts: dict[tuple[str, str], dict[str, int]] = {}
            for ident, outcome, polls in connection.execute(
                select(c.account_id, c.outcome, c.polls)
            ):
                if int(ident) in who:
                    counts.setdefault(who[int(ident)], {})[outcome] = int(polls)
        with self._lock:
            self._rows, self._counts, self._deliveries = rows, counts, deliveries

    def collect(self) -> Iterable[Metric]:
        """The families, in the names and labels ``replywatch run`` uses."""
        with self._lock:
            rows, counts, deliveries = self._rows, self._counts, self._deliveries
        polls = CounterMetricFamily(
            "replywatch_polls", "Polls by outcome.", labels=[*_LABELS, "outcome"]
        )
        state = GaugeMetricFamily(
            "replywatch_account_state",
            "1 for the polling state the account is in (ok, failing, rate_limited, "
            "auth_failed, starting), 0 for the others.",
            labels=[*_LABELS, "state"],
        )
        success = GaugeMetricFamily(
            "replywatch_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll.",
            labels=_LABELS,
        )
        duration = GaugeMetricFamily(
            "replywatch_last_poll_duration_seconds",
            "How long the account's last poll took, fetch and store.",
            labels=_LABELS,
        )
        quota = GaugeMetricFamily(
            "replywatch_platform_quota_used_ratio",
            "The platform's own usage figure for this account's credentials (0-1).",
            labels=_LABELS,
        )
        missed = CounterMetricFamily(
            "replywatch_connector_missed_items",
            "Items the platform would not show in full (they may be missing from figures).",
            labels=_LABELS,
        )
        interval = GaugeMetricFamily(
            "replywatch_poll_interval_seconds",
            "How often the account is polled when all is well.",
            labels=_LABELS,
        )
        for row in rows:
            labels = [row.platform, row.account]
            done = counts.get((row.platform, row.account), {})
            for outcome in PollOutcome:
                polls.add_metric([*labels, outcome.value], done.get(outcome.value, 0))
            for each in AccountState:
                state.add_metric([*labels, each.value], float(each.value == row.state))
            if row.last_success is not None:
                success.add_metric(labels, row.last_success)
            if row.last_duration is not None:
                duration.add_metric(labels, row.last_duration)
            if row.quota_used is not None:
                quota.add_metric(labels, row.quota_used)
            missed.add_metric(labels, row.missed_items)
            if row.account in self.intervals:
                interval.add_metric(labels, self.intervals[row.account])
        return [polls, state, success, duration, quota, missed, interval, *deliveries.families()]


@dataclass(frozen=True, slots=True)
class _Deliveries:
    """Alert notifications and weekly summaries, counted from their tables."""

    delivered: int
    failed_attempts: int
    pending: int
    sent: int
    failed_sends: int

    def families(self) -> list[Metric]:
        """The families ``replywatch run`` counts in memory, with the same names."""
        alerts = CounterMetricFamily(
            "replywatch_alert_deliveries",
            "Per-conversation alert deliveries by result (failed ones are retried).",
            labels=["result"],
        )
        alerts.add_metric(["delivered"], self.delivered)
        alerts.add_metric(["failed"], self.failed_attempts)
        pending = GaugeMetricFamily(
            "replywatch_alert_outbox_pending", "Alert notifications stored but not yet delivered."
        )
        pending.add_metric([], self.pending)
        summaries = CounterMetricFamily(
            "replywatch_summary_sends",
            "Weekly summaries (mails and chat digests) by result; failed ones are retried.",
            labels=["result"],
        )
        summaries.add_metric(["sent"], self.sent)
        summaries.add_metric(["failed"], self.failed_sends)
        return [alerts, pending, summaries]


def _read_deliveries(connection: Connection) -> _Deliveries:
    # Every attempt that did not deliver is a failure; a delivered one failed attempts - 1 times.
    o, m = OUTBOX.c, SUMMARIES.c
    delivered, attempts, pending = connection.execute(
        select(
            func.count(o.delivered_at),
            func.coalesce(func.sum(o.attempts), 0),
            func.count() - func.count(o.delivered_at),
        )
    ).one()
    sent, tries = connection.execute(
        select(func.count(m.sent_at), func.coalesce(func.sum(m.attempts), 0))
    ).one()
    return _Deliveries(
        int(delivered),
        int(attempts) - int(delivered),
        int(pending),
        int(sent),
        int(tries) - int(sent),
    )
