"""Overview: every account at a glance, worst first, each against its own configured targets.

Only families every replywatch exports (no ``[metrics]`` switch): one series per account.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import Metric
from dashboards.panels import (
    account_link,
    datasource_variable,
    level_vs_rate,
    level_vs_target,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
    wait_level,
)

__all__ = ["PANEL_IDS", "UID", "build"]

UID = "replywatch-overview"
ACCOUNTS = ("platform", "account")
# Fixed ids (see dashboards.build): a new panel takes the next free number.
PANEL_IDS = {
    "Accounts holding the badge": 1,
    "Accounts missing the target": 2,
    "Customers waiting now": 3,
    "Longest wait now": 4,
    "Accounts, worst response rate first": 5,
    "Response rate per account": 6,
    "Mean response time per account": 7,
}
# Share of the week's error budget left: 1 - (missed share / (1 - rate target)), clamped.
BUDGET_LEFT = (
    f"clamp_min(1 - ((sum by (platform, account) (increase({Metric.SLI_OUTCOMES}"
    f'{{outcome="missed"}}[7d])) / sum by (platform, account) (increase({Metric.SLI_OUTCOMES}'
    f"[7d]))) / on (platform, account) (1 - {Metric.TARGET_RATE})), 0)"
)


def build() -> dashboard.Dashboard:
    """The overview dashboard."""
    rate = Metric.RESPONSE_RATE
    mean = Metric.MEAN_RESPONSE
    return (
        dashboard.Dashboard("replywatch: overview")
        .uid(UID)
        .tags(["replywatch"])
        .description("Is every account answering fast enough? Worst accounts first.")
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_panel(
            stat_panel(
                "Accounts holding the badge",
                query(f"count({Metric.TARGET_MET} == 1) or vector(0)", instant=True),
                "none",
                width=6,
                description="Response rate >= target and mean response time <= target over the "
                "profile's window (accounts with too little data are not counted).",
            )
        )
        .with_panel(
            stat_panel(
                "Accounts missing the target",
                query(f"count({Metric.TARGET_MET} == 0) or vector(0)", instant=True),
                "none",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Customers waiting now",
                # Every account has the series (0 while nobody waits): no fallback needed.
                query(f"sum({Metric.OPEN_WAITS})", instant=True),
                "none",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait now",
                query(f"max({Metric.OLDEST_WAIT})", instant=True),
                "s",
                width=6,
                description="The longest wait of any account, in calendar time (0 when nobody "
                "waits); the table below judges each account's waiting customers by their "
                "business-time deadlines.",
            )
        )
        .with_panel(
            table_panel(
                "Accounts, worst response rate first",
                ACCOUNTS,
                [
                    ("rate", rate),
                    ("rate_level", level_vs_rate(rate)),
                    ("mean", mean),
                    ("mean_level", level_vs_target(mean)),
                    ("badge", Metric.TARGET_MET),
                    ("open", Metric.OPEN_WAITS),
                    ("oldest", Metric.OLDEST_WAIT),
                    ("oldest_level", wait_level()),
                    ("budget", BUDGET_LEFT),
                ],
                sort_by="Value #rate",
                descending=False,
                units={
                    "Value #rate": "percentunit",
                    "Value #mean": "s",
                    "Value #oldest": "s",
                    "Value #budget": "percentunit",
                },
                levels=("Value #rate_level", "Value #mean_level", "Value #oldest_level"),
                link=account_link(),
                description="Response rate and mean response time over each account's profile "
                "window; customers waiting now (0: nobody) and the longest wait in calendar "
                "time; error budget left of the 7-day SLO. Levels: rate_level is 'past the "
                "target' below the account's rate target; mean_level is 'past the target' when "
                "the mean exceeds the account's response target (the badge's rule; two levels, "
                "as warn_after is exported only with account_details); both from "
                "replywatch_target_*, the built-in targets where none is exported. "
                "oldest_level comes from the business-time deadlines of the account's oldest "
                "waiting customer (replywatch_open_wait_*_timestamp_seconds): 'past "
                "warn_after', 'past the target', else 'on target', so a customer who wrote "
                "outside the account's hours stays on target until its clock runs.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Response rate per account",
                [query(rate, "{{platform}}/{{account}}")],
                "percentunit",
            )
        )
        .with_panel(
            timeseries_panel(
                "Mean response time per account",
                [query(mean, "{{platform}}/{{account}}")],
                "s",
            )
        )
    )
