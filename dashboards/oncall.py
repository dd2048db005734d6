"""On-call: who is waiting right now and for how long, and which alerts fire.

Only families every replywatch exports (no ``[metrics]`` switch): one row per account.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import Metric
from dashboards.panels import (
    account_link,
    datasource_variable,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
    wait_level,
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
    # Every account has its open-wait series, 0 while nobody waits: keep the waiting ones.
    waiting = f"({Metric.OPEN_WAITS} > 0)"
    only_waiting = f"and on (platform, account) {waiting}"
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
                query(f"sum({Metric.OPEN_WAITS})", instant=True),
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
                    # Every account has a deadline (+Inf while nobody waits): no fallback.
                    f"sum(time() >= bool {Metric.BREACH_AT})",
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
                query(f"max({Metric.OLDEST_WAIT})", instant=True),
                "s",
                width=8,
                description="The longest wait of any account, in calendar time (0 when nobody "
                "waits); the table judges each account's by its business-time deadlines.",
            )
        )
        .with_panel(
            table_panel(
                "Waiting now, longest first",
                ("platform", "account"),
                [
                    ("oldest", f"{Metric.OLDEST_WAIT} {only_waiting}"),
                    ("oldest_level", f"({wait_level()}) {only_waiting}"),
                    ("open", waiting),
                    ("to_target", f"({Metric.BREACH_AT} - time()) {only_waiting}"),
                    ("target", f"{Metric.TARGET_RESPONSE} {only_waiting}"),
                ],
                sort_by="Value #oldest",
                descending=True,
                units={"Value #oldest": "s", "Value #to_target": "s", "Value #target": "s"},
                levels=("Value #oldest_level",),
                link=account_link(),
                description="One row per account where a customer waits now. oldest: the "
                "longest wait in calendar time. oldest_level and to_target come from the "
                "business-time deadlines of that customer's wait (the account's hours and its "
                "configured warn_after and response target, as the paging rule reads them): "
                "'past warn_after', 'past the target', else 'on target'; to_target is the time "
                "left until the target is passed (negative: past it), so a customer who wrote "
                "outside the account's hours reads on target with the time left counted from "
                "the next opening. Each customer's own alert (with a link to the "
                "conversation) goes to Alertmanager as ReplywatchConversationWaiting.",
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
                [query(Metric.OPEN_WAITS, "{{platform}}/{{account}}")],
                "none",
                width=24,
            )
        )
    )
