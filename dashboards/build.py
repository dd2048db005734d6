"""Build every dashboard to JSON, write ``dashboards/generated/``, and check for drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import account, connectors, oncall, overview

__all__ = ["GENERATED", "build_all", "drifted", "write_all"]

GENERATED = Path(__file__).parent / "generated"
_MODULES = (overview, account, oncall, connectors)


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by uid."""
    built: dict[str, dict[str, Any]] = {}
    for module in _MODULES:
        model = json.loads(json.dumps(module.build().build(), cls=JSONEncoder))
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
