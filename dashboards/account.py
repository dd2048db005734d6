"""One account: distribution, waits and answers, burn rate, SLI outcomes, channels side by side.

The one dashboard with panels beyond the default budget: those reading a family a ``[metrics]``
switch turns on (the channel breakdowns, the response-time histogram, the account details) say
so in their description, and are empty without it.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.catalog import BURN_WINDOWS, Metric, missed_ratio
from dashboards.panels import (
    STATE_COLOURS,
    Column,
    account_variable,
    bargauge_panel,
    datasource_variable,
    heatmap_panel,
    level_vs_rate,
    level_vs_target,
    needs,
    query,
    stat_panel,
    table_panel,
    thresholds_from_target,
    time_thresholds,
    timeseries_panel,
)
from monitor.export.specs import Detail

__all__ = ["PANEL_IDS", "UID", "build"]

UID = "replywatch-account"
ACCOUNT = 'account="$account"'
CHANNELS = f'{ACCOUNT}, channel=~"$channel"'
# Fixed ids (see dashboards.build): a new panel takes the next free number.
PANEL_IDS = {
    "Response rate": 1,
    "Mean response time": 2,
    "Median / p90": 3,
    "Customers waiting": 4,
    "Response times by hour (heatmap)": 5,
    "Response-time distribution: share answered within": 6,
    "Waits decided per hour: met and missed": 7,
    "Waits and answers in the window": 8,
    "Error budget burn rate per window": 9,
    "Within-target share by channel": 10,
    "Channels side by side": 11,
    "Polling": 12,
}


def build() -> dashboard.Dashboard:
    """The per-account dashboard (template variables: data source, account, channel)."""
    mine = f"{{{ACCOUNT}}}"
    by_channel = f"{{{CHANNELS}}}"
    channel = Metric.CHANNEL
    buckets = f"{Metric.RESPONSE_TIME_BUCKET}{mine}"
    rate_target = f"max by (platform, account) ({Metric.TARGET_RATE}{{{ACCOUNT}}})"
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
        .with_variable(datasource_variable())
        .with_variable(account_variable("account", f"label_values({Metric.WINDOW_WAITS}, account)"))
        .with_variable(
            account_variable(
                "channel",
                f"label_values({channel[Metric.WINDOW_WAITS]}{mine}, channel)",
                multi=True,
            )
        )
        .with_panel(
            stat_panel(
                "Response rate",
                [
                    query(f"{Metric.RESPONSE_RATE}{mine}", "rate", "rate", instant=True),
                    query(rate_target, "target", "rate_target", instant=True),
                ],
                "percentunit",
                description="The response rate beside the account's configured rate target.",
            )
        )
        .with_panel(
            thresholds_from_target(
                stat_panel(
                    "Mean response time",
                    query(f"{Metric.MEAN_RESPONSE}{mine}", instant=True),
                    "s",
                    time_thresholds(),
                    description="Red from the account's configured response target on.",
                ),
                Metric.TARGET_RESPONSE,
                ACCOUNT,
            )
        )
        .with_panel(
            thresholds_from_target(
                stat_panel(
                    "Median / p90",
                    [
                        query(f"{Metric.MEDIAN_RESPONSE}{mine}", "median", "median", instant=True),
                        query(f"{Metric.P90_RESPONSE}{mine}", "p90", "p90", instant=True),
                    ],
                    "s",
                    time_thresholds(),
                    description="Red from the account's configured response target on.",
                ),
                Metric.TARGET_RESPONSE,
                ACCOUNT,
            )
        )
        .with_panel(
            stat_panel(
                "Customers waiting",
                # The account's series is there (0) while nobody waits: no fallback needed.
                query(f"sum({Metric.OPEN_WAITS}{mine})", instant=True),
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
                "the week by hour. Buckets sit exactly on the profile's targets. "
                + needs(Detail.HISTOGRAM),
            )
        )
        .with_panel(
            bargauge_panel(
                "Response-time distribution: share answered within",
                query(
                    f"sum by (le) (increase({buckets}[$__range])) / ignoring (le) group_left "
                    f"sum(increase({Metric.RESPONSE_TIME_COUNT}{mine}[$__range]))",
                    "{{le}} s",
                    instant=True,
                ),
                "percentunit",
                description="Over the dashboard's time range; there is a bar at each of the "
                "profile's targets (the response-time target, the reply deadline). "
                + needs(Detail.HISTOGRAM),
            )
        )
        .with_panel(
            timeseries_panel(
                "Waits decided per hour: met and missed",
                [
                    query(
                        f"sum by (outcome) (increase({Metric.SLI_OUTCOMES}{mine}[1h]))",
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
                [
                    query(f"{channel[Metric.WITHIN_TARGET]}{by_channel}", "{{channel}}"),
                    query(rate_target, "rate target", "rate_target"),
                ],
                "percentunit",
                description="Each channel's share answered within the response target, and the "
                "account's configured rate target as a line. " + needs(Detail.CHANNEL),
            )
        )
        .with_panel(
            table_panel(
                "Channels side by side",
                ("platform", "account", "channel"),
                [
                    ("rate", f"{channel[Metric.RESPONSE_RATE]}{by_channel}"),
                    ("rate_level", level_vs_rate(f"{channel[Metric.RESPONSE_RATE]}{by_channel}")),
                    ("mean", f"{channel[Metric.MEAN_RESPONSE]}{by_channel}"),
                    (
                        "mean_level",
                        level_vs_target(f"{channel[Metric.MEAN_RESPONSE]}{by_channel}"),
                    ),
                    ("p90", f"{channel[Metric.P90_RESPONSE]}{by_channel}"),
                    ("waits", f"{channel[Metric.WINDOW_WAITS]}{by_channel}"),
                    ("open", f"{Metric.CHANNEL_OPEN_WAITS}{by_channel}"),
                    ("oldest", f"{Metric.CHANNEL_OLDEST_WAIT}{by_channel}"),
                ],
                sort_by="Value #rate",
                descending=False,
                units={
                    "Value #rate": "percentunit",
                    "Value #mean": "s",
                    "Value #p90": "s",
                    "Value #oldest": "s",
                },
                levels=("Value #rate_level", "Value #mean_level"),
                description="Each channel's window figures: rate_level is 'past the target' "
                "below the account's rate target, mean_level when the mean exceeds the "
                "account's response target (two levels, the badge's rule). open and oldest "
                "(calendar time) only on channels where a customer waits now. "
                + needs(Detail.CHANNEL),
            )
        )
        .with_panel(
            table_panel(
                "Polling",
                ("platform", "account"),
                [
                    Column("state", f"{Metric.ACCOUNT_STATE}{mine}", ("state",)),
                    ("since_success", f"time() - {Metric.LAST_SUCCESS}{mine}"),
                    ("interval", f"{Metric.POLL_INTERVAL}{mine}"),
                    ("duration", f"{Metric.LAST_POLL_DURATION}{mine}"),
                    ("quota", f"{Metric.QUOTA_USED}{mine}"),
                ],
                sort_by="state",
                descending=False,
                units={
                    "Value #since_success": "s",
                    "Value #interval": "s",
                    "Value #duration": "s",
                    "Value #quota": "percentunit",
                },
                hidden=("Value #state",),
                colours={"state": STATE_COLOURS},
                description="The account's polling state (stale: no poll ended for three poll "
                "intervals) and the platform's quota figure where it reports one, always; the "
                "time since the last successful poll, the poll interval and the last poll's "
                "duration only with account details. " + needs(Detail.ACCOUNT),
            )
        )
    )
