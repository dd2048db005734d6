"""The dashboards: built from code, committed JSON in step, fixed uids, one datasource."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dashboards.build import GENERATED, build_all, drifted
from tests.conftest import RunCli

UIDS = {"replywatch-overview", "replywatch-account", "replywatch-oncall", "replywatch-connectors"}


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p.get("type") != "row"]


def test_committed_json_matches_the_code() -> None:
    """A change to a dashboard module without `replywatch dashboards build` fails here."""
    assert drifted() == [], "run `replywatch dashboards build` and commit dashboards/generated"


def test_four_dashboards_with_fixed_uids_and_one_datasource() -> None:
    """Every panel and every query uses the provisioned Prometheus datasource (uid prometheus)."""
    built = build_all()
    assert set(built) == UIDS
    for uid, model in built.items():
        assert model["uid"] == uid and "replywatch" in model["tags"]
        assert panels(model), uid
        for panel in panels(model):
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus"
                assert target["expr"].strip()


def test_account_dashboard_has_its_variables() -> None:
    """Account, channel and profile template variables drive the per-account queries."""
    model = build_all()["replywatch-account"]
    names = [v["name"] for v in model["templating"]["list"]]
    assert names == ["account", "channel", "profile"]
    exprs = [t["expr"] for p in panels(model) for t in p["targets"]]
    assert all('account="$account"' in expr for expr in exprs)


def test_build_check_reports_drift(tmp_path: Path, run_cli: RunCli) -> None:
    """`dashboards build --check` is quiet when in step and names a drifted file otherwise."""
    assert run_cli("dashboards", "build", "--check").code == 0
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    path = copy / "replywatch-oncall.json"
    model = json.loads(path.read_text())
    model["title"] = "edited by hand"
    path.write_text(json.dumps(model))
    assert drifted(copy) == ["replywatch-oncall"]
    (copy / "replywatch-old.json").write_text("{}")
    assert drifted(copy) == ["replywatch-old", "replywatch-oncall"]
