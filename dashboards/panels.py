"""Small builders on top of grafana-foundation-sdk that every replywatch dashboard uses.

They fix what must be the same everywhere: the Prometheus datasource, colours for "good" and
"bad", and how a value is judged against its account's own targets, read from the exported
``replywatch_target_*`` series (the config's values), never from constants:

- a table compares each row with that row's account in PromQL: a "level" column that value
  mappings colour. Grafana has no per-row threshold, and its "Config from query results"
  transformation reduces the target query to one value for the whole panel. A mean response
  time has two levels, on target or past ``replywatch_target_response_seconds``, the
  badge's own rule (``warn_after`` is exported only with ``account_details``); a rate is
  below ``replywatch_target_rate_ratio`` or not; the customers waiting now have three, from
  the business-time deadlines the exporter computes (:func:`wait_level`), never from their
  calendar age, so a customer who wrote at night to an account with hours reads on target;
- a stat or time series of one account takes its threshold from a hidden target query through
  that transformation (``configFromData``, mapping the query to ``threshold1``);
- where no target series exists, the built-in targets (:data:`alerts.catalog.DEFAULT_TARGETS`)
  stand in: in PromQL with ``or``, in a panel as its own thresholds, which Grafana keeps when the
  target query returns nothing.

A family outside the default budget (``MetricSpec.detail``) appears only on the account
dashboard, on panels whose description names the ``[metrics]`` switch (:func:`needs`).

Every datasource reference reads ``${DS_PROMETHEUS}``, as in a dashboard Grafana exports for
sharing: importing the JSON asks for a Prometheus (the ``__inputs`` entry that
:mod:`dashboards.build` adds) and replaces the placeholder with its uid. Provisioned from files
(``deploy/grafana``), nothing replaces it; there the datasource variable of the same name
resolves it to the default Prometheus, whatever its uid.
"""

from __future__ import annotations

from typing import NamedTuple

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

from alerts.catalog import DEFAULT_TARGETS, Metric
from monitor.export.specs import Detail

__all__ = [
    "DATASOURCE",
    "DS_INPUT",
    "LEVEL_TEXT",
    "STATE_COLOURS",
    "SWITCHES",
    "TARGET_REF",
    "Column",
    "account_link",
    "account_variable",
    "bargauge_panel",
    "datasource_variable",
    "heatmap_panel",
    "level_vs_rate",
    "level_vs_target",
    "needs",
    "query",
    "rate_thresholds",
    "stat_panel",
    "table_panel",
    "thresholds_from_target",
    "time_thresholds",
    "timeseries_panel",
    "wait_level",
]

DS_INPUT = "DS_PROMETHEUS"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=f"${{{DS_INPUT}}}")
GOOD, WARN, BAD = "green", "orange", "red"
ROW_KEY = "platform, account"
TARGET_REF = "target"
"""refId (and legend) of a panel's hidden target query, read by ``configFromData``."""
LEVEL_TEXT = {0: ("on target", GOOD), 1: ("past warn_after", WARN), 2: ("past the target", BAD)}
"""What a level column's values mean, and their colours."""
SWITCHES = {
    Detail.CHANNEL: '[metrics] breakdowns = ["channel"]',
    Detail.TIER: '[metrics] breakdowns = ["tier"]',
    Detail.HISTOGRAM: "[metrics] response_time_histogram = true",
    Detail.ACCOUNT: "[metrics] account_details = true",
}
"""The config line that turns on the families a :class:`Detail` names."""
STATE_COLOURS = {
    "ok": GOOD,
    "starting": "blue",
    "rate_limited": WARN,
    Metric.STALE_STATE: WARN,
    "failing": BAD,
    "auth_failed": BAD,
}
"""A polling state's colour (``replywatch_account_state``'s label): red when the account
cannot be read at all, orange when throttled or when its poller stopped."""


def _target(metric: str, like: str, default: float) -> str:
    """The account's target ``metric`` for each series of ``like``; ``default`` where absent."""
    return (
        f"(max by ({ROW_KEY}) ({metric}) or on ({ROW_KEY}) "
        f"(max by ({ROW_KEY}) ({like}) * 0 + {default:g}))"
    )


def level_vs_target(expr: str) -> str:
    """Per series of ``expr`` (seconds): 0 up to the response target, 2 past it.

    The badge's rule (mean <= target). Two levels, not three: ``warn_after`` is exported only
    with ``[metrics] account_details``, and a mean is no customer waiting to be warned about.
    """
    response = _target(
        Metric.TARGET_RESPONSE, expr, DEFAULT_TARGETS.response_target.total_seconds()
    )
    return f"2 * (({expr}) > bool on ({ROW_KEY}) group_left () {response})"


def level_vs_rate(expr: str) -> str:
    """Per series of ``expr`` (a ratio): 0 at or above the rate target, 2 below it."""
    rate = _target(Metric.TARGET_RATE, expr, DEFAULT_TARGETS.rate_target)
    return f"2 * (({expr}) < bool on ({ROW_KEY}) group_left () {rate})"


def wait_level() -> str:
    """Per account: 0, 1 once its oldest open wait passed warn_after, 2 once past the target.

    Read from the business-time deadlines the exporter computes with the account's hours
    (+Inf while nobody waits, so 0 then), as the paging rule does: a customer who wrote at
    night to an account with hours is on target until the account's clock has run.
    """
    return f"(time() >= bool {Metric.WARNING_AT}) + (time() >= bool {Metric.BREACH_AT})"


