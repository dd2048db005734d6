"""`replywatch demo` end to end: fakes, simulated traffic, the real connectors, the store."""

from __future__ import annotations

import io
import json
from pathlib import Path

from monitor.cli import main
from monitor.demo import BUSINESSES, demo_config_text


def test_demo_config_is_valid_and_names_every_business(tmp_path: Path) -> None:
    """The demo's own config passes check-config (tokens come from its environment)."""
    path = tmp_path / "demo.toml"
    path.write_text(demo_config_text())
    out, err = io.StringIO(), io.StringIO()
    assert main(["--config", str(path), "check-config", "--no-secrets"], out, err) == 0, err
    assert f"{len(BUSINESSES)} account(s)" in out.getvalue()


def test_demo_runs_polls_stores_and_stops(tmp_path: Path) -> None:
    """A short plain demo stores simulated messages that `stats` then reports."""
    from monitor.demo import run_demo

    database = tmp_path / "demo.db"
    out = io.StringIO()
    assert run_demo("127.0.0.1:0", out, seconds=12, plain=True, database=database) == 0
    text = out.getvalue()
    assert "fake Meta Graph API at http://127.0.0.1:" in text
    assert "demo stopped" in text
    stats_out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "--config",
            str(database.with_suffix(".toml")),
            "--database",
            f"sqlite:///{database}",
            "stats",
            "--format",
            "json",
        ],
        stats_out,
        err,
    )
    assert code == 0, err.getvalue()
    rows = json.loads(stats_out.getvalue())
    assert {row["account"] for row in rows} == {b.name for b in BUSINESSES}
    assert sum(row["waits"] for row in rows) > 0
    assert all(row["profile"] == "demo" for row in rows)
