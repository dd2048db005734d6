"""Every Prometheus metric replywatch exports, on a registry the app builds (style rule 8).

Labels come from bounded sets only: platform, account (the configured name), channel,
outcome. Never a message, thread or user id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.coordinator import PollOutcome, PollRecord

__all__ = ["WEBHOOK_OUTCOMES", "Metrics"]

PREFIX = "replywatch"
WEBHOOK_OUTCOMES = ("accepted", "bad_signature", "too_large", "malformed", "ignored", "error")


class Metrics:
    """The connector-health and intake metrics, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            f"{PREFIX}_polls", "Polls by outcome.", ["platform", "account", "outcome"], registry=r
        )
        self.poll_duration = Histogram(
            f"{PREFIX}_poll_duration_seconds",
            "How long one poll took, fetch and store.",
            ["platform", "account"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
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
            registry=r,
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
        self._poll_children: dict[tuple[str, str, str], Counter] = {}
        self.webhooks = Counter(
            f"{PREFIX}_webhook_deliveries",
            "Webhook deliveries by outcome.",
            ["platform", "outcome"],
            registry=r,
        )

    def prepare_account(self, platform: str, account: str) -> None:
        """Create the zero-valued series of an account so rates exist from the start."""
        for outcome in PollOutcome:
            self.polls.labels(platform, account, outcome.value)
        self.poll_duration.labels(platform, account)
        self.missed.labels(platform, account)
        for source in ("poll", "webhook"):
            self.events_stored.labels(platform, account, source)

    def prepare_webhooks(self, platform: str) -> None:
        """Create the zero-valued webhook series of a platform."""
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels(platform, outcome)

    def record_poll(self, record: PollRecord) -> None:
        """Count one finished poll."""
        labels = (record.platform, record.account)
        # labels() validates and hashes on every call; a poll is hot enough to cache children.
        key = (*labels, record.outcome.value)
        counter = self._poll_children.get(key)
        if counter is None:
            counter = self._poll_children[key] = self.polls.labels(*key)
        counter.inc()
        self.poll_duration.labels(*labels).observe(record.duration_s)
        if record.outcome is PollOutcome.SUCCESS:
            self.last_success.labels(*labels).set(record.started_at.timestamp() + record.duration_s)
            self.events_stored.labels(*labels, "poll").inc(record.stored)
        if record.missed:
            self.missed.labels(*labels).inc(record.missed)
        if record.quota_used is not None:
            self.quota_used.labels(*labels).set(record.quota_used)
