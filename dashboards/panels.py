"""Small builders on top of grafana-foundation-sdk that every replywatch dashboard uses.

They fix what must be the same everywhere: the Prometheus datasource (uid ``prometheus``, as
provisioned in ``deploy/grafana``), colours for "good" and "bad", and the target thresholds
from :mod:`alerts.catalog`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    heatmap,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    StackingConfig,
    TableSortByFieldState,
)
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode, StackingMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.catalog import DEFAULT_TARGETS

__all__ = [
    "DATASOURCE",
    "account_link",
    "account_variable",
    "bargauge_panel",
    "heatmap_panel",
    "query",
    "rate_thresholds",
    "stat_panel",
    "table_panel",
    "time_thresholds",
    "timeseries_panel",
]

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
GOOD, WARN, BAD = "green", "orange", "red"


def query(
    expr: str,
    legend: str = "",
    ref: str = "A",
    instant: bool = False,
    fmt: PromQueryFormat | None = None,
) -> prometheus.Dataquery:
    """A PromQL target."""
    target = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    target = target.instant() if instant else target.range()
    if fmt is not None:
        target = target.format(fmt)
    return target


def rate_thresholds() -> dashboard.ThresholdsConfig:
    """Red below the 90% response-rate target, green at or above it."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color=BAD),
                Threshold(value=DEFAULT_TARGETS.rate_target, color=GOOD),
            ]
        )
    )


def time_thresholds() -> dashboard.ThresholdsConfig:
    """Green under the warning age, orange to the 15-minute target, red past it."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color=GOOD),
                Threshold(value=DEFAULT_TARGETS.warn_after.total_seconds(), color=WARN),
                Threshold(value=DEFAULT_TARGETS.response_target.total_seconds(), color=BAD),
            ]
        )
    )


def stat_panel(
    title: str,
    target: prometheus.Dataquery,
    unit: str,
    thresholds: dashboard.ThresholdsConfig | None = None,
    width: int = 6,
    description: str = "",
) -> stat.Panel:
    """A single number (or one per series) with colour."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .span(width)
        .height(4)
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    return panel


def timeseries_panel(
    title: str,
    targets: list[prometheus.Dataquery],
    unit: str,
    thresholds: dashboard.ThresholdsConfig | None = None,
    width: int = 12,
    description: str = "",
    stacked: bool = False,
) -> timeseries.Panel:
    """Lines over time; thresholds are drawn as dashed lines."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
    )
    for target in targets:
        panel = panel.with_target(target)
    if thresholds is not None:
        dashed = GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)
        panel = panel.thresholds(thresholds).thresholds_style(dashed)
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    return panel


def table_panel(
    title: str,
    targets: list[prometheus.Dataquery],
    sort_by: str,
    descending: bool,
    width: int = 24,
    description: str = "",
    units: dict[str, str] | None = None,
    thresholds: dict[str, dashboard.ThresholdsConfig] | None = None,
    link: dashboard.DashboardLink | None = None,
) -> table.Panel:
    """Instant queries joined into one row per account (and channel), sorted."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(10)
        .sort_by([TableSortByFieldState().display_name(sort_by).desc(descending)])
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}})
        )
    )
    for target in targets:
        panel = panel.with_target(target)
    for field, unit in (units or {}).items():
        panel = panel.override_by_name(field, [DynamicConfigValue(id_val="unit", value=unit)])
    for field, config in (thresholds or {}).items():
        panel = panel.override_by_name(
            field,
            [
                DynamicConfigValue(id_val="thresholds", value=config.build()),
                DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
    if link is not None:
        panel = panel.data_links([link])
    return panel


def heatmap_panel(
    title: str, target: prometheus.Dataquery, width: int = 12, description: str = ""
) -> heatmap.Panel:
    """Histogram buckets over time."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .span(width)
        .height(8)
    )


def bargauge_panel(
    title: str, target: prometheus.Dataquery, unit: str, width: int = 12, description: str = ""
) -> bargauge.Panel:
    """One bar per series (e.g. per histogram bucket)."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .min(0)
        .max(1)
        .span(width)
        .height(8)
    )


def account_variable(name: str, expr: str, multi: bool = False) -> dashboard.QueryVariable:
    """A template variable filled from a label's values."""
    return (
        dashboard.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(expr)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def account_link() -> dashboard.DashboardLink:
    """From a row naming an account to that account's dashboard."""
    return (
        dashboard.DashboardLink("Open the account")
        .url("/d/replywatch-account/replywatch-account?var-account=${__data.fields.account}")
        .target_blank(False)
    )