def needs(detail: Detail) -> str:
    """The sentence a panel's description ends with when it reads a family of ``detail``."""
    return f"Needs `{SWITCHES[detail]}` in the replywatch config (empty without it)."


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
    """Green up to the built-in 15-minute response target, red past it."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color=GOOD),
                Threshold(value=DEFAULT_TARGETS.response_target.total_seconds(), color=BAD),
            ]
        )
    )


def thresholds_from_target(
    panel: stat.Panel | timeseries.Panel, metric: str, selector: str
) -> stat.Panel | timeseries.Panel:
    """Make the account's ``metric`` (one account, picked by ``selector``) the panel's threshold.

    A hidden instant query (refId and legend :data:`TARGET_REF`) reads the target; Grafana's
    "Config from query results" transformation takes its last value as ``threshold1`` (green
    below, red from it on) on every number field and drops the query from the panel. When the
    query finds no series, the panel's own thresholds (the built-in targets) stay.
    """
    target = query(
        f"max by ({ROW_KEY}) ({metric}{{{selector}}})", TARGET_REF, TARGET_REF, instant=True
    )
    options = {
        "configRefId": TARGET_REF,
        "mappings": [
            {"fieldName": TARGET_REF, "handlerKey": "threshold1", "reducerId": "lastNotNull"}
        ],
    }
    return panel.with_target(target).with_transformation(
        DataTransformerConfig(id_val="configFromData", options=options)
    )


def stat_panel(
    title: str,
    target: prometheus.Dataquery | list[prometheus.Dataquery],
    unit: str,
    thresholds: dashboard.ThresholdsConfig | None = None,
    width: int = 6,
    description: str = "",
) -> stat.Panel:
    """A single number (or one per query, each query giving one series) with colour."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
    )
    for each in target if isinstance(target, list) else [target]:
        panel = panel.with_target(each)
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


class Column(NamedTuple):
    """One query of a table: its refId (the column is ``Value #<ref>``), PromQL, extra labels.

    ``labels`` are label columns this query adds beside the table's row labels (such as the
    polling ``state``); they must take one value per row.
    """

    ref: str
    expr: str
    labels: tuple[str, ...] = ()


def table_panel(
    title: str,
    by: tuple[str, ...],
    targets: list[tuple[str, str] | Column],
    sort_by: str,
    descending: bool,
    width: int = 24,
    description: str = "",
    units: dict[str, str] | None = None,
    levels: tuple[str, ...] = (),
    link: dashboard.DashboardLink | None = None,
    hidden: tuple[str, ...] = (),
    colours: dict[str, dict[str, str]] | None = None,
) -> table.Panel:
    """Instant queries (:class:`Column` or ``(ref, expr)``), one row per value of ``by``.

    ``levels`` names the columns (``Value #<ref>``) holding a :func:`level_vs_target`,
    :func:`level_vs_rate` or :func:`wait_level`: they show as :data:`LEVEL_TEXT` on its colour.
    ``hidden`` columns are left out (a query read only for its label columns); ``colours``
    gives a text column's values a colour each (``{"state": {"ok": "green", ...}}``).

    Each query is wrapped in ``max by (<by>) (...)``, so every query's frame has the same label
    columns and no ``__name__``: Grafana's ``merge`` joins rows whose shared columns are equal,
    and a metric name that differs between the queries would keep one row per query.
    """
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
            DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {name: True for name in ("Time", *hidden)}},
            )
        )
    )
    for target in targets:
        column = Column(*target)
        labels = ", ".join((*by, *column.labels))
        panel = panel.with_target(
            query(
                f"max by ({labels}) ({column.expr})",
                ref=column.ref,
                instant=True,
                fmt=PromQueryFormat.TABLE,
            )
        )
    for field, unit in (units or {}).items():
        panel = panel.override_by_name(field, [DynamicConfigValue(id_val="unit", value=unit)])
    mappings = [
        {
            "type": "value",
            "options": {
                str(level): {"text": text, "color": colour, "index": level}
                for level, (text, colour) in LEVEL_TEXT.items()
            },
        }
    ]
    for field in levels:
        panel = panel.override_by_name(
            field,
            [
                DynamicConfigValue(id_val="mappings", value=mappings),
                DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
    for field, by_value in (colours or {}).items():
        text_mappings = [
            {
                "type": "value",
                "options": {
                    value: {"text": value, "color": colour, "index": index}
                    for index, (value, colour) in enumerate(by_value.items())
                },
            }
        ]
        panel = panel.override_by_name(
            field,
            [
                DynamicConfigValue(id_val="mappings", value=text_mappings),
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


def datasource_variable() -> dashboard.DatasourceVariable:
    """The ``DS_PROMETHEUS`` variable every panel's datasource names (see the module's doc)."""
    return dashboard.DatasourceVariable(DS_INPUT).label("Data source").type("prometheus")


def account_link() -> dashboard.DashboardLink:
    """From a row naming an account to that account's dashboard."""
    return (
        dashboard.DashboardLink("Open the account")
        .url("/d/replywatch-account/replywatch-account?var-account=${__data.fields.account}")
        .target_blank(False)
    )
