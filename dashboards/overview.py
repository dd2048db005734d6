"""Overview: every account at a glance, worst first, against 90% answered and 15 minutes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.catalog import ACCOUNT_TOTAL, Metric
from dashboards.panels import (
    account_link,
    query,
    rate_thresholds,
    stat_panel,
    table_panel,
    time_thresholds,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "replywatch-overview"
TABLE = PromQueryFormat.TABLE
# Share of the week's error budget left: 1 - (missed share / (1 - rate target)), clamped.
BUDGET_LEFT = (
    f"clamp_min(1 - ((sum by (platform, account) (increase({Metric.SLI_OUTCOMES}"
    f'{{outcome="missed"}}[7d])) / sum by (platform, account) (increase({Metric.SLI_OUTCOMES}'
    f"[7d]))) / on (platform, account) (1 - {Metric.TARGET_RATE})), 0)"
)


def build() -> dashboard.Dashboard:
    """The overview dashboard."""
    total = f"{{{ACCOUNT_TOTAL}}}"
    return (
        dashboard.Dashboard("replywatch: overview")
        .uid(UID)
        .tags(["replywatch"])
        .description("Is every account answering fast enough? Worst accounts first.")
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("browser")
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
                time_thresholds(),
                width=6,
            )
        )
        .with_panel(
            table_panel(
                "Accounts, worst response rate first",
                [
                    query(f"{Metric.RESPONSE_RATE}{total}", "", "rate", True, TABLE),
                    query(f"{Metric.MEAN_RESPONSE}{total}", "", "mean", True, TABLE),
                    query(f"{Metric.TARGET_MET}{total}", "", "badge", True, TABLE),
                    query(f'{Metric.OPEN_WAITS}{{channel="all"}}', "", "open", True, TABLE),
                    query(f'{Metric.OLDEST_WAIT}{{channel="all"}}', "", "oldest", True, TABLE),
                    query(BUDGET_LEFT, "", "budget", True, TABLE),
                ],
                sort_by="Value #rate",
                descending=False,
                units={
                    "Value #rate": "percentunit",
                    "Value #mean": "s",
                    "Value #oldest": "s",
                    "Value #budget": "percentunit",
                },
                thresholds={
                    "Value #rate": rate_thresholds(),
                    "Value #mean": time_thresholds(),
                    "Value #oldest": time_thresholds(),
                },
                link=account_link(),
                description="Response rate and mean response time over each account's profile "
                "window; open waits now; error budget left of the 7-day SLO (90% within target).",
            )
        )
        .with_panel(
            timeseries_panel(
                "Response rate per account",
                [query(f"{Metric.RESPONSE_RATE}{total}", "{{platform}}/{{account}}")],
                "percentunit",
                rate_thresholds(),
            )
        )
        .with_panel(
            timeseries_panel(
                "Mean response time per account",
                [query(f"{Metric.MEAN_RESPONSE}{total}", "{{platform}}/{{account}}")],
                "s",
                time_thresholds(),
            )
        )
    )
