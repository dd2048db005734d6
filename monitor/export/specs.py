"""Every metric replywatch exports, in one table: name, help, type, labels, unit, exporter.

The process registry (:mod:`monitor.export.metrics`), the cluster exporter of ``replywatch
serve`` (:mod:`monitor.export.cluster_health`), the window-figures text
(:mod:`monitor.export.figures_exporter`) and the names the alert rules and dashboards use
(:mod:`alerts.catalog`) all read this table, so no help text or name is written twice.

Naming follows Prometheus (style rule 8): one prefix, base units at the end of the name
(``_seconds``, ``_ratio``), counters named without ``_total`` here as prometheus_client names
their families (the ``_total`` sample is :attr:`MetricSpec.total`). Labels come from bounded
sets only: platform, account (the configured name), channel, tier, profile, outcome, state.

This module imports only the standard library and ``monitor.core``: ``alerts/`` and
``dashboards/`` read it without pulling in a database driver, an HTTP server or the metrics
library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# The state label value and its rule live with the poll records (pure, standard library).
from monitor.core.polls import STALE_AFTER_INTERVALS, STALE_STATE

__all__ = [
    "ACCOUNT_STATE",
    "ALERT_DELIVERIES",
    "ALERT_DELIVERY_RESULTS",
    "ALERT_OUTBOX_PENDING",
    "CHANNEL_FIGURES",
    "CHANNEL_OLDEST_OPEN_WAIT",
    "CHANNEL_OPEN_WAITS",
    "CONNECTION_CLOSES",
    "EVENTS_REJECTED",
    "EVENTS_STORED",
    "FIGURES_SNAPSHOT",
    "HTTP_CONNECTIONS_CLOSED",
    "LAST_POLL_DURATION",
    "LAST_SUCCESSFUL_POLL",
    "LAST_UPDATE",
    "MEAN_RESPONSE",
    "MEDIAN_RESPONSE",
    "MISSED_ITEMS",
    "OLDEST_OPEN_WAIT",
    "OPEN_WAITS",
    "OPEN_WAIT_BREACH_AT",
    "OPEN_WAIT_WARNING_AT",
    "P90_RESPONSE",
    "POLLS",
    "POLL_DURATION",
    "POLL_INTERVAL",
    "PREFIX",
    "PROFILE_MIN_WAITS",
    "QUOTA_USED",
    "RESPONSE_RATE",
    "RESPONSE_TIME",
    "ROUND_FAILURES",
    "ROUND_INTERVAL",
    "ROUND_LAST_SUCCESS",
    "SLI_OUTCOMES",
    "SPECS",
    "STALE_AFTER_INTERVALS",
    "STALE_STATE",
    "SUMMARY_SENDS",
    "SUMMARY_SEND_RESULTS",
    "TARGETS",
    "TARGET_ESCALATE_AFTER",
    "TARGET_MET",
    "TARGET_RATE",
    "TARGET_REPLY_DEADLINE",
    "TARGET_RESPONSE",
    "TARGET_WARN_AFTER",
    "TIER_FIGURES",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_OUTCOMES",
    "WINDOW_ANSWERED",
    "WINDOW_FIGURES",
    "WINDOW_WAITS",
    "WITHIN_TARGET",
    "Detail",
    "Exporter",
    "MetricSpec",
    "spec_of_series",
]

PREFIX = "replywatch"

Kind = Literal["counter", "gauge", "histogram"]


class Exporter(StrEnum):
    """Which part of replywatch puts a family on ``/metrics``."""

    PROCESS = "process"
    """The process registry (``Metrics``), counted by every process that serves ``/metrics``."""
    POLLING = "polling"
    """The process registry of the process that polls and delivers (``replywatch run``).
    ``replywatch serve`` renders no such family of its own: the ones marked ``from_database``
    it reads for the whole cluster from the shared tables (``ClusterHealth``)."""
    FIGURES = "figures"
    """The window-figures snapshot, rendered straight to exposition text (``FiguresSnapshot``)."""


class Detail(StrEnum):
    """A config switch of ``[metrics]`` that adds a family beyond the default budget."""

    CHANNEL = "channel"
    """``breakdowns = ["channel"]``: the window figures and open waits per channel."""
    TIER = "tier"
    """``breakdowns = ["tier"]``: the window figures per tier (reviews by rating)."""
    HISTOGRAM = "response_time_histogram"
    """``response_time_histogram = true``: response times with a bucket at each target."""
    ACCOUNT = "account_details"
    """``account_details = true``: each account's last successful poll, last poll duration, poll
    interval, and its warn_after, reply-deadline and escalation targets."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric family: what Prometheus sees of it, and who exports it."""

    name: str
    """The family name as prometheus_client gives it: a counter's without ``_total``."""
    help: str
    type: Kind
    labels: tuple[str, ...]
    exporter: Exporter
    unit: str | None = None
    """The base unit the name ends in. Not handed to prometheus_client: it would add a
    ``# UNIT`` line to the OpenMetrics exposition, which replywatch has never served."""
    buckets: tuple[float, ...] | None = None
    """A histogram's fixed bucket bounds; None for one with a bound at every configured
    target (``monitor.store.sli.histogram_buckets``)."""
    from_database: bool = False
    """``replywatch serve`` exports it for the whole cluster, read from the shared tables."""
    detail: Detail | None = None
    """The ``[metrics]`` switch that turns the family on; None: always exported."""

    def __post_init__(self) -> None:
        if self.buckets is not None and self.type != "histogram":
            raise ValueError(f"{self.name}: only a histogram has buckets")
        if self.from_database and self.exporter is not Exporter.POLLING:
            raise ValueError(f"{self.name}: only polling families are read from the database")

    @property
    def total(self) -> str:
        """A counter's sample name (``<name>_total``)."""
        if self.type != "counter":
            raise ValueError(f"{self.name} is a {self.type}, not a counter")
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        """A histogram's bucket series name."""
        return self._histogram_series("bucket")

    @property
    def count(self) -> str:
        """A histogram's observation count series name."""
        return self._histogram_series("count")

    @property
    def sum(self) -> str:
        """A histogram's observation sum series name."""
        return self._histogram_series("sum")

    @property
    def series(self) -> frozenset[str]:
        """Every sample name a query may use (``_created`` ones excepted)."""
        if self.type == "counter":
            return frozenset({self.total})
        if self.type == "histogram":
            return frozenset({self.bucket, self.count, self.sum})
        return frozenset({self.name})

    def _histogram_series(self, suffix: str) -> str:
        if self.type != "histogram":
            raise ValueError(f"{self.name} is a {self.type}, not a histogram")
        return f"{self.name}_{suffix}"


