"""The alert rules use exactly the names, selectors and burn windows of alerts/catalog.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alerts.catalog import ACCOUNT_TOTAL, BURN_WINDOWS, JOB, Metric, missed_ratio
from monitor.export.metrics import Metrics
from monitor.export.specs import SPECS, spec_of_series

RULES = sorted((Path(__file__).resolve().parents[2] / "alerts" / "rules").glob("*.yaml"))


def every_rule() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alert(name: str) -> dict[str, Any]:
    return next(rule for rule in every_rule() if rule.get("alert") == name)


def test_burn_rate_alerts_match_the_catalog() -> None:
    """Each burn window: its severity, both windows' recording rules, its factor, its label."""
    recorded = {rule["record"] for rule in every_rule() if "record" in rule}
    for window in BURN_WINDOWS:
        rule = alert(window.alert)
        expr = " ".join(str(rule["expr"]).split())
        assert rule["labels"]["severity"] == window.severity
        assert rule["labels"]["window"] == window.long
        for span in (window.long, window.short):
            assert missed_ratio(span) in recorded
            assert f"{missed_ratio(span)} / on (platform, account)" in expr
        assert expr.count(f"> {window.factor:g}") == 2, expr


def test_window_figure_rules_select_the_whole_account() -> None:
    """Rules on window figures use the catalog's account-total selector, not one channel."""
    figure_names = (Metric.RESPONSE_RATE, Metric.MEAN_RESPONSE)
    for rule in every_rule():
        expr = str(rule["expr"])
        for name in figure_names:
            if name in expr:
                assert f"{name}{{{ACCOUNT_TOTAL}}}" in expr, rule.get("alert")


def test_down_and_absent_watch_the_catalog_job() -> None:
    """ReplywatchDown and ReplywatchAbsent look at the scrape job the catalog names."""
    for name in ("ReplywatchDown", "ReplywatchAbsent"):
        assert f'job="{JOB}"' in str(alert(name)["expr"])


def test_every_catalog_metric_is_exported() -> None:
    """No dashboard or rule can name a series the exporter does not have."""
    from monitor.export.figures_exporter import FiguresSnapshot

    families = list(Metrics().registry.collect())
    families += list(FiguresSnapshot(None, None).describe())  # type: ignore[arg-type]
    exported = set()
    for family in families:
        exported.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        exported |= {family.name + s for s in suffixes.get(family.type, ())}
    names = {v for k, v in vars(Metric).items() if k.isupper()}
    assert names and names <= exported, names - exported
    assert all(re.fullmatch(r"replywatch_[a-z0-9_]+", name) for name in names)


def test_every_catalog_name_is_a_series_of_the_metric_table() -> None:
    """The catalog takes its names from monitor/export/specs.py: each is one of its series."""
    names = {k: v for k, v in vars(Metric).items() if k.isupper()}
    assert names
    for attribute, name in names.items():
        spec = spec_of_series(name)
        assert spec is not None and spec in SPECS, f"Metric.{attribute} = {name!r}"
