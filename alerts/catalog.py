"""Metric names, selectors, thresholds and burn-rate windows, in one place.

The names come from the exporter's own table (``monitor.export.specs``), so the code cannot
export a name the dashboards and rules do not know. The dashboards are built from these names,
and tests check that the alert rules in ``alerts/rules/*.yaml`` use exactly them (the same
selectors, the same burn factors and windows) and that every name they use is in the table;
so dashboards, rules and code cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from monitor.core.profiles import Targets
from monitor.export import specs

__all__ = [
    "BURN_WINDOWS",
    "DEFAULT_TARGETS",
    "HEARTBEAT_RECEIVER",
    "JOB",
    "PROCESS_METRICS",
    "WATCHDOG",
    "BurnWindow",
    "Metric",
    "decided_waits",
    "missed_ratio",
]

JOB = "replywatch"
"""The Prometheus scrape job the rules and dashboards expect."""

DEFAULT_TARGETS = Targets()
"""The built-in targets: 90% answered, 15 minutes; dashboards colour by them."""


class Metric:
    """Every series name the dashboards and rules read, taken from the exporter's table."""

    WINDOW_WAITS = specs.WINDOW_WAITS.name
    WINDOW_ANSWERED = specs.WINDOW_ANSWERED.name
    RESPONSE_RATE = specs.RESPONSE_RATE.name
    WITHIN_TARGET = specs.WITHIN_TARGET.name
    MEAN_RESPONSE = specs.MEAN_RESPONSE.name
    MEDIAN_RESPONSE = specs.MEDIAN_RESPONSE.name
    P90_RESPONSE = specs.P90_RESPONSE.name
    TARGET_MET = specs.TARGET_MET.name
    # The per-channel and per-tier breakdowns ([metrics] breakdowns), by the account figure's
    # name: CHANNEL[Metric.RESPONSE_RATE] is replywatch_channel_response_rate_ratio.
    CHANNEL: ClassVar[dict[str, str]] = {
        a.name: c.name for a, c in zip(specs.WINDOW_FIGURES, specs.CHANNEL_FIGURES, strict=True)
    }
    TIER: ClassVar[dict[str, str]] = {
        a.name: t.name for a, t in zip(specs.WINDOW_FIGURES, specs.TIER_FIGURES, strict=True)
    }
    OPEN_WAITS = specs.OPEN_WAITS.name
    OLDEST_WAIT = specs.OLDEST_OPEN_WAIT.name
    CHANNEL_OPEN_WAITS = specs.CHANNEL_OPEN_WAITS.name
    CHANNEL_OLDEST_WAIT = specs.CHANNEL_OLDEST_OPEN_WAIT.name
    WARNING_AT = specs.OPEN_WAIT_WARNING_AT.name
    BREACH_AT = specs.OPEN_WAIT_BREACH_AT.name
    SLI_OUTCOMES = specs.SLI_OUTCOMES.total
    RESPONSE_TIME_BUCKET = specs.RESPONSE_TIME.bucket
    RESPONSE_TIME_COUNT = specs.RESPONSE_TIME.count
    TARGET_RATE = specs.TARGET_RATE.name
    TARGET_RESPONSE = specs.TARGET_RESPONSE.name
    TARGET_WARN = specs.TARGET_WARN_AFTER.name
    PROFILE_MIN_WAITS = specs.PROFILE_MIN_WAITS.name
    STALE_STATE = specs.STALE_STATE
    POLLS = specs.POLLS.total
    POLL_DURATION_BUCKET = specs.POLL_DURATION.bucket
    LAST_POLL_DURATION = specs.LAST_POLL_DURATION.name
    LAST_SUCCESS = specs.LAST_SUCCESSFUL_POLL.name
    POLL_INTERVAL = specs.POLL_INTERVAL.name
    QUOTA_USED = specs.QUOTA_USED.name
    ACCOUNT_STATE = specs.ACCOUNT_STATE.name
    EVENTS_STORED = specs.EVENTS_STORED.total
    MISSED_ITEMS = specs.MISSED_ITEMS.total
    WEBHOOKS = specs.WEBHOOK_DELIVERIES.total
    ALERT_DELIVERIES = specs.ALERT_DELIVERIES.total
    OUTBOX_PENDING = specs.ALERT_OUTBOX_PENDING.name
    ROUND_FAILURES = specs.ROUND_FAILURES.total
    ROUND_LAST_SUCCESS = specs.ROUND_LAST_SUCCESS.name
    ROUND_INTERVAL = specs.ROUND_INTERVAL.name
    EVENTS_REJECTED = specs.EVENTS_REJECTED.total


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


def decided_waits(window: str) -> str:
    """The recording rule holding the waits decided (met or missed) over ``window``."""
    return f"platform_account:replywatch_sli_outcomes:increase{window}"