# Bounded label values the process registry creates at zero, so rates exist from the start.
# Webhook platform "http" counts requests refused before routing (malformed HTTP).
WEBHOOK_OUTCOMES = (
    "accepted",
    # Some items were refused and the rest stored.
    "partial",
    "bad_signature",
    "too_large",
    "malformed",
    # The body never arrived in time.
    "timeout",
    "ignored",
    "error",
)
# Why the HTTP server closed a connection itself (monitor.http.server).
CONNECTION_CLOSES = ("header_timeout", "idle_timeout", "evicted", "refused")
ALERT_DELIVERY_RESULTS = ("delivered", "failed", "refused")
SUMMARY_SEND_RESULTS = ("sent", "failed")

_ACCOUNT = ("platform", "account")
# Each account's targets carry the profile they come from: a rule joining on them copies it
# into its alert (group_left (profile)), and reaches the profile's own settings through it
# (replywatch_profile_min_waits).
_TARGET_LABELS = ("platform", "account", "profile")
# A channel may have a profile of its own (channel_profiles), and so its own window.
_CHANNEL_LABELS = ("platform", "account", "channel", "profile")
_TIER_LABELS = ("platform", "account", "tier")


def _polling(
    name: str,
    help_text: str,
    kind: Kind,
    labels: tuple[str, ...],
    *,
    unit: str | None = None,
    buckets: tuple[float, ...] | None = None,
    from_database: bool = False,
    detail: Detail | None = None,
) -> MetricSpec:
    return MetricSpec(
        f"{PREFIX}_{name}",
        help_text,
        kind,
        labels,
        Exporter.POLLING,
        unit,
        buckets,
        from_database,
        detail,
    )


def _process(
    name: str,
    help_text: str,
    kind: Kind,
    labels: tuple[str, ...],
    unit: str | None = None,
    detail: Detail | None = None,
) -> MetricSpec:
    return MetricSpec(
        f"{PREFIX}_{name}", help_text, kind, labels, Exporter.PROCESS, unit, detail=detail
    )


def _figure(
    name: str, help_text: str, labels: tuple[str, ...] = _ACCOUNT, unit: str | None = None
) -> MetricSpec:
    return MetricSpec(f"{PREFIX}_{name}", help_text, "gauge", labels, Exporter.FIGURES, unit)


