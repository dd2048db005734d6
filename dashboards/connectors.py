"""Connector health: polls, latency, freshness, quota, token state, webhooks, alert delivery.

Only families every replywatch exports (no ``[metrics]`` switch). Freshness is the polling
state's ``stale`` (no poll ended for three poll intervals); each account's last successful
poll, poll interval and last poll duration, which need ``account_details``, are on the
account dashboard.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import Metric
from dashboards.panels import (
    STATE_COLOURS,
    Column,
    account_link,
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
    "Polls by outcome": 4,
    "Poll duration (p50, p95) per platform": 5,
    "Platform quota used": 7,
    "Events stored by source": 8,
    "Webhook deliveries by outcome": 9,
    "Alert notifications": 10,
    "Items the platform would not show": 11,
    # 3 ("Stalest data") and 6 ("Accounts, stalest first") read account_details families;
    # their ids stay retired so an old link never lands on a different panel.
    "Accounts not polled (stale)": 12,
    "Accounts by polling state": 13,
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
                # One series per account, for its current state only: none for a state
                # no account is in, so count falls back to one 0.
                query(
                    f'count({Metric.ACCOUNT_STATE}{{state="auth_failed"}}) or vector(0)',
                    instant=True,
                ),
                "none",
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "Accounts failing or throttled",
                query(
                    f'count({Metric.ACCOUNT_STATE}{{state=~"failing|rate_limited"}}) or vector(0)',
                    instant=True,
                ),
                "none",
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "Accounts not polled (stale)",
                query(
                    f'count({Metric.ACCOUNT_STATE}{{state="{Metric.STALE_STATE}"}}) or vector(0)',
                    instant=True,
                ),
                "none",
                width=8,
                description="Accounts no poll has ended for in three poll intervals while they "
                "were ok or starting: the poller is stuck or gone. The table lists them.",
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
                "Accounts by polling state",
                ("platform", "account"),
                [
                    # The state as a column: the label of the account's one state series.
                    Column("state", Metric.ACCOUNT_STATE, ("state",)),
                    ("quota", Metric.QUOTA_USED),
                    # The count itself, not increase(): the series starts at the first miss, and
                    # increase() never sees the step from nothing to that first value.
                    ("missed", Metric.MISSED_ITEMS),
                ],
                sort_by="state",
                descending=False,
                units={"Value #quota": "percentunit", "Value #missed": "none"},
                hidden=("Value #state",),
                colours={"state": STATE_COLOURS},
                link=account_link(),
                description="One row per account: its polling state (stale: no poll ended "
                "for three poll intervals), the platform's own quota figure where the platform "
                "reports one, and the items the platform would not show in full since "
                "replywatch started (empty: none). Last successful poll, poll interval and last "
                "poll duration per account are on the account dashboard (they need "
                "`[metrics] account_details = true`).",
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
                        f"sum by (route, outcome) (rate({Metric.WEBHOOKS}[$__rate_interval]))",
                        "{{route}} {{outcome}}",
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
