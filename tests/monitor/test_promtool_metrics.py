"""`promtool check metrics` accepts a live /metrics scrape of `replywatch run` and `serve`.

A real runtime on a small store (two accounts, one with business hours; answered, missed and
open waits; polls of every outcome; webhooks; alert deliveries; a weekly-report send) is
scraped over HTTP, and promtool's linter (names, units, type words, help) must find nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import Event
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.export.specs import SPECS, Exporter
from monitor.notify.outbox import DeliveryReport
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from tests.cluster_rows import record_cluster_polls

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/services)"
)

# Monday 11:00 UTC: the office is open.
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
# Every [metrics] switch on: promtool judges every family replywatch can export.
CONFIG = """
[metrics]
breakdowns = ["channel", "tier"]
response_time_histogram = true
account_details = true

[[accounts]]
name = "office"
platform = "whatsapp"
source = "push"
targets = { warn_after = "10m", response_target = "15m" }

[accounts.business_hours]
monday = ["09:00-17:00"]
friday = ["09:00-17:00"]

[[accounts]]
name = "shop"
platform = "telegram"
source = "push"
"""


def traffic() -> list[Event]:
    """Answered, missed and open waits on both accounts and two channels."""
    at = NOW - timedelta(hours=3)
    return [
        Event("whatsapp", "office", "dm", "t1", "q1", "customer", at),
        Event("whatsapp", "office", "dm", "t1", "a1", "business", at + timedelta(minutes=5)),
        Event("whatsapp", "office", "dm", "t2", "q2", "customer", at + timedelta(minutes=10)),
        Event("whatsapp", "office", "dm", "t2", "a2", "business", at + timedelta(hours=2)),
        Event("whatsapp", "office", "dm", "t3", "q3", "customer", NOW - timedelta(minutes=20)),
        Event("telegram", "shop", "dm", "t4", "q4", "customer", NOW - timedelta(days=1)),
        Event("telegram", "shop", "comment", "t5", "q5", "customer", NOW - timedelta(minutes=3)),
    ]


def record_process_metrics(runtime: Runtime) -> None:
    """What polls, webhooks and deliveries leave in the process registry."""
    metrics = runtime.metrics
    for platform, account in (("whatsapp", "office"), ("telegram", "shop")):
        metrics.prepare_account(platform, account, 60.0)
        for i, outcome in enumerate(PollOutcome):
            state = AccountState.OK if outcome is PollOutcome.SUCCESS else AccountState.FAILING
            record = PollRecord(
                platform, account, outcome, NOW, 0.2 + i, 4, 2, i % 2, 0.5, None, state
            )
            metrics.record_poll(record)
        metrics.prepare_webhooks(platform)
        metrics.webhooks.labels(platform, "accepted").inc(3)
        metrics.last_success.labels(platform, account).set(NOW.timestamp())
    metrics.last_update.labels("telegram", "shop").set(NOW.timestamp())
    metrics.events_rejected.labels("telegram").inc()
    metrics.connections_closed.labels("idle_timeout").inc()
    metrics.record_alert_deliveries(DeliveryReport(3, 1, 0, 0, 1))
    metrics.record_summary_sends(1, 0)


@pytest.fixture(params=["run", "serve"])
async def scrape(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str
) -> AsyncIterator[tuple[str, str]]:
    """(mode, /metrics text) of a started runtime after one figures refresh."""
    (tmp_path / "replywatch.toml").write_text(CONFIG, encoding="utf-8")
    context = AppContext.open(tmp_path / "replywatch.toml", sqlite_url)
    serve = request.param == "serve"
    runtime = Runtime(context, port=0, figures_interval=3600, clock=lambda: NOW, serve_only=serve)
    await runtime.start()
    runtime.scheduler.remove_job("figures")
    try:
        await runtime.store_events(traffic())
        if serve:
            record_cluster_polls(
                context.engine,
                NOW,
                state="ok",
                failures=0,
                duration=0.4,
                quota=0.1,
                stored=5,
                missed=0,
                successes=3,
            )
        else:
            record_process_metrics(runtime)
        await runtime.refresh_now()
        async with (
            aiohttp.ClientSession() as session,
            session.get(runtime.address + "/metrics") as response,
        ):
            text = await response.text()
    finally:
        await runtime.stop()
        context.close()
    yield request.param, text


def test_promtool_finds_nothing_to_complain_about(scrape: tuple[str, str]) -> None:
    """`promtool check metrics` exits 0 and prints nothing for a scrape of every family."""
    mode, text = scrape
    families = {f.name for f in text_string_to_metric_families(text)}
    # The scrape holds what the mode exports (counters are named with _total by the parser).
    wanted = {
        s.name
        for s in SPECS
        if s.exporter is not Exporter.POLLING or s.from_database or mode == "run"
    }
    assert wanted <= {name.removesuffix("_total") for name in families} | families
    assert "_created" not in text
    assert "replywatch_weekly_report_sends_total" in text
    assert 'replywatch_open_wait_breach_timestamp_seconds{platform="whatsapp"' in text
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],  # type: ignore[list-item]
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
