"""The process registry: the metrics of monitor.export.specs this process counts itself.

The names, help texts, labels and buckets come from the one table (``specs``); this module
builds the prometheus_client objects on a registry the app builds (style rule 8) and keeps the
hot paths' labelled children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from monitor.config.schema import MetricsModel
from monitor.core.polls import AccountState, PollOutcome, PollRecord, shown_state
from monitor.core.profiles import Profile
from monitor.export import specs
from monitor.export.specs import (
    ALERT_DELIVERY_RESULTS,
    CONNECTION_CLOSES,
    SUMMARY_SEND_RESULTS,
    WEBHOOK_OUTCOMES,
    Detail,
    Exporter,
    MetricSpec,
)

__all__ = ["CONNECTION_CLOSES", "WEBHOOK_OUTCOMES", "DeliveryCounts", "Metrics"]

# No `<name>_created` series: they double a counter's or histogram's series count (ten per
# account), nothing reads them, and Prometheus' own rate() needs no start time. The setting
# is prometheus_client's, for the whole process: every registry replywatch renders is ours.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The connector-health and intake metrics, registered on one registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_registry: CollectorRegistry | None = None,
        settings: MetricsModel | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        # Which families beyond the default budget this process exports ([metrics]).
        self.account_details = False
        # Families behind a [metrics] switch, registered only while it is on.
        self._switched: dict[MetricSpec, Gauge] = {}
        self._registered: set[MetricSpec] = set()
        # The polling families (Exporter.POLLING: polls, alert deliveries, summary sends).
        # ``replywatch serve`` exports the whole cluster's from the database instead, and
        # passes a registry nobody renders for these.
        self._polling_registry = process_registry or self.registry
        # Created in the table's order, which is the order a scrape lists them in.
        self.polls = self._counter(specs.POLLS)
        self.poll_duration = self._histogram(specs.POLL_DURATION)
        self.last_poll_duration = self._gauge(specs.LAST_POLL_DURATION)
        self.last_success = self._gauge(specs.LAST_SUCCESSFUL_POLL)
        self.events_stored = self._counter(specs.EVENTS_STORED)
        self.missed = self._counter(specs.MISSED_ITEMS)
        self.quota_used = self._gauge(specs.QUOTA_USED)
        self.last_update = self._gauge(specs.LAST_UPDATE)
        self.poll_interval = self._gauge(specs.POLL_INTERVAL)
        self.account_state = self._gauge(specs.ACCOUNT_STATE)
        # Keyed by what follows "replywatch_target_": "warn_after_seconds", "rate_ratio", ...
        self.targets = {
            spec.name.removeprefix(f"{specs.PREFIX}_target_"): self._gauge(spec)
            for spec in specs.TARGETS
        }
        self.profile_min_waits = self._gauge(specs.PROFILE_MIN_WAITS)
        self.alert_deliveries = self._counter(specs.ALERT_DELIVERIES)
        self.alert_outbox_pending = self._gauge(specs.ALERT_OUTBOX_PENDING)
        for result in ALERT_DELIVERY_RESULTS:
            self.alert_deliveries.labels(result)
        self.summary_sends = self._counter(specs.SUMMARY_SENDS)
        for result in SUMMARY_SEND_RESULTS:
            self.summary_sends.labels(result)
        self.round_failures = self._counter(specs.ROUND_FAILURES)
        self.round_last_success = self._gauge(specs.ROUND_LAST_SUCCESS)
        self.round_interval = self._gauge(specs.ROUND_INTERVAL)
        self.events_rejected = self._counter(specs.EVENTS_REJECTED)
        self._accounts: dict[tuple[str, str], _AccountSeries] = {}
        # The state label each account's one series has now (an AccountState's, or stale).
        self._states: dict[tuple[str, str], str] = {}
        self._polled: dict[tuple[str, str], AccountState] = {}
        # (interval, last success or first seen, as Unix time): when an account goes stale.
        self._freshness: dict[tuple[str, str], tuple[float, float | None]] = {}
        self.webhooks = self._counter(specs.WEBHOOK_DELIVERIES)
        self.connections_closed = self._counter(specs.HTTP_CONNECTIONS_CLOSED)
        for reason in CONNECTION_CLOSES:
            self.connections_closed.labels(reason)
        self.apply(settings or MetricsModel())

    def apply(self, settings: MetricsModel) -> None:
        """Take the config's ``[metrics]`` switches (before any account is prepared)."""
        self.account_details = settings.account_details
        for spec, family in self._switched.items():
            # The process registry holds only account_details families (the table says so).
            on = spec.detail is Detail.ACCOUNT and settings.account_details
            if on and spec not in self._registered:
                self._registry_of(spec).register(family)
                self._registered.add(spec)
            elif not on and spec in self._registered:
                self._registry_of(spec).unregister(family)
                self._registered.discard(spec)

    def prepare_account(
        self, platform: str, account: str, interval: float | None = None
    ) -> _AccountSeries:
        """Create an account's series (the platform's counters at zero, so rates exist)."""
        key = (platform, account)
        series = self._accounts.get(key)
        if interval is not None:
            last = self._freshness.get(key, (interval, None))[1]
            self._freshness[key] = (interval, last)
            if self.account_details:
                self.poll_interval.labels(platform, account).set(interval)
        if series is None:
            series = self._accounts[key] = _AccountSeries(
                polls={o: self.polls.labels(platform, o.value) for o in PollOutcome},
                duration=self.poll_duration.labels(platform),
                last_duration=(
                    self.last_poll_duration.labels(platform, account)
                    if self.account_details
                    else None
                ),
                stored_by_poll=self.events_stored.labels(platform, "poll"),
            )
            self.set_state(platform, account, AccountState.STARTING)
        return series

    def set_targets(self, platform: str, account: str, profile: Profile) -> None:
        """Export an account's targets, so alert rules compare against the config."""
        targets = profile.targets
        values = {
            "response_seconds": targets.response_target.total_seconds(),
            "rate_ratio": targets.rate_target,
        }
        if self.account_details:
            values |= {
                "warn_after_seconds": targets.warn_after.total_seconds(),
                "reply_deadline_seconds": targets.reply_deadline.total_seconds(),
                "escalate_after_seconds": targets.escalate_after.total_seconds(),
            }
        for kind, value in values.items():
            self.targets[kind].labels(platform, account, profile.name).set(value)
        self.profile_min_waits.labels(profile.name).set(profile.min_waits)

    def set_state(self, platform: str, account: str, state: AccountState) -> None:
        """Mark the account's current polling state: one series, its label the state."""
        self._polled[(platform, account)] = state
        self._show_state(platform, account, state.value)

    def mark_stale(self, now: float) -> None:
        """Show ``stale`` for accounts no poll has ended for in three intervals (each round).

        A poll that fails sets its own state; this catches the poller that stopped polling
        at all, which no poll outcome can report.
        """
        for key, (interval, last) in self._freshness.items():
            if last is None:
                # Never polled yet: count from the first round that sees the account.
                self._freshness[key] = (interval, now)
                continue
            polled = self._polled.get(key, AccountState.STARTING)
            self._show_state(*key, shown_state(polled.value, last, interval, now))

    def _show_state(self, platform: str, account: str, state: str) -> None:
        previous = self._states.get((platform, account))
        if previous == state:
            return
        self._states[(platform, account)] = state
        if previous is not None:
            self.account_state.remove(platform, account, previous)
        self.account_state.labels(platform, account, state).set(1)

    def record_alert_deliveries(self, report: DeliveryCounts) -> None:
        """Count one delivery round of the alert outbox."""
        self.alert_deliveries.labels("delivered").inc(report.delivered)
        self.alert_deliveries.labels("failed").inc(report.failed)
        self.alert_deliveries.labels("refused").inc(report.refused)
        self.alert_outbox_pending.set(report.pending)

    def record_summary_sends(self, sent: int, failed: int) -> None:
        """Count one round of weekly summary sends."""
        self.summary_sends.labels("sent").inc(sent)
        self.summary_sends.labels("failed").inc(failed)

    def prepare_webhooks(self, route: str) -> None:
        """Create the zero-valued webhook series of a route."""
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels(route, outcome)

    def record_poll(self, record: PollRecord) -> None:
        """Count one finished poll."""
        # labels() validates and hashes on every call; polls are hot, so children are kept.
        series = self.prepare_account(record.platform, record.account)
        series.polls[record.outcome].inc()
        key = (record.platform, record.account)
        if key in self._freshness:
            # Any poll that ended shows the poller alive; its outcome has a state of its own.
            self._freshness[key] = (self._freshness[key][0], record.started_at.timestamp())
        self.set_state(record.platform, record.account, record.state)
        series.duration.observe(record.duration_s)
        if series.last_duration is not None:
            series.last_duration.set(record.duration_s)
        labels = (record.platform, record.account)
        if record.outcome is PollOutcome.SUCCESS:
            if self.account_details:
                # Created on first success: a missing series means "never", not 1970.
                at = record.started_at.timestamp() + record.duration_s
                self.last_success.labels(*labels).set(at)
            series.stored_by_poll.inc(record.stored)
        if record.missed:
            # Created at the first missed item: most accounts never have one.
            self.missed.labels(*labels).inc(record.missed)
        if record.quota_used is not None:
            # Only when the platform reported usage: absent means unknown, not zero.
            self.quota_used.labels(*labels).set(record.quota_used)

    def _registry_of(self, spec: MetricSpec) -> CollectorRegistry:
        if spec.exporter is Exporter.POLLING:
            return self._polling_registry
        if spec.exporter is Exporter.PROCESS:
            return self.registry
        raise ValueError(f"{spec.name} is exported by {spec.exporter}, not the process registry")

    def _counter(self, spec: MetricSpec) -> Counter:
        _expect(spec, "counter")
        return Counter(spec.name, spec.help, spec.labels, registry=self._registry_of(spec))

    def _gauge(self, spec: MetricSpec) -> Gauge:
        _expect(spec, "gauge")
        if spec.detail is None:
            return Gauge(spec.name, spec.help, spec.labels, registry=self._registry_of(spec))
        # Not registered until apply() finds its switch on.
        family = self._switched[spec] = Gauge(spec.name, spec.help, spec.labels, registry=None)
        return family

    def _histogram(self, spec: MetricSpec) -> Histogram:
        _expect(spec, "histogram")
        if spec.buckets is None:
            raise ValueError(f"{spec.name}: the process registry needs fixed buckets")
        return Histogram(
            spec.name,
            spec.help,
            spec.labels,
            buckets=spec.buckets,
            registry=self._registry_of(spec),
        )


def _expect(spec: MetricSpec, kind: str) -> None:
    if spec.type != kind:
        raise ValueError(f"{spec.name} is a {spec.type}, not a {kind}")


class DeliveryCounts(Protocol):
    """What one delivery round of the alert outbox did (monitor.notify.outbox.DeliveryReport)."""

    @property
    def delivered(self) -> int:
        """Alerts delivered."""

    @property
    def failed(self) -> int:
        """Deliveries that failed and stay in the outbox."""

    @property
    def refused(self) -> int:
        """Re-sent firing alerts Alertmanager refused for their content."""

    @property
    def pending(self) -> int:
        """Deliveries still waiting in the outbox."""


@dataclass(frozen=True, slots=True)
class _AccountSeries:
    """One account's labelled children of the poll metrics."""

    polls: dict[PollOutcome, Counter]
    duration: Histogram
    last_duration: Gauge | None
    stored_by_poll: Counter
