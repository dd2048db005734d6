"""On-call: who is waiting right now and for how long, and which alerts fire."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import Metric
from dashboards.panels import (
    account_link,
    datasource_variable,
    level_vs_time,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)

__all__ = ["PANEL_IDS", "UID", "build"]

UID = "replywatch-oncall"
# Fixed ids (see dashboards.build): a new panel takes the next free number.
PANEL_IDS = {
    "Customers waiting": 1,
    "Waiting past the target": 2,
    "Longest wait": 3,
    "Waiting now, longest first": 4,
    "Alerts firing": 5,
    "Customers waiting over time": 6,
}


def build() -> dashboard.Dashboard:
    """The on-call dashboard."""
    # Per account and channel, only where someone waits now.
    waiting = f'({Metric.OPEN_WAITS}{{channel!="all"}} > 0)'
    per_channel = "on (platform, account, channel)"
    oldest = f'{Metric.OLDEST_WAIT}{{channel!="all"}} and {per_channel} {waiting}'
    return (
        dashboard.Dashboard("replywatch: on-call")
        .uid(UID)
        .tags(["replywatch"])
        .description("Customers waiting now, longest first, and the alerts that fire.")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(datasource_variable())
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
                    # The business-time deadline, as the paging rule reads it: a customer
                    # waiting at night on an account with hours is not past its target.
                    f"count(time() >= {Metric.BREACH_AT}) or vector(0)",
                    instant=True,
                ),
                "none",
                width=8,
                description="Accounts with a customer past the response-time target "
                "(in business time where the account has hours).",
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait",
                query(f'max({Metric.OLDEST_WAIT}{{channel="all"}})', instant=True),
                "s",
                width=8,
                description="The longest wait of any account; the table judges each one "
                "against its account's own targets.",
            )
        )
        .with_panel(
            table_panel(
                "Waiting now, longest first",
                ("platform", "account", "channel"),
                [
                    ("oldest", oldest),
                    ("oldest_level", level_vs_time(oldest)),
                    ("open", waiting),
                    (
                        "target",
                        f"{waiting} * 0 + on (platform, account) group_left () "
                        f"max by (platform, account) ({Metric.TARGET_RESPONSE})",
                    ),
                ],
                sort_by="Value #oldest",
                descending=True,
                units={"Value #oldest": "s", "Value #target": "s"},
                levels=("Value #oldest_level",),
                link=account_link(),
                description="Per account and channel; the level is the oldest wait against the "
                "account's configured warn_after and response target. Each customer's own alert "
                "(with a link to the conversation) goes to Alertmanager as "
                "ReplywatchConversationWaiting.",
            )
        )
        .with_panel(
            table_panel(
                "Alerts firing",
                ("alertname", "severity", "platform", "account"),
                [("alerts", 'ALERTS{alertstate="firing", alertname=~"Replywatch.*"}')],
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
