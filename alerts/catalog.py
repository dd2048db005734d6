"""Metric names, selectors, thresholds and burn-rate windows, in one place.

The dashboards are built from these names, and a test checks that the alert rules in
``alerts/rules/*.yaml`` use exactly them (the same selectors, the same burn factors and windows)
and that the exporter exposes every name; so dashboards, rules and code cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.profiles import Targets

__all__ = [
    "ACCOUNT_TOTAL",
    "BURN_WINDOWS",
    "DEFAULT_TARGETS",
    "HEARTBEAT_RECEIVER",
    "JOB",
    "PROCESS_METRICS",
    "WATCHDOG",
    "BurnWindow",
    "Metric",
    "missed_ratio",
]

JOB = "replywatch"
"""The Prometheus scrape job the rules and dashboards expect."""

ACCOUNT_TOTAL = 'channel="all", tier="all"'
"""Selects a window figure for the whole account (not one channel or tier)."""

DEFAULT_TARGETS = Targets()
"""The built-in targets: 90% answered, 15 minutes; dashboards colour by them."""


class Metric:
    """Every series name the dashboards and rules read."""

    WINDOW_WAITS = "replywatch_window_waits"
    WINDOW_ANSWERED = "replywatch_window_answered"
    RESPONSE_RATE = "replywatch_response_rate_ratio"
    WITHIN_TARGET = "replywatch_within_target_ratio"
    MEAN_RESPONSE = "replywatch_mean_response_seconds"
    MEDIAN_RESPONSE = "replywatch_median_response_seconds"
    P90_RESPONSE = "replywatch_p90_response_seconds"
    TARGET_MET = "replywatch_target_met"
    OPEN_WAITS = "replywatch_open_waits"
    OLDEST_WAIT = "replywatch_oldest_open_wait_seconds"
    SLI_OUTCOMES = "replywatch_sli_outcomes_total"
    RESPONSE_TIME_BUCKET = "replywatch_response_time_seconds_bucket"
    RESPONSE_TIME_COUNT = "replywatch_response_time_seconds_count"
    TARGET_RATE = "replywatch_target_rate_ratio"
    TARGET_RESPONSE = "replywatch_target_response_seconds"
    TARGET_WARN = "replywatch_target_warn_after_seconds"
    TARGET_MIN_WAITS = "replywatch_target_min_waits"
    POLLS = "replywatch_polls_total"
    POLL_DURATION_BUCKET = "replywatch_poll_duration_seconds_bucket"
    LAST_POLL_DURATION = "replywatch_last_poll_duration_seconds"
    LAST_SUCCESS = "replywatch_last_successful_poll_timestamp_seconds"
    POLL_INTERVAL = "replywatch_poll_interval_seconds"
    QUOTA_USED = "replywatch_platform_quota_used_ratio"
    ACCOUNT_STATE = "replywatch_account_state"
    EVENTS_STORED = "replywatch_events_stored_total"
    MISSED_ITEMS = "replywatch_connector_missed_items_total"
    WEBHOOKS = "replywatch_webhook_deliveries_total"
    ALERT_DELIVERIES = "replywatch_alert_deliveries_total"
    OUTBOX_PENDING = "replywatch_alert_outbox_pending"
    ROUND_FAILURES = "replywatch_round_failures_total"
    ROUND_LAST_SUCCESS = "replywatch_round_last_success_timestamp_seconds"
    ROUND_INTERVAL = "replywatch_round_interval_seconds"
    EVENTS_REJECTED = "replywatch_events_rejected_total"


PROCESS_METRICS = frozenset(
    {
        Metric.ALERT_DELIVERIES,
        Metric.OUTBOX_PENDING,
        Metric.ROUND_FAILURES,
        Metric.ROUND_LAST_SUCCESS,
        Metric.ROUND_INTERVAL,
    }
)
"""Series about the replywatch process itself, with no account label to name in an alert."""

WATCHDOG = "ReplywatchWatchdog"
"""The always-firing dead man's switch (kube-prometheus' Watchdog): no for:, no severity."""

HEARTBEAT_RECEIVER = "replywatch-heartbeat"
"""The Alertmanager receiver that gets the watchdog, and nothing else."""


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate alert (metrics.md section 6)."""

    alert: str
    severity: str
    long: str
    short: str
    factor: float


# A 90% target leaves a 10% budget: the fastest possible burn is 10x, so the SRE Workbook's
# 14.4x can never fire. These are its 2%/1h, 5%/6h and 10%/1d budget spends re-derived.
BURN_WINDOWS = (
    BurnWindow("ReplywatchErrorBudgetBurnFast", "page", "1h", "5m", 3.36),
    BurnWindow("ReplywatchErrorBudgetBurnSlow", "page", "6h", "30m", 1.4),
    BurnWindow("ReplywatchErrorBudgetBurnTicket", "ticket", "1d", "2h", 1.0),
)


def missed_ratio(window: str) -> str:
    """The recording rule holding the share of missed waits over ``window``."""
    return f"platform_account:replywatch_sli_missed:ratio_rate{window}"
