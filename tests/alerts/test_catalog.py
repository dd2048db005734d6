"""The alert rules use exactly the names, selectors and burn windows of alerts/catalog.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerts.catalog import BURN_WINDOWS, JOB, Metric, decided_waits, missed_ratio
from monitor.export import specs
from monitor.export.specs import SPECS, spec_of_series
from tests.monitor.test_metric_specs import EVERY_SWITCH, scraped_metrics

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


def test_window_figure_rules_read_the_account_figures() -> None:
    """Rules read each account's own figures, never a breakdown family (off by default)."""
    breakdowns = {*Metric.CHANNEL.values(), *Metric.TIER.values()}
    breakdowns |= {Metric.CHANNEL_OPEN_WAITS, Metric.CHANNEL_OLDEST_WAIT}
    exprs = [str(rule["expr"]) for rule in every_rule()]
    assert any(Metric.RESPONSE_RATE in expr for expr in exprs)
    assert any(Metric.MEAN_RESPONSE in expr for expr in exprs)
    for expr in exprs:
        assert not any(re.search(rf"\b{name}\b", expr) for name in breakdowns), expr
        # No "all" values: an account's total is its own family now.
        assert '"all"' not in expr, expr


def test_burn_rate_min_waits_come_from_the_profile() -> None:
    """The min-waits guard reaches each account's profile setting through its target series."""
    for window in BURN_WINDOWS:
        expr = " ".join(str(alert(window.alert)["expr"]).split())
        assert f"{decided_waits(window.long)} >= on (platform, account)" in expr
        assert (
            f"0 * {Metric.TARGET_RATE} + on (profile) group_left () {Metric.PROFILE_MIN_WAITS}"
        ) in expr


def test_stale_data_is_the_state_replywatch_computes() -> None:
    """ReplywatchDataStale reads the stale state, not the account_details timestamps."""
    expr = str(alert("ReplywatchDataStale")["expr"])
    assert f'{Metric.ACCOUNT_STATE}{{state="{Metric.STALE_STATE}"}}' in expr
    assert Metric.LAST_SUCCESS not in expr and Metric.POLL_INTERVAL not in expr


def test_down_and_absent_watch_the_catalog_job() -> None:
    """ReplywatchDown and ReplywatchAbsent look at the scrape job the catalog names."""
    for name in ("ReplywatchDown", "ReplywatchAbsent"):
        assert f'job="{JOB}"' in str(alert(name)["expr"])


def catalog_names() -> dict[str, str]:
    """Every series name in the catalog, by attribute (breakdown tables flattened)."""
    names: dict[str, str] = {}
    for attribute, value in vars(Metric).items():
        if not attribute.isupper() or attribute == "STALE_STATE":
            continue
        if isinstance(value, dict):
            names |= {f"{attribute}[{key}]": name for key, name in value.items()}
        else:
            names[attribute] = value
    return names


async def test_every_catalog_metric_is_exported(sqlite_url: str) -> None:
    """No dashboard or rule can name a series a real scrape (every switch on) does not have."""
    exported: set[str] = set()
    async for scrape in scraped_metrics("run", sqlite_url, EVERY_SWITCH):
        for family in text_string_to_metric_families(scrape.text):
            exported |= {family.name, *(sample.name for sample in family.samples)}
            if family.type == "histogram":
                exported |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
    names = set(catalog_names().values())
    assert names and names <= exported, names - exported
    assert all(re.fullmatch(r"replywatch_[a-z0-9_]+", name) for name in names)


def test_every_catalog_name_is_a_series_of_the_metric_table() -> None:
    """The catalog takes its names from monitor/export/specs.py: each is one of its series."""
    names = catalog_names()
    assert names
    for attribute, name in names.items():
        spec = spec_of_series(name)
        assert spec is not None and spec in SPECS, f"Metric.{attribute} = {name!r}"
    assert Metric.STALE_STATE == specs.STALE_STATE
