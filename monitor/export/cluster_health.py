"""The cluster's health metrics, read from the database by ``replywatch serve``.

Workers serve no metrics of their own: polls (``poll_state``, ``poll_counts``), alert
deliveries (``alert_outbox``) and weekly summaries (``summary_sends``) are counted from the
tables every worker writes, so every serving replica renders the same numbers, Prometheus
may scrape any of them, and the rules see one series per account. Names, help texts and
labels are those of the table (``monitor.export.specs``, the families marked
``from_database``), the same the process registry of ``replywatch run`` uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from monitor.core.polls import PollOutcome, shown_state
from monitor.export import specs
from monitor.export.specs import MetricSpec
from monitor.store.accounts import account_names
from monitor.store.tables import OUTBOX, POLL_COUNTS, POLL_STATE, SENDS

__all__ = ["ClusterHealth"]

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
    # The last poll that ended, or (never polled) when the first was due.
    last_attempt: float | None = None


class ClusterHealth(Collector):
    """Polls, account states, alert deliveries and summary sends of the whole cluster."""

    def __init__(
        self,
        engine: Engine,
        intervals: dict[str, float],
        account_details: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.intervals = intervals
        self.clock = clock
        # [metrics] account_details: each account's last poll duration.
        self.account_details = account_details
        self._rows: list[_Row] = []
        # (platform, outcome) -> polls, summed over the platform's accounts.
        self._counts: dict[tuple[str, str], int] = {}
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
                    (attempt or due).timestamp(),
                )
                for ident, state, success, duration, quota, missed, attempt, due in (
                    connection.execute(
                        select(
                            s.account_id,
                            s.state,
                            s.last_success_at,
                            s.last_duration_seconds,
                            s.quota_used,
                            s.missed_items,
                            s.last_poll_at,
                            s.next_poll_at,
                        )
                    )
                )
                if int(ident) in who
            ]
            deliveries = _read_deliveries(connection)
            counts = {(platform, o.value): 0 for platform, _ in who.values() for o in PollOutcome}
            for ident, outcome, polls in connection.execute(
                select(c.account_id, c.outcome, c.polls)
            ):
                if int(ident) in who:
                    key = (who[int(ident)][0], outcome)
                    counts[key] = counts.get(key, 0) + int(polls)
        rows = [self._stale_or_not(row, self.clock().timestamp()) for row in rows]
        with self._lock:
            self._rows, self._counts, self._deliveries = rows, counts, deliveries

    def _stale_or_not(self, row: _Row, now: float) -> _Row:
        # As Metrics.mark_stale, from what the workers wrote: stuck or gone workers show.
        interval = self.intervals.get(row.account)
        if interval is None or row.last_attempt is None:
            return row
        return replace(row, state=shown_state(row.state, row.last_attempt, interval, now))

    def describe(self) -> Iterable[Metric]:
        """Registration must never query: describe with empty families."""
        return [_family(spec) for spec in _FAMILIES if self._exported(spec)]

    def collect(self) -> Iterable[Metric]:
        """The families, in the names and labels ``replywatch run`` uses."""
        with self._lock:
            rows, counts, deliveries = self._rows, self._counts, self._deliveries
        polls = _counter(specs.POLLS)
        state = _gauge(specs.ACCOUNT_STATE)
        success = _gauge(specs.LAST_SUCCESSFUL_POLL)
        duration = _gauge(specs.LAST_POLL_DURATION)
        quota = _gauge(specs.QUOTA_USED)
        missed = _counter(specs.MISSED_ITEMS)
        interval = _gauge(specs.POLL_INTERVAL)
        for (platform, outcome), count in sorted(counts.items()):
            polls.add_metric([platform, outcome], count)
        for row in rows:
            labels = [row.platform, row.account]
            # One series per account, as the process registry keeps it (Metrics.set_state).
            state.add_metric([*labels, row.state], 1.0)
            if row.last_success is not None and self.account_details:
                success.add_metric(labels, row.last_success)
            if row.last_duration is not None and self.account_details:
                duration.add_metric(labels, row.last_duration)
            if row.quota_used is not None:
                quota.add_metric(labels, row.quota_used)
            if row.missed_items:
                missed.add_metric(labels, row.missed_items)
            if row.account in self.intervals and self.account_details:
                interval.add_metric(labels, self.intervals[row.account])
        families = [polls, state, success, duration, quota, missed, interval]
        on = {spec.name for spec in _FAMILIES if self._exported(spec)}
        return [family for family in families if family.name in on] + deliveries.families()

    def _exported(self, spec: MetricSpec) -> bool:
        # The process registry's rule (Metrics.apply): account_details families only when on.
        return spec.detail is None or self.account_details


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
        alerts = _counter(specs.ALERT_DELIVERIES)
        alerts.add_metric(["delivered"], self.delivered)
        alerts.add_metric(["failed"], self.failed_attempts)
        pending = _gauge(specs.ALERT_OUTBOX_PENDING)
        pending.add_metric([], self.pending)
        summaries = _counter(specs.SUMMARY_SENDS)
        summaries.add_metric(["sent"], self.sent)
        summaries.add_metric(["failed"], self.failed_sends)
        return [alerts, pending, summaries]


# The families collect() yields, in its order: those of the table read from the database.
_FAMILIES = (
    specs.POLLS,
    specs.ACCOUNT_STATE,
    specs.LAST_SUCCESSFUL_POLL,
    specs.LAST_POLL_DURATION,
    specs.QUOTA_USED,
    specs.MISSED_ITEMS,
    specs.POLL_INTERVAL,
    specs.ALERT_DELIVERIES,
    specs.ALERT_OUTBOX_PENDING,
    specs.SUMMARY_SENDS,
)


def _counter(spec: MetricSpec) -> CounterMetricFamily:
    if spec.type != "counter":
        raise ValueError(f"{spec.name} is a {spec.type}, not a counter")
    return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    if spec.type != "gauge":
        raise ValueError(f"{spec.name} is a {spec.type}, not a gauge")
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def _family(spec: MetricSpec) -> Metric:
    return _counter(spec) if spec.type == "counter" else _gauge(spec)


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
