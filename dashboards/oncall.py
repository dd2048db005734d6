"""On-call: who is waiting right now and for how long, and which alerts fire."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.catalog import Metric
from dashboards.panels import (
    account_link,
    query,
    stat_panel,
    table_panel,
    time_thresholds,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "replywatch-oncall"
TABLE = PromQueryFormat.TABLE


def build() -> dashboard.Dashboard:
    """The on-call dashboard."""
    waiting = f'{Metric.OLDEST_WAIT}{{channel!="all"}}'
    return (
        dashboard.Dashboard("replywatch: on-call")
        .uid(UID)
        .tags(["replywatch"])
        .description("Customers waiting now, longest first, and the alerts that fire.")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_panel(
            stat_panel(
                "Customers waiting",
                query(f'sum({Metric.OPEN_WAITS}{{channel="all"}}) or vector(0)', instant=True),
                "none",
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "Waiting past the target",
                query(
                    f'count({Metric.OLDEST_WAIT}{{channel="all"}} > on (platform, account) '
                    f"group_left {Metric.TARGET_RESPONSE}) or vector(0)",
                    instant=True,
                ),
                "none",
                width=8,
                description="Accounts whose longest-waiting customer is past the "
                "response-time target.",
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait",
                query(f'max({Metric.OLDEST_WAIT}{{channel="all"}})', instant=True),
                "s",
                time_thresholds(),
                width=8,
            )
        )
        .with_panel(
            table_panel(
                "Waiting now, longest first",
                [
                    query(waiting, "", "oldest", True, TABLE),
                    query(f'{Metric.OPEN_WAITS}{{channel!="all"}}', "", "open", True, TABLE),
                    query(f"{Metric.TARGET_RESPONSE}", "", "target", True, TABLE),
                ],
                sort_by="Value #oldest",
                descending=True,
                units={"Value #oldest": "s", "Value #target": "s"},
                thresholds={"Value #oldest": time_thresholds()},
                link=account_link(),
                description="Per account and channel. Each customer's own alert (with a link to "
                "the conversation) goes to Alertmanager as ReplywatchConversationWaiting.",
            )
        )
        .with_panel(
            table_panel(
                "Alerts firing",
                [
                    query(
                        'ALERTS{alertstate="firing", alertname=~"Replywatch.*"}',
                        "",
                        "alerts",
                        True,
                        TABLE,
                    )
                ],
                sort_by="severity",
                descending=False,
                description="Prometheus' own ALERTS series for the replywatch rules.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Customers waiting over time",
                [query(f'{Metric.OPEN_WAITS}{{channel="all"}}', "{{platform}}/{{account}}")],
                "none",
                width=24,
            )
        )
    )