def _breakdown(
    spec: MetricSpec, detail: Detail, labels: tuple[str, ...] | None = None
) -> MetricSpec:
    """The same figure per channel or per tier: a family of its own, with no "all" inside."""
    if labels is None:
        labels = _CHANNEL_LABELS if detail is Detail.CHANNEL else _TIER_LABELS
    name = spec.name.replace(f"{PREFIX}_", f"{PREFIX}_{detail.value}_", 1)
    help_text = f"{spec.help.rstrip('.')}, per {detail.value} ([metrics] breakdowns)."
    return MetricSpec(
        name, help_text, spec.type, labels, Exporter.FIGURES, spec.unit, detail=detail
    )


# Connector health: counted where polls run.
# Per platform: one series per account and outcome was 7 of an account's budget; an account
# that keeps failing is replywatch_account_state's to show.
POLLS = _polling(
    "polls",
    "Polls by platform and outcome.",
    "counter",
    ("platform", "outcome"),
    from_database=True,
)
# The distribution per platform (a histogram per account would be 14 series each at
# 10,000 accounts); the last duration per account is enough to find a slow one.
POLL_DURATION = _polling(
    "poll_duration_seconds",
    "How long one poll took, fetch and store, per platform.",
    "histogram",
    ("platform",),
    unit="seconds",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LAST_POLL_DURATION = _polling(
    "last_poll_duration_seconds",
    "How long the account's last poll took, fetch and store ([metrics] account_details).",
    "gauge",
    _ACCOUNT,
    unit="seconds",
    from_database=True,
    detail=Detail.ACCOUNT,
)
LAST_SUCCESSFUL_POLL = _polling(
    "last_successful_poll_timestamp_seconds",
    "Unix time of the last successful poll ([metrics] account_details; by default an "
    "account nobody polls has replywatch_account_state with state stale).",
    "gauge",
    _ACCOUNT,
    unit="seconds",
    from_database=True,
    detail=Detail.ACCOUNT,
)
EVENTS_STORED = _process(
    "events_stored",
    "Events that were new or moved earlier, by platform and source.",
    "counter",
    ("platform", "source"),
)
MISSED_ITEMS = _polling(
    "connector_missed_items",
    "Items the platform would not show in full (they may be missing from figures); "
    "created at the first one.",
    "counter",
    _ACCOUNT,
    from_database=True,
)
QUOTA_USED = _polling(
    "platform_quota_used_ratio",
    "The platform's own usage figure for this account's credentials (0-1); only on "
    "platforms that report one.",
    "gauge",
    _ACCOUNT,
    unit="ratio",
    from_database=True,
)
LAST_UPDATE = _polling(
    "last_update_timestamp_seconds",
    "Time of the newest update the platform delivered, for platforms that keep no "
    "history (Telegram): when it stops moving, messages may be lost after 24 h.",
    "gauge",
    _ACCOUNT,
    unit="seconds",
)
POLL_INTERVAL = _polling(
    "poll_interval_seconds",
    "How often the account is polled when all is well ([metrics] account_details).",
    "gauge",
    _ACCOUNT,
    unit="seconds",
    from_database=True,
    detail=Detail.ACCOUNT,
)
ACCOUNT_STATE = _polling(
    "account_state",
    "Always 1, one series per account: the state label is the polling state the account is "
    "in (ok, failing, rate_limited, auth_failed, starting; stale when no poll has ended for "
    "three poll intervals while it was ok or starting: the poller is stuck or gone).",
    "gauge",
    (*_ACCOUNT, "state"),
    from_database=True,
)

# Each account's targets, from the config, so alert rules and dashboards compare against it.
TARGET_RESPONSE = _process(
    "target_response_seconds",
    "The response-time target (breach, badge mean).",
    "gauge",
    _TARGET_LABELS,
    "seconds",
)
TARGET_RATE = _process(
    "target_rate_ratio", "The response-rate target (0-1).", "gauge", _TARGET_LABELS, "ratio"
)
# A profile's setting, never an account's: one series per profile.
PROFILE_MIN_WAITS = _process(
    "profile_min_waits",
    "Decided waits a profile needs before rate figures and burn-rate alerts count.",
    "gauge",
    ("profile",),
)
TARGET_WARN_AFTER = _process(
    "target_warn_after_seconds",
    "Open-wait age at which a warning is raised ([metrics] account_details).",
    "gauge",
    _TARGET_LABELS,
    "seconds",
    Detail.ACCOUNT,
)
TARGET_REPLY_DEADLINE = _process(
    "target_reply_deadline_seconds",
    "The deadline for a wait to count as answered ([metrics] account_details).",
    "gauge",
    _TARGET_LABELS,
    "seconds",
    Detail.ACCOUNT,
)
TARGET_ESCALATE_AFTER = _process(
    "target_escalate_after_seconds",
    "Open-wait age at which an alert is escalated ([metrics] account_details).",
    "gauge",
    _TARGET_LABELS,
    "seconds",
    Detail.ACCOUNT,
)
TARGETS = (
    TARGET_RESPONSE,
    TARGET_RATE,
    TARGET_WARN_AFTER,
    TARGET_REPLY_DEADLINE,
    TARGET_ESCALATE_AFTER,
)
"""The per-account target families, keyed in ``Metrics.targets`` by their name's tail."""

# Deliveries: alert notifications and weekly summaries, counted where they are sent.
ALERT_DELIVERIES = _polling(
    "alert_deliveries",
    "Per-conversation alert deliveries by result (failed ones are retried).",
    "counter",
    ("result",),
    from_database=True,
)
ALERT_OUTBOX_PENDING = _polling(
    "alert_outbox_pending",
    "Alert notifications stored but not yet delivered.",
    "gauge",
    (),
    from_database=True,
)
# Not "summary_sends": a name holding a type word ("summary") fails `promtool check metrics`.
SUMMARY_SENDS = _polling(
    "weekly_report_sends",
    "Weekly summaries (mails and chat digests) by result; failed ones are retried.",
    "counter",
    ("result",),
    from_database=True,
)

# The background rounds (monitor.core.round_health): a round that stops succeeding, or skips
# items it cannot handle, must be visible even while /healthz still answers.
ROUND_FAILURES = _process(
    "round_failures",
    "Background round failures: a whole round, or one item a round skipped "
    "(a wait, a conversation) while doing the rest.",
    "counter",
    ("round",),
)
ROUND_LAST_SUCCESS = _process(
    "round_last_success_timestamp_seconds",
    "Unix time the round last completed (the process start until it first does).",
    "gauge",
    ("round",),
    "seconds",
)
ROUND_INTERVAL = _process(
    "round_interval_seconds",
    "How often the round runs when all is well.",
    "gauge",
    ("round",),
    "seconds",
)

# Intake: what this process's store and HTTP server accepted and refused.
EVENTS_REJECTED = _process(
    "events_rejected",
    "Events the store refused (a time outside the plausibility window, an id no "
    "database can hold); the good events beside them were stored.",
    "counter",
    ("platform",),
)
# By webhook route (/webhooks/<route>: "meta" carries Facebook and Instagram items alike;
# "http" counts requests refused before routing), not by platform.
WEBHOOK_DELIVERIES = _process(
    "webhook_deliveries",
    "Webhook deliveries by route and outcome.",
    "counter",
    ("route", "outcome"),
)
HTTP_CONNECTIONS_CLOSED = _process(
    "http_connections_closed",
    "Connections the HTTP server closed itself: slow or idle ones, and those over the "
    "connection limit.",
    "counter",
    ("reason",),
)

# Window figures (metrics.md section 4), one series per account: the account's totals.
WINDOW_WAITS = _figure("window_waits", "Waits opened in the profile's window.")
WINDOW_ANSWERED = _figure("window_answered", "Of those, answered.")
RESPONSE_RATE = _figure(
    "response_rate_ratio",
    "Waits answered within the reply deadline / decided waits.",
    unit="ratio",
)
WITHIN_TARGET = _figure(
    "within_target_ratio",
    "Waits answered within the response-time target / decided.",
    unit="ratio",
)
MEAN_RESPONSE = _figure(
    "mean_response_seconds", "Mean response time of answered waits.", unit="seconds"
)
MEDIAN_RESPONSE = _figure(
    "median_response_seconds", "Median response time of answered waits.", unit="seconds"
)
P90_RESPONSE = _figure(
    "p90_response_seconds",
    "90th percentile response time (linear interpolation).",
    unit="seconds",
)
TARGET_MET = _figure(
    "target_met", "1 when the badge rule holds, 0 when not (absent: too little data)."
)
WINDOW_FIGURES = (
    WINDOW_WAITS,
    WINDOW_ANSWERED,
    RESPONSE_RATE,
    WITHIN_TARGET,
    MEAN_RESPONSE,
    MEDIAN_RESPONSE,
    P90_RESPONSE,
    TARGET_MET,
)
# The breakdowns, in families of their own: sum by (account) over one of them is the account's
# count, and the account's own series is never counted twice.
CHANNEL_FIGURES = tuple(_breakdown(spec, Detail.CHANNEL) for spec in WINDOW_FIGURES)
TIER_FIGURES = tuple(_breakdown(spec, Detail.TIER) for spec in WINDOW_FIGURES)
FIGURES_SNAPSHOT = _figure(
    "figures_snapshot_timestamp_seconds",
    "When the window figures were last computed.",
    labels=(),
    unit="seconds",
)
SLI_OUTCOMES = MetricSpec(
    f"{PREFIX}_sli_outcomes",
    "Waits decided against the response-time target: met when answered in time, missed "
    "when the deadline passed unanswered (metrics.md section 6).",
    "counter",
    (*_ACCOUNT, "outcome"),
    Exporter.FIGURES,
)
RESPONSE_TIME = MetricSpec(
    f"{PREFIX}_response_time_seconds",
    "Response time of answered waits (business seconds when the account has hours), with a "
    "bucket at each of the profile's targets ([metrics] response_time_histogram).",
    "histogram",
    (*_ACCOUNT, "profile"),
    Exporter.FIGURES,
    unit="seconds",
    detail=Detail.HISTOGRAM,
)
# Rendered at scrape time from the opening times of the waits still open; every account has
# them, 0 while nobody waits, so a panel or rule never loses an account that caught up.
OPEN_WAITS = _figure("open_waits", "Customers waiting for an answer right now.")
OLDEST_OPEN_WAIT = _figure(
    "oldest_open_wait_seconds",
    "How long the longest-waiting customer has waited, in calendar time, 0 when nobody "
    "waits (for dashboards: alert rules compare business-time deadlines, "
    "replywatch_open_wait_breach_timestamp_seconds).",
    unit="seconds",
)
CHANNEL_OPEN_WAITS = _breakdown(OPEN_WAITS, Detail.CHANNEL, (*_ACCOUNT, "channel"))
CHANNEL_OLDEST_OPEN_WAIT = _breakdown(OLDEST_OPEN_WAIT, Detail.CHANNEL, (*_ACCOUNT, "channel"))
# The per-conversation alerts' own deadlines (monitor.notify.conversation_alerts), earliest
# over the account's open waits, computed with the account's business hours; +Inf when no
# customer waits. Rules compare time() with them, never a calendar age with a business target.
OPEN_WAIT_WARNING_AT = _figure(
    "open_wait_warning_timestamp_seconds",
    "Unix time the first of the account's open waits reaches warn_after (business time when "
    "the account has hours); +Inf when no customer waits.",
    unit="seconds",
)
OPEN_WAIT_BREACH_AT = _figure(
    "open_wait_breach_timestamp_seconds",
    "Unix time the first of the account's open waits breaches its response target (business "
    "time when the account has hours); +Inf when no customer waits.",
    unit="seconds",
)

SPECS: tuple[MetricSpec, ...] = (
    POLLS,
    POLL_DURATION,
    LAST_POLL_DURATION,
    LAST_SUCCESSFUL_POLL,
    EVENTS_STORED,
    MISSED_ITEMS,
    QUOTA_USED,
    LAST_UPDATE,
    POLL_INTERVAL,
    ACCOUNT_STATE,
    *TARGETS,
    PROFILE_MIN_WAITS,
    ALERT_DELIVERIES,
    ALERT_OUTBOX_PENDING,
    SUMMARY_SENDS,
    ROUND_FAILURES,
    ROUND_LAST_SUCCESS,
    ROUND_INTERVAL,
    EVENTS_REJECTED,
    WEBHOOK_DELIVERIES,
    HTTP_CONNECTIONS_CLOSED,
    *WINDOW_FIGURES,
    *CHANNEL_FIGURES,
    *TIER_FIGURES,
    FIGURES_SNAPSHOT,
    SLI_OUTCOMES,
    RESPONSE_TIME,
    OPEN_WAITS,
    OLDEST_OPEN_WAIT,
    CHANNEL_OPEN_WAITS,
    CHANNEL_OLDEST_OPEN_WAIT,
    OPEN_WAIT_WARNING_AT,
    OPEN_WAIT_BREACH_AT,
)
"""Every family replywatch exports, in the order the process registry registers them."""

_BY_SERIES = {series: spec for spec in SPECS for series in spec.series}


def spec_of_series(series: str) -> MetricSpec | None:
    """The family a sample name belongs to (``replywatch_polls_total`` -> POLLS), if any."""
    return _BY_SERIES.get(series)
