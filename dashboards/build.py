"""Build every dashboard to JSON, write ``dashboards/generated/``, and check for drift.

Each dashboard module holds ``PANEL_IDS``, a fixed table from panel title to id: ids stay
put when a panel is added (links such as ``viewPanel=<id>`` keep pointing at the same panel),
and a panel missing from the table fails the build. The JSON carries ``__inputs`` and
``__requires`` as Grafana's "Export for sharing externally" writes them, so it imports into
any Grafana and asks for the Prometheus to use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import account, connectors, oncall, overview
from dashboards.panels import DS_INPUT

__all__ = ["GENERATED", "build_all", "drifted", "write_all"]

GENERATED = Path(__file__).parent / "generated"
_MODULES = (overview, account, oncall, connectors)


INPUTS = [
    {
        "name": DS_INPUT,
        "label": "Prometheus",
        "description": "The Prometheus that scrapes replywatch and evaluates its rules.",
        "type": "datasource",
        "pluginId": "prometheus",
        "pluginName": "Prometheus",
    }
]


def number_panels(model: dict[str, Any], ids: dict[str, int]) -> None:
    """Give each panel its id from ``ids`` (by title); every title needs one, ids unique."""
    titles = [panel["title"] for panel in model["panels"]]
    missing = sorted(set(titles) - set(ids))
    if missing:
        raise ValueError(f"{model['uid']}: no id in PANEL_IDS for {missing}")
    if len(set(titles)) != len(titles) or len(set(ids.values())) != len(ids):
        raise ValueError(f"{model['uid']}: panel titles and ids must be unique")
    for panel in model["panels"]:
        panel["id"] = ids[panel["title"]]


PANEL_NAMES = {
    "bargauge": "Bar gauge",
    "heatmap": "Heatmap",
    "stat": "Stat",
    "table": "Table",
    "timeseries": "Time series",
}


def _requires(model: dict[str, Any]) -> list[dict[str, str]]:
    """What the dashboard needs, as Grafana's export lists it."""
    kinds = sorted({panel["type"] for panel in model["panels"]})
    return [
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        *(
            {"type": "panel", "id": kind, "name": PANEL_NAMES[kind], "version": ""}
            for kind in kinds
        ),
    ]


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by uid."""
    built: dict[str, dict[str, Any]] = {}
    for module in _MODULES:
        model = json.loads(json.dumps(module.build().build(), cls=JSONEncoder))
        number_panels(model, module.PANEL_IDS)
        model["__inputs"] = INPUTS
        model["__requires"] = _requires(model)
        built[model["uid"]] = model
    return built


def _text(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(target: Path = GENERATED) -> list[Path]:
    """Write each dashboard to ``<uid>.json``; return the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in build_all().items():
        path = target / f"{uid}.json"
        path.write_text(_text(model), encoding="utf-8")
        written.append(path)
    return written


def drifted(target: Path = GENERATED) -> list[str]:
    """Dashboards whose committed JSON differs from what the code builds (or is missing)."""
    built = build_all()
    stale = [
        uid
        for uid, model in built.items()
        if not (target / f"{uid}.json").is_file()
        or (target / f"{uid}.json").read_text(encoding="utf-8") != _text(model)
    ]
    extra = [p.stem for p in target.glob("*.json") if p.stem not in built]
    return sorted(stale + extra)
