"""Overview: every account at a glance, worst first, each against its own configured targets."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts.catalog import ACCOUNT_TOTAL, Metric
from dashboards.panels import (
    account_link,
    datasource_variable,
    level_vs_rate,
    level_vs_time,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
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
    total = f"{{{ACCOUNT_TOTAL}}}"
    rate = f"{Metric.RESPONSE_RATE}{total}"
    mean = f"{Metric.MEAN_RESPONSE}{total}"
    oldest = f'{Metric.OLDEST_WAIT}{{channel="all"}}'
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
                query(f"count({Metric.TARGET_MET}{total} == 1) or vector(0)", instant=True),
                "none",
                width=6,
                description="Response rate >= target and mean response time <= target over the "
                "profile's window (accounts with too little data are not counted).",
            )
        )
        .with_panel(
            stat_panel(
                "Accounts missing the target",
                query(f"count({Metric.TARGET_MET}{total} == 0) or vector(0)", instant=True),
                "none",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Customers waiting now",
                query(f'sum({Metric.OPEN_WAITS}{{channel="all"}}) or vector(0)', instant=True),
                "none",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait now",
                query(f'max({Metric.OLDEST_WAIT}{{channel="all"}})', instant=True),
                "s",
                width=6,
                description="The longest wait of any account; the table below judges each "
                "account's wait against its own targets.",
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
                    ("mean_level", level_vs_time(mean)),
                    ("badge", f"{Metric.TARGET_MET}{total}"),
                    ("open", f'{Metric.OPEN_WAITS}{{channel="all"}}'),
                    ("oldest", oldest),
                    ("oldest_level", level_vs_time(oldest)),
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
                "window; open waits now; error budget left of the 7-day SLO. The level columns "
                "judge each row against that account's configured targets "
                "(replywatch_target_*; the built-in ones where none is exported): past "
                "warn_after, past the response target, below the rate target.",
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
