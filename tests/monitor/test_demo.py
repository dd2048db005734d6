"""`replywatch demo` end to end: fakes, simulated traffic, the real connectors, the store."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy import text as sql

from connectors import PLATFORMS
from monitor.cli.demo.demo import BUSINESSES, demo_config_text
from monitor.cli.demo.platforms import demo_platforms
from monitor.cli.main import main
from monitor.config.loading import load_config


def test_demo_config_is_valid_and_has_every_platform(tmp_path: Path) -> None:
    """The demo's own config passes check-config and has an account on every platform."""
    path = tmp_path / "demo.toml"
    others = demo_platforms()
    path.write_text(demo_config_text(others))
    out, err = io.StringIO(), io.StringIO()
    assert main(["--config", str(path), "check-config", "--no-secrets"], out, err) == 0, err
    assert f"{len(BUSINESSES) + len(others)} account(s)" in out.getvalue()
    platforms = {a.platform for a in load_config(path).accounts.values()}
    assert platforms == set(PLATFORMS)


def test_demo_runs_polls_stores_and_stops(tmp_path: Path) -> None:
    """A short plain demo stores simulated messages that `stats` then reports."""
    from monitor.cli.demo.demo import run_demo

    database = tmp_path / "demo.db"
    out = io.StringIO()
    assert run_demo("127.0.0.1:0", out, seconds=12, plain=True, database=database) == 0
    text = out.getvalue()
    assert "fake Meta, X, Telegram, Google Business, Google Play, App Store and Trustpilot" in text
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
    names = {b.name for b in BUSINESSES} | {p.name for p in demo_platforms()}
    assert {row["account"] for row in rows} == names
    assert sum(row["waits"] for row in rows) > 0
    # Every account on every platform was polled successfully (a cursor is stored with a poll).
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        polled = set(
            connection.execute(
                sql("SELECT a.name FROM cursors c JOIN accounts a ON a.id = c.account_id")
            ).scalars()
        )
    engine.dispose()
    assert polled == names
    assert all(row["profile"] == "demo" for row in rows)
