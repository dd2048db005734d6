"""Connector health: polls, latency, freshness, quota, token state, webhooks, alert delivery."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import Metric
from dashboards.panels import (
    Column,
    datasource_variable,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

__all__ = ["PANEL_IDS", "UID", "build"]

UID = "replywatch-connectors"
# Fixed ids (see dashboards.build): a new panel takes the next free number.
PANEL_IDS = {
    "Accounts with an expired token": 1,
    "Accounts failing or throttled": 2,
    "Stalest data": 3,
    "Polls by outcome": 4,
    "Poll duration (p50, p95) per platform": 5,
    "Accounts, stalest first": 6,
    "Platform quota used": 7,
    "Events stored by source": 8,
    "Webhook deliveries by outcome": 9,
    "Alert notifications": 10,
    "Items the platform would not show": 11,
}


def build() -> dashboard.Dashboard:
    """The connector-health dashboard."""
    return (
        dashboard.Dashboard("replywatch: connector health")
        .uid(UID)
        .tags(["replywatch"])
        .description("Can replywatch read every platform, and how fresh is what it knows?")
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_panel(
            stat_panel(
                "Accounts with an expired token",
                query(
                    f'sum({Metric.ACCOUNT_STATE}{{state="auth_failed"}}) or vector(0)', instant=True
                ),
                "none",
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "Accounts failing or throttled",
                query(
                    f'sum({Metric.ACCOUNT_STATE}{{state=~"failing|rate_limited"}}) or vector(0)',
                    instant=True,
                ),
                "none",
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "Stalest data",
                query(f"max(time() - {Metric.LAST_SUCCESS})", instant=True),
                "s",
                width=8,
                description="Longest time since an account's last successful poll.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Polls by outcome",
                [
                    query(
                        f"sum by (outcome) (rate({Metric.POLLS}[$__rate_interval]))", "{{outcome}}"
                    )
                ],
                "reqps",
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Poll duration (p50, p95) per platform",
                [
                    query(
                        f"histogram_quantile(0.5, sum by (platform, le) "
                        f"(rate({Metric.POLL_DURATION_BUCKET}[$__rate_interval])))",
                        "p50 {{platform}}",
                        "p50",
                    ),
                    query(
                        f"histogram_quantile(0.95, sum by (platform, le) "
                        f"(rate({Metric.POLL_DURATION_BUCKET}[$__rate_interval])))",
                        "p95 {{platform}}",
                        "p95",
                    ),
                ],
                "s",
            )
        )
        .with_panel(
            table_panel(
                "Accounts, stalest first",
                ("platform", "account"),
                [
                    ("age", f"time() - {Metric.LAST_SUCCESS}"),
                    ("interval", f"{Metric.POLL_INTERVAL}"),
                    ("duration", f"{Metric.LAST_POLL_DURATION}"),
                    # The state as a column: the label of the one state series that reads 1.
                    Column("state", f"{Metric.ACCOUNT_STATE} == 1", ("state",)),
                ],
                sort_by="Value #age",
                descending=True,
                units={"Value #age": "s", "Value #interval": "s", "Value #duration": "s"},
                description="Data is stale when the age passes three poll intervals.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Platform quota used",
                [query(f"{Metric.QUOTA_USED}", "{{platform}}/{{account}}")],
                "percentunit",
                description="The platform's own usage figure (Graph API usage "
                "headers); absent when the platform reports none.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Events stored by source",
                [
                    query(
                        f"sum by (source) (rate({Metric.EVENTS_STORED}[$__rate_interval]))",
                        "{{source}}",
                    )
                ],
                "ops",
            )
        )
        .with_panel(
            timeseries_panel(
                "Webhook deliveries by outcome",
                [
                    query(
                        f"sum by (platform, outcome) (rate({Metric.WEBHOOKS}[$__rate_interval]))",
                        "{{platform}} {{outcome}}",
                    )
                ],
                "reqps",
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Alert notifications",
                [
                    query(
                        f"sum by (result) (rate({Metric.ALERT_DELIVERIES}[$__rate_interval]))",
                        "{{result}}",
                        "deliveries",
                    ),
                    query(f"{Metric.OUTBOX_PENDING}", "pending", "pending"),
                ],
                "none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Items the platform would not show",
                [
                    query(
                        f"sum by (platform, account) (increase({Metric.MISSED_ITEMS}[1h]))",
                        "{{platform}}/{{account}}",
                    )
                ],
                "none",
                width=24,
            )
        )
    )
