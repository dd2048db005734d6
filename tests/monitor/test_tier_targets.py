"""A tier's row is judged on that tier's own targets (metrics.md section 4, issue 16).

The two examples of the issue, through ``replywatch stats --by tier`` on imported events and
through the exported ``replywatch_target_met{tier=...}``: both read ``monitor.store.stats``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from connectors.base import Event
from monitor.config.loading import load_config
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from tests.conftest import RunCli

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H = 3600.0


@dataclass(frozen=True)
class Example:
    """Reviews rated 1 (tier ``negative``) answered after the given hours, under a config."""

    name: str
    profile_toml: str
    profile: str
    answers_h: tuple[float, ...]
    share: float
    mean_h: float
    rate: float


EXAMPLES = [
    # Ten 1-star reviews, nine answered after 1 h and one after 40 h: mean 4.9 h against the
    # negative tier's 4 h, while the profile's own target is 48 h.
    Example("reviews-48h-vs-4h", "", "reviews", (1,) * 9 + (40,), 0.9, 4.9, 0.9),
    # A tier target of 1 h under a profile target of 6 h: one answer in 30 min, nineteen
    # after 2 h. The share is 0.05, so the tier's badge cannot be met.
    Example(
        "tier-1h-under-profile-6h",
        """
[profiles.slow]
extends = "strict"
response_target = "6h"
[profiles.slow.tiers.negative]
response_target = "1h"
""",
        "slow",
        (0.5,) + (2,) * 19,
        0.05,
        (0.5 + 19 * 2) / 20,
        1.0,
    ),
]


def write_config(tmp_path: Path, example: Example) -> Path:
    path = tmp_path / "replywatch.toml"
    path.write_text(
        f"""{example.profile_toml}
[metrics]
breakdowns = ["tier"]

[[accounts]]
name = "app"
platform = "google_play"
source = "push"
profile = "{example.profile}"
""",
        encoding="utf-8",
    )
    return path


def reviews(example: Example) -> list[Event]:
    """One 1-star review per answer, each in its own thread, all inside the window."""
    events = []
    for i, hours in enumerate(example.answers_h):
        opened = AS_OF - timedelta(days=3, hours=i)
        common = ("google_play", "app", "review", f"r{i}")
        events.append(Event(*common, f"r{i}", "customer", opened, rating=1))  # type: ignore[arg-type]
        events.append(Event(*common, f"r{i}-reply", "business", opened + timedelta(hours=hours)))  # type: ignore[arg-type]
    return events


def csv_rows(events: list[Event]) -> str:
    header = "platform,account,thread_id,message_id,author_role,created_at,channel,rating,text\n"
    lines = [
        f"{e.platform},{e.account},{e.thread_id},{e.message_id},{e.author_role},"
        f"{e.created_at.isoformat()},{e.channel},{'' if e.rating is None else e.rating},"
        for e in events
    ]
    return header + "\n".join(lines) + "\n"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_stats_by_tier_judges_the_negative_row_on_the_tier_targets(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str, example: Example
) -> None:
    """Rate, share and badge of the negative row all use the tier's targets."""
    config = str(write_config(tmp_path, example))
    path = tmp_path / "events.csv"
    path.write_text(csv_rows(reviews(example)), encoding="utf-8")
    imported = run_cli("--config", config, "--database", sqlite_url, "import", str(path))
    assert imported.code == 0, imported.err
    result = run_cli(
        "--config",
        config,
        "--database",
        sqlite_url,
        "stats",
        "--by",
        "tier",
        "--as-of",
        AS_OF.isoformat(),
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    [row] = json.loads(result.out)
    assert (row["tier"], row["profile"]) == ("negative", example.profile)
    assert row["waits"] == len(example.answers_h)
    assert row["response_rate"] == pytest.approx(example.rate)
    assert row["within_target_share"] == pytest.approx(example.share)
    assert row["mean_response_seconds"] == pytest.approx(example.mean_h * H)
    assert row["target_met"] is False


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_exported_target_met_for_the_negative_tier(
    tmp_path: Path, sqlite_url: str, example: Example
) -> None:
    """``replywatch_tier_target_met{tier="negative"}`` reads the same judgement: 0, not 1."""
    config = load_config(write_config(tmp_path, example))
    engine = open_engine(sqlite_url)
    try:
        directory = AccountDirectory(config)
        Ingestor(engine, directory).ingest(reviews(example))
        snapshot = FiguresSnapshot(engine, directory, lambda: AS_OF)
        registry = CollectorRegistry()
        registry.register(snapshot)
        snapshot.refresh()
        met = tier_samples(registry, "target_met", "negative")
        share = tier_samples(registry, "within_target", "negative")
    finally:
        engine.dispose()
    assert met == [0.0]
    assert share == [pytest.approx(example.share)]


def tier_samples(registry: CollectorRegistry, word: str, tier: str) -> list[float]:
    """Values of the account's samples named like ``word`` for one tier, any channel."""
    found = []
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.startswith("replywatch_tier_")
                and word in sample.name
                and labels.get("account") == "app"
                and labels.get("tier") == tier
            ):
                found.append(sample.value)
    return found
