"""One account: distribution, waits and answers, burn rate, SLI outcomes, channels side by side."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.catalog import BURN_WINDOWS, Metric, missed_ratio
from dashboards.panels import (
    account_variable,
    bargauge_panel,
    heatmap_panel,
    query,
    rate_thresholds,
    stat_panel,
    table_panel,
    time_thresholds,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "replywatch-account"
TABLE = PromQueryFormat.TABLE
ACCOUNT = 'account="$account"'
CHANNELS = f'{ACCOUNT}, channel=~"$channel"'


def build() -> dashboard.Dashboard:
    """The per-account dashboard (template variables: account, channel, profile)."""
    mine = f'{{{ACCOUNT}, channel="all", tier="all"}}'
    buckets = f"{Metric.RESPONSE_TIME_BUCKET}{{{CHANNELS}}}"
    budget = f"on (platform, account) group_left () (1 - {Metric.TARGET_RATE}{{{ACCOUNT}}})"
    burn = [
        query(
            f"{missed_ratio(w.long)}{{{ACCOUNT}}} / {budget}",
            f"{w.long} (page at {w.factor:g}x)"
            if w.severity == "page"
            else f"{w.long} (ticket at {w.factor:g}x)",
            f"burn{w.long}",
        )
        for w in BURN_WINDOWS
    ]
    return (
        dashboard.Dashboard("replywatch: account")
        .uid(UID)
        .tags(["replywatch"])
        .description("One account in depth: how fast, how often, when, and on which channel.")
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(account_variable("account", f"label_values({Metric.WINDOW_WAITS}, account)"))
        .with_variable(
            account_variable(
                "channel",
                f'label_values({Metric.WINDOW_WAITS}{{{ACCOUNT}, channel!="all"}}, channel)',
                multi=True,
            )
        )
        .with_variable(
            account_variable(
                "profile", f"label_values({Metric.WINDOW_WAITS}{{{ACCOUNT}}}, profile)"
            )
        )
        .with_panel(
            stat_panel(
                "Response rate",
                query(f"{Metric.RESPONSE_RATE}{mine}", instant=True),
                "percentunit",
                rate_thresholds(),
            )
        )
        .with_panel(
            stat_panel(
                "Mean response time",
                query(f"{Metric.MEAN_RESPONSE}{mine}", instant=True),
                "s",
                time_thresholds(),
            )
        )
        .with_panel(
            stat_panel(
                "Median / p90",
                query(
                    f"{Metric.MEDIAN_RESPONSE}{mine} or {Metric.P90_RESPONSE}{mine}", instant=True
                ),
                "s",
                time_thresholds(),
            )
        )
        .with_panel(
            stat_panel(
                "Customers waiting",
                query(
                    f'{Metric.OPEN_WAITS}{{{ACCOUNT}, channel="all"}} or vector(0)', instant=True
                ),
                "none",
            )
        )
        .with_panel(
            heatmap_panel(
                "Response times by hour (heatmap)",
                query(
                    f"sum by (le) (increase({buckets}[1h]))", "{{le}}", fmt=PromQueryFormat.HEATMAP
                ),
                description="Answers per response-time bucket in each hour; over 7 days this is "
                "the week by hour. Buckets sit exactly on the targets (15 min, 4 h, 24 h, 48 h).",
            )
        )
        .with_panel(
            bargauge_panel(
                "Response-time distribution: share answered within",
                query(
                    f"sum by (le) (increase({buckets}[$__range])) / ignoring (le) group_left "
                    f"sum(increase({Metric.RESPONSE_TIME_COUNT}{{{CHANNELS}}}[$__range]))",
                    "{{le}} s",
                    instant=True,
                ),
                "percentunit",
                description="Over the dashboard's time range; the bars at 900 s "
                "and 86400 s are the response-time target and the reply deadline.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Waits decided per hour: met and missed",
                [
                    query(
                        f"sum by (outcome) (increase({Metric.SLI_OUTCOMES}{{{CHANNELS}}}[1h]))",
                        "{{outcome}}",
                    )
                ],
                "none",
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Waits and answers in the window",
                [
                    query(f"{Metric.WINDOW_WAITS}{mine}", "waits", "waits"),
                    query(f"{Metric.WINDOW_ANSWERED}{mine}", "answered", "answered"),
                ],
                "none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Error budget burn rate per window",
                burn,
                "none",
                description="Missed share over the window divided by the budget (1 - rate target). "
                "Pages fire when both the long and the short window are above the factor.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Within-target share by channel",
                [query(f'{Metric.WITHIN_TARGET}{{{CHANNELS}, tier="all"}}', "{{channel}}")],
                "percentunit",
                rate_thresholds(),
            )
        )
        .with_panel(
            table_panel(
                "Channels side by side",
                [
                    query(
                        f'{Metric.RESPONSE_RATE}{{{CHANNELS}, tier="all"}}', "", "rate", True, TABLE
                    ),
                    query(
                        f'{Metric.MEAN_RESPONSE}{{{CHANNELS}, tier="all"}}', "", "mean", True, TABLE
                    ),
                    query(
                        f'{Metric.P90_RESPONSE}{{{CHANNELS}, tier="all"}}', "", "p90", True, TABLE
                    ),
                    query(
                        f'{Metric.WINDOW_WAITS}{{{CHANNELS}, tier="all"}}', "", "waits", True, TABLE
                    ),
                ],
                sort_by="Value #rate",
                descending=False,
                units={"Value #rate": "percentunit", "Value #mean": "s", "Value #p90": "s"},
                thresholds={"Value #rate": rate_thresholds(), "Value #mean": time_thresholds()},
            )
        )
    )
