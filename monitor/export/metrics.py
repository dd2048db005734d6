"""Every Prometheus metric replywatch exports, on a registry the app builds (style rule 8).

Labels come from bounded sets only: platform, account (the configured name), channel,
outcome. Never a message, thread or user id.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.core.profiles import Profile
from monitor.notify.outbox import DeliveryReport

__all__ = ["CONNECTION_CLOSES", "WEBHOOK_OUTCOMES", "Metrics"]

PREFIX = "replywatch"
# "partial": some items were refused and the rest stored; "timeout": the body never arrived
# in time. Platform "http" counts requests refused before routing (malformed HTTP).
WEBHOOK_OUTCOMES = (
    "accepted",
    "partial",
    "bad_signature",
    "too_large",
    "malformed",
    "timeout",
    "ignored",
    "error",
)
# Why the HTTP server closed a connection itself (monitor.http.server).
CONNECTION_CLOSES = ("header_timeout", "idle_timeout", "evicted", "refused")


class Metrics:
    """The connector-health and intake metrics, registered on one registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        # Families this process counts itself: polls, alert deliveries, summary sends.
        # ``replywatch serve`` exports the whole cluster's from the database instead, and
        # passes a registry nobody renders for these.
        r = process_registry or self.registry
        self.polls = Counter(
            f"{PREFIX}_polls", "Polls by outcome.", ["platform", "account", "outcome"], registry=r
        )
        # The distribution per platform (a histogram per account would be 14 series each at
        # 10,000 accounts); the last duration per account is enough to find a slow one.
        self.poll_duration = Histogram(
            f"{PREFIX}_poll_duration_seconds",
            "How long one poll took, fetch and store, per platform.",
            ["platform"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.last_poll_duration = Gauge(
            f"{PREFIX}_last_poll_duration_seconds",
            "How long the account's last poll took, fetch and store.",
            ["platform", "account"],
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll.",
            ["platform", "account"],
            registry=r,
        )
        self.events_stored = Counter(
            f"{PREFIX}_events_stored",
            "Events that were new or moved earlier, by source.",
            ["platform", "account", "source"],
            registry=self.registry,
        )
        self.missed = Counter(
            f"{PREFIX}_connector_missed_items",
            "Items the platform would not show in full (they may be missing from figures).",
            ["platform", "account"],
            registry=r,
        )
        self.quota_used = Gauge(
            f"{PREFIX}_platform_quota_used_ratio",
            "The platform's own usage figure for this account's credentials (0-1).",
            ["platform", "account"],
            registry=r,
        )
        self.last_update = Gauge(
            f"{PREFIX}_last_update_timestamp_seconds",
            "Time of the newest update the platform delivered, for platforms that keep no "
            "history (Telegram): when it stops moving, messages may be lost after 24 h.",
            ["platform", "account"],
            registry=r,
        )
        self.poll_interval = Gauge(
            f"{PREFIX}_poll_interval_seconds",
            "How often the account is polled when all is well.",
            ["platform", "account"],
            registry=r,
        )
        self.account_state = Gauge(
            f"{PREFIX}_account_state",
            "1 for the polling state the account is in (ok, failing, rate_limited, "
            "auth_failed, starting), 0 for the others.",
            ["platform", "account", "state"],
            registry=r,
        )
        self.targets = {
            kind: Gauge(
                f"{PREFIX}_target_{kind}",
                text,
                ["platform", "account"],
                registry=self.registry,
            )
            for kind, text in (
                ("warn_after_seconds", "Open-wait age at which a warning is raised."),
                ("response_seconds", "The response-time target (breach, badge mean)."),
                ("reply_deadline_seconds", "The deadline for a wait to count as answered."),
                ("rate_ratio", "The response-rate target (0-1)."),
                ("escalate_after_seconds", "Open-wait age at which an alert is escalated."),
                ("min_waits", "Decided waits needed before rate figures and alerts count."),
            )
        }
        self.alert_deliveries = Counter(
            f"{PREFIX}_alert_deliveries",
            "Per-conversation alert deliveries by result (failed ones are retried).",
            ["result"],
            registry=r,
        )
        self.alert_outbox_pending = Gauge(
            f"{PREFIX}_alert_outbox_pending",
            "Alert notifications stored but not yet delivered.",
            registry=r,
        )
        for result in ("delivered", "failed", "refused"):
            self.alert_deliveries.labels(result)
        self.summary_sends = Counter(
            f"{PREFIX}_summary_sends",
            "Weekly summaries (mails and chat digests) by result; failed ones are retried.",
            ["result"],
            registry=r,
        )
        for result in ("sent", "failed"):
            self.summary_sends.labels(result)
        # The background rounds (monitor.core.round_health): a round that stops succeeding, or
        # skips items it cannot handle, must be visible even while /healthz still answers.
        self.round_failures = Counter(
            f"{PREFIX}_round_failures",
            "Background round failures: a whole round, or one item a round skipped "
            "(a wait, a conversation) while doing the rest.",
            ["round"],
            registry=self.registry,
        )
        self.round_last_success = Gauge(
            f"{PREFIX}_round_last_success_timestamp_seconds",
            "Unix time the round last completed (the process start until it first does).",
            ["round"],
            registry=self.registry,
        )
        self.round_interval = Gauge(
            f"{PREFIX}_round_interval_seconds",
            "How often the round runs when all is well.",
            ["round"],
            registry=self.registry,
        )
        self.events_rejected = Counter(
            f"{PREFIX}_events_rejected",
            "Events the store refused (a time outside the plausibility window, an id no "
            "database can hold); the good events beside them were stored.",
            ["platform"],
            registry=self.registry,
        )
        self._accounts: dict[tuple[str, str], _AccountSeries] = {}
        self._states: dict[tuple[str, str], AccountState] = {}
        self.webhooks = Counter(
            f"{PREFIX}_webhook_deliveries",
            "Webhook deliveries by outcome.",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.connections_closed = Counter(
            f"{PREFIX}_http_connections_closed",
            "Connections the HTTP server closed itself: slow or idle ones, and those over the "
            "connection limit.",
            ["reason"],
            registry=self.registry,
        )
        for reason in CONNECTION_CLOSES:
            self.connections_closed.labels(reason)

    def prepare_account(
        self, platform: str, account: str, interval: float | None = None
    ) -> _AccountSeries:
        """Create an account's series (zero-valued, so rates exist from the start)."""
        key = (platform, account)
        series = self._accounts.get(key)
        if interval is not None:
            self.poll_interval.labels(platform, account).set(interval)
        if series is None:
            series = self._accounts[key] = _AccountSeries(
                polls={o: self.polls.labels(platform, account, o.value) for o in PollOutcome},
                duration=self.poll_duration.labels(platform),
                last_duration=self.last_poll_duration.labels(platform, account),
                stored_by_poll=self.events_stored.labels(platform, account, "poll"),
                missed=self.missed.labels(platform, account),
            )
            self.events_stored.labels(platform, account, "webhook")
            self.set_state(platform, account, AccountState.STARTING)
        return series

    def set_targets(self, platform: str, account: str, profile: Profile) -> None:
        """Export an account's targets, so alert rules compare against the config."""
        targets = profile.targets
        values = {
            "warn_after_seconds": targets.warn_after.total_seconds(),
            "response_seconds": targets.response_target.total_seconds(),
            "reply_deadline_seconds": targets.reply_deadline.total_seconds(),
            "rate_ratio": targets.rate_target,
            "escalate_after_seconds": targets.escalate_after.total_seconds(),
            "min_waits": float(profile.min_waits),
        }
        for kind, value in values.items():
            self.targets[kind].labels(platform, account).set(value)

    def set_state(self, platform: str, account: str, state: AccountState) -> None:
        """Mark the account's current polling state (work only when it changes)."""
        if self._states.get((platform, account)) is state:
            return
        self._states[(platform, account)] = state
        for each in AccountState:
            self.account_state.labels(platform, account, each.value).set(each is state)

    def record_alert_deliveries(self, report: DeliveryReport) -> None:
        """Count one delivery round of the alert outbox."""
        self.alert_deliveries.labels("delivered").inc(report.delivered)
        self.alert_deliveries.labels("failed").inc(report.failed)
        self.alert_deliveries.labels("refused").inc(report.refused)
        self.alert_outbox_pending.set(report.pending)

    def record_summary_sends(self, sent: int, failed: int) -> None:
        """Count one round of weekly summary sends."""
        self.summary_sends.labels("sent").inc(sent)
        self.summary_sends.labels("failed").inc(failed)

    def prepare_webhooks(self, platform: str) -> None:
        """Create the zero-valued webhook series of a platform."""
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels(platform, outcome)

    def record_poll(self, record: PollRecord) -> None:
        """Count one finished poll."""
        # labels() validates and hashes on every call; polls are hot, so children are kept.
        series = self.prepare_account(record.platform, record.account)
        series.polls[record.outcome].inc()
        self.set_state(record.platform, record.account, record.state)
        series.duration.observe(record.duration_s)
        series.last_duration.set(record.duration_s)
        labels = (record.platform, record.account)
        if record.outcome is PollOutcome.SUCCESS:
            # Created on first success: a missing series means "never", not 1970.
            self.last_success.labels(*labels).set(record.started_at.timestamp() + record.duration_s)
            series.stored_by_poll.inc(record.stored)
        if record.missed:
            series.missed.inc(record.missed)
        if record.quota_used is not None:
            # Only when the platform reported usage: absent means unknown, not zero.
            self.quota_used.labels(*labels).set(record.quota_used)


@dataclass(frozen=True, slots=True)
class _AccountSeries:
    """One account's labelled children of the poll metrics."""

    polls: dict[PollOutcome, Counter]
    duration: Histogram
    last_duration: Gauge
    stored_by_poll: Counter
    missed: Counter
