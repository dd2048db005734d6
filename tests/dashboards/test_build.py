"""The dashboards: built from code, committed JSON in step, fixed uids, one datasource."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from dashboards import account, connectors, oncall, overview
from dashboards.build import GENERATED, build_all, drifted, number_panels
from monitor.export.specs import Detail, spec_of_series
from tests.conftest import RunCli

UIDS = {"replywatch-overview", "replywatch-account", "replywatch-oncall", "replywatch-connectors"}
# The dashboards a default config must fill completely: no [metrics] switch behind any panel.
DEFAULT_ONLY = {"replywatch-overview", "replywatch-oncall", "replywatch-connectors"}
# A replywatch series in a query; a recording rule's (platform_account:replywatch_...) is not.
SERIES = re.compile(r"(?<![:a-z_])replywatch_[a-z0-9_]+")


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p.get("type") != "row"]


def test_committed_json_matches_the_code() -> None:
    """A change to a dashboard module without `replywatch dashboards build` fails here."""
    assert drifted() == [], "run `replywatch dashboards build` and commit dashboards/generated"


def test_four_dashboards_with_fixed_uids_and_one_datasource() -> None:
    """Every panel and query names the DS_PROMETHEUS input, as Grafana's shared exports do."""
    built = build_all()
    assert set(built) == UIDS
    ref = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for uid, model in built.items():
        assert model["uid"] == uid and "replywatch" in model["tags"]
        assert [i["name"] for i in model["__inputs"]] == ["DS_PROMETHEUS"]
        assert model["__inputs"][0]["pluginId"] == "prometheus"
        # Provisioned from files nothing replaces the placeholder: the variable resolves it.
        variable = model["templating"]["list"][0]
        assert (variable["name"], variable["type"], variable["query"]) == (
            "DS_PROMETHEUS",
            "datasource",
            "prometheus",
        )
        assert panels(model), uid
        for panel in panels(model):
            assert panel["datasource"] == ref, panel
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == ref
                assert target["expr"].strip()


def test_panel_ids_are_fixed_and_unique() -> None:
    """Ids come from each module's PANEL_IDS table, not from the panels' order."""
    for module in (account, connectors, oncall, overview):
        model = build_all()[module.UID]
        ids = [p["id"] for p in model["panels"]]
        assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids)
        assert {p["title"]: p["id"] for p in model["panels"]} == module.PANEL_IDS
    model = build_all()["replywatch-overview"]
    model["panels"].insert(0, {"title": "new panel"})
    with pytest.raises(ValueError, match="new panel"):
        number_panels(model, overview.PANEL_IDS)


# An account's target, or the built-in one for accounts that export none: the right side only
# fills accounts the left side lacks (both sides one series per platform and account).
TARGET_FALLBACK = re.compile(
    r"\(max by \(platform, account\) \(replywatch_target_[a-z_]+\) or on \(platform, account\) "
    r"\(max by \(platform, account\) \((?:[^()]|\([^()]*\))*\) \* 0 \+ [0-9.]+\)\)"
)


def test_every_variable_is_used_and_no_or_hides_a_series() -> None:
    """Each template variable appears in some panel; `or` only as a fallback to one 0 or to
    the built-in target of an account without a target series."""
    for uid, model in build_all().items():
        text = json.dumps(model["panels"])
        for variable in model["templating"]["list"]:
            name = variable["name"]
            assert f"${name}" in text or f"${{{name}}}" in text, f"{uid}: ${name} unused"
        for panel in panels(model):
            for target in panel["targets"]:
                expr = TARGET_FALLBACK.sub("TARGET", target["expr"])
                if " or " in expr:
                    # Only `count(x) or vector(0)`: both sides without labels, never side by side.
                    assert re.fullmatch(r"(sum|count)\((?!.* by ).*\) or vector\(0\)", expr), expr
                else:
                    assert "vector(0)" not in expr, expr
                # The account's figures are families of their own, the breakdowns others.
                assert '="all"' not in expr and '!="all"' not in expr, expr


def switch_text(detail: Detail) -> str:
    """The config line that turns a detail on, as the README writes it."""
    if detail in (Detail.CHANNEL, Detail.TIER):
        return f'breakdowns = ["{detail.value}"]'
    return f"{detail.value} = true"


def test_every_series_is_exported_and_switches_are_named() -> None:
    """Each replywatch series a query or variable reads is in the exporter's table; the
    overview, on-call and connector dashboards read only families exported by default, and a
    panel reading one behind a [metrics] switch names that switch in its description."""
    seen: set[Detail] = set()
    for uid, model in build_all().items():
        for variable in model["templating"]["list"]:
            for name in SERIES.findall(str(variable.get("query", ""))):
                assert spec_of_series(name) is not None, (uid, variable["name"], name)
        for panel in panels(model):
            details = set()
            for target in panel["targets"]:
                names = SERIES.findall(target["expr"])
                for name in names:
                    spec = spec_of_series(name)
                    assert spec is not None, f"{uid} / {panel['title']}: {name} is not exported"
                    if spec.detail is not None:
                        details.add(spec.detail)
            if uid in DEFAULT_ONLY:
                assert not details, f"{uid} / {panel['title']} needs {details}"
            for detail in details:
                assert switch_text(detail) in panel["description"], (uid, panel["title"], detail)
                assert "[metrics]" in panel["description"], (uid, panel["title"])
            seen |= details
    # The account dashboard shows the channel breakdown, the histogram and the details.
    assert seen == {Detail.CHANNEL, Detail.HISTOGRAM, Detail.ACCOUNT}


def test_account_dashboard_has_its_variables() -> None:
    """Data source, account and channel template variables drive the per-account queries."""
    model = build_all()["replywatch-account"]
    names = [v["name"] for v in model["templating"]["list"]]
    assert names == ["DS_PROMETHEUS", "account", "channel"]
    exprs = [t["expr"] for p in panels(model) for t in p["targets"]]
    assert all('account="$account"' in expr for expr in exprs)


def test_build_check_reports_drift(tmp_path: Path, run_cli: RunCli) -> None:
    """`dashboards build --check` says so when in step and names a drifted file otherwise."""
    in_step = run_cli("dashboards", "build", "--check")
    assert in_step.code == 0
    assert "up to date" in in_step.out
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    path = copy / "replywatch-oncall.json"
    model = json.loads(path.read_text())
    model["title"] = "edited by hand"
    path.write_text(json.dumps(model))
    assert drifted(copy) == ["replywatch-oncall"]
    (copy / "replywatch-old.json").write_text("{}")
    assert drifted(copy) == ["replywatch-old", "replywatch-oncall"]
