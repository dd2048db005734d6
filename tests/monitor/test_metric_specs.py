"""The one metric table: every family /metrics serves is in it, and every name rules and
dashboards use; the table itself follows Prometheus naming."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from sqlalchemy import Engine

from connectors.base import Event
from monitor.config.loading import Config
from monitor.config.schema import MetricsModel
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.core.profiles import BUILTIN_PROFILES
from monitor.export import specs
from monitor.export.cluster_health import ClusterHealth
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.export.specs import SPECS, Exporter, MetricSpec, spec_of_series
from monitor.http.app import build_app
from monitor.notify.outbox import DeliveryReport
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.sli import SliTotals, decide_outcomes, histogram_buckets
from tests.cluster_rows import record_cluster_polls

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BY_NAME = {spec.name: spec for spec in SPECS}
# A name as queries write it: not part of a recording rule's name (level:metric:operation).
# A name, not a family glob in prose ("replywatch_target_*").
USED_NAME = re.compile(r"(?<![:a-z0-9_])replywatch_[a-z0-9_]+(?![:a-z0-9_*])")


def test_the_table_follows_prometheus_naming() -> None:
    """One prefix, unique names, base units at the end, no _total on a family, sorted buckets."""
    assert len(BY_NAME) == len(SPECS)
    for spec in SPECS:
        assert re.fullmatch(r"replywatch_[a-z0-9_]+", spec.name), spec.name
        assert not spec.name.endswith(("_total", "_bucket", "_count", "_sum", "_created"))
        ends_in_unit = spec.name.endswith(("_seconds", "_ratio", "_bytes"))
        assert ends_in_unit == (spec.unit is not None), spec.name
        if spec.unit is not None:
            assert spec.name.endswith(f"_{spec.unit}"), spec.name
        if spec.buckets is not None:
            assert list(spec.buckets) == sorted(set(spec.buckets)), spec.name
        if spec.type == "histogram" and spec.exporter is not Exporter.FIGURES:
            assert spec.buckets, f"{spec.name}: prometheus_client needs fixed buckets"


def test_help_texts_need_no_escaping() -> None:
    """The figures text writes HELP lines as they are: valid in both exposition formats."""
    for spec in SPECS:
        assert spec.help and spec.help == spec.help.strip(), spec.name
        assert not set(spec.help) & {"\\", "\n", '"'}, spec.name


def test_labels_are_bounded_and_consistent() -> None:
    """No id labels; the figures share one label order, the SLI families another."""
    for spec in SPECS:
        assert len(set(spec.labels)) == len(spec.labels), spec.name
        for label in spec.labels:
            assert not re.search(r"(^|_)(id|message|thread|user|author|url)($|_)", label)
    account = ("platform", "account")
    assert {spec.labels for spec in specs.WINDOW_FIGURES} == {account}
    assert specs.SLI_OUTCOMES.labels == (*account, "outcome")
    assert specs.RESPONSE_TIME.labels == (*account, "profile")
    assert specs.OLDEST_OPEN_WAIT.labels == specs.OPEN_WAITS.labels == account
    assert {s.labels for s in specs.CHANNEL_FIGURES} == {(*account, "channel", "profile")}
    assert {s.labels for s in specs.TIER_FIGURES} == {(*account, "tier")}


def test_a_breakdown_is_a_family_of_its_own() -> None:
    """No family holds an account's total beside its parts: channel and tier labels only
    appear in the breakdown families, each behind its [metrics] switch."""
    for spec in SPECS:
        if "channel" in spec.labels:
            assert spec.detail is specs.Detail.CHANNEL, spec.name
            assert spec.name.startswith("replywatch_channel_"), spec.name
        if "tier" in spec.labels:
            assert spec.detail is specs.Detail.TIER, spec.name
            assert spec.name.startswith("replywatch_tier_"), spec.name
    for account, channel, tier in zip(
        specs.WINDOW_FIGURES, specs.CHANNEL_FIGURES, specs.TIER_FIGURES, strict=True
    ):
        assert channel.name == account.name.replace("replywatch_", "replywatch_channel_")
        assert tier.name == account.name.replace("replywatch_", "replywatch_tier_")
        assert (
            (channel.type, channel.unit) == (tier.type, tier.unit) == (account.type, account.unit)
        )


def test_a_spec_names_its_series() -> None:
    """_total for counters, _bucket/_count/_sum for histograms, and back from a series."""
    assert specs.POLLS.total == "replywatch_polls_total"
    assert specs.RESPONSE_TIME.series == {
        "replywatch_response_time_seconds_bucket",
        "replywatch_response_time_seconds_count",
        "replywatch_response_time_seconds_sum",
    }
    assert spec_of_series("replywatch_polls_total") is specs.POLLS
    assert spec_of_series("replywatch_open_waits") is specs.OPEN_WAITS
    assert spec_of_series("replywatch_polls") is None  # a counter is queried as _total
    assert spec_of_series("replywatch_open_waits_total") is None
    with pytest.raises(ValueError, match="not a counter"):
        _ = specs.OPEN_WAITS.total
    with pytest.raises(ValueError, match="only a histogram"):
        MetricSpec("replywatch_x", "X.", "gauge", (), Exporter.PROCESS, buckets=(1.0,))


def test_the_spec_module_imports_nothing_heavy() -> None:
    """alerts/ and dashboards/ read the table without a database, HTTP or metrics library."""
    heavy = ("aiohttp", "sqlalchemy", "sqlmodel", "prometheus_client", "apscheduler")
    code = (
        "import sys; import monitor.export.specs; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_rules_and_dashboards_use_only_names_in_the_table() -> None:
    """Every replywatch_* series a rule or a generated dashboard queries is in the table."""
    rules = (ROOT / "alerts" / "rules").glob("*.yaml")
    dashboards = (ROOT / "dashboards" / "generated").glob("*.json")
    documents = [yaml.safe_load(p.read_text()) for p in rules]
    documents += [json.loads(p.read_text()) for p in dashboards]
    used = {name for doc in documents for text in _strings(doc) for name in USED_NAME.findall(text)}
    assert len(used) > 20, used  # the files were found and read
    unknown = {name for name in used if spec_of_series(name) is None}
    assert not unknown, unknown


# --- real scrapes -------------------------------------------------------------------------


def fill(metrics: Metrics) -> None:
    """What a running demo records: polls of every outcome, webhooks, rounds, deliveries."""
    for platform, account in (("facebook", "shop"), ("instagram", "studio"), ("telegram", "bot")):
        metrics.prepare_account(platform, account, 60.0)
        metrics.set_targets(platform, account, BUILTIN_PROFILES["meta-badge"])
        for i, outcome in enumerate(PollOutcome):
            record = PollRecord(
                platform,
                account,
                outcome,
                NOW,
                0.3 + i,
                5,
                2,
                i % 2,
                0.25 if i else None,
                None,
                AccountState.OK if outcome is PollOutcome.SUCCESS else AccountState.FAILING,
            )
            metrics.record_poll(record)
    metrics.last_update.labels("telegram", "bot").set(NOW.timestamp())
    for platform in ("meta", "telegram", "events"):
        metrics.prepare_webhooks(platform)
    metrics.events_stored.labels("facebook", "webhook").inc(2)
    metrics.record_alert_deliveries(DeliveryReport(4, 1, 2, 0, 1))
    metrics.record_summary_sends(1, 2)
    for name in ("figures", "sweep"):
        metrics.round_failures.labels(name).inc()
        metrics.round_interval.labels(name).set(30)
        metrics.round_last_success.labels(name).set(NOW.timestamp())
    metrics.events_rejected.labels("facebook").inc()


def store(engine: Engine, directory: AccountDirectory) -> SliTotals:
    """Answered and open waits on two accounts, with their SLI outcomes decided."""
    events = [
        Event("facebook", "shop", "dm", "t1", "q1", "customer", NOW - timedelta(minutes=30)),
        Event("facebook", "shop", "dm", "t1", "a1", "business", NOW - timedelta(minutes=20)),
        Event("facebook", "shop", "comment", "t2", "q2", "customer", NOW - timedelta(minutes=9)),
        Event("instagram", "studio", "dm", "t3", "q3", "customer", NOW - timedelta(days=2)),
    ]
    Ingestor(engine, directory).ingest(events)
    totals = SliTotals(histogram_buckets(BUILTIN_PROFILES.values()))
    with engine.begin() as connection:
        totals.add(decide_outcomes(connection, lambda _id: directory.policy("shop"), NOW))
    return totals


@dataclass(frozen=True)
class Scrape:
    """/metrics in both formats, and the families the table says it must hold."""

    text: str
    openmetrics: str
    expected: set[str]


EVERY_SWITCH = MetricsModel(
    breakdowns=("channel", "tier"), response_time_histogram=True, account_details=True
)


@pytest.fixture(params=["run", "serve"])
async def scrape(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Scrape]:
    """/metrics in both formats from a run or serve registry, every [metrics] switch on."""
    async for scraped in scraped_metrics(request.param, sqlite_url, EVERY_SWITCH):
        yield scraped


async def scraped_metrics(mode: str, url: str, settings: MetricsModel) -> AsyncIterator[Scrape]:
    """Serve a run or serve registry over a small store with ``settings``, and scrape it."""
    engine = open_engine(url)
    directory = AccountDirectory(dataclasses.replace(Config.empty(), metrics=settings))
    figures = FiguresSnapshot(engine, directory, lambda: NOW, sli=store(engine, directory))
    figures.refresh()
    on = {s for s in SPECS if s.detail is None or enabled(s.detail, settings)}
    expected = {s.name for s in on if s.exporter in (Exporter.PROCESS, Exporter.FIGURES)}
    if mode == "run":
        metrics = Metrics(settings=settings)
        expected |= {s.name for s in on if s.exporter is Exporter.POLLING}
    else:
        metrics = Metrics(process_registry=CollectorRegistry(), settings=settings)
        record_cluster_polls(
            engine,
            NOW,
            state="failing",
            failures=1,
            duration=0.5,
            quota=0.2,
            stored=3,
            missed=1,
            successes=2,
        )
        health = ClusterHealth(engine, {"shop": 60.0}, settings.account_details, lambda: NOW)
        health.refresh()
        metrics.registry.register(health)
        expected |= {s.name for s in on if s.from_database}
    fill(metrics)
    exposition = ExpositionCache(metrics.registry, figures.render_live, figures.render_static)
    server = TestServer(build_app(exposition.handle, lambda: (True, {})), host="127.0.0.1")
    await server.start_server()
    accept = {"Accept": "application/openmetrics-text;version=1.0.0"}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/metrics")) as reply:
            text = await reply.text()
        async with session.get(server.make_url("/metrics"), headers=accept) as reply:
            openmetrics = await reply.text()
    yield Scrape(text, openmetrics, expected)
    await server.close()
    engine.dispose()


def check_family(name: str, kind: str, documentation: str, labels: set[str]) -> MetricSpec:
    spec = BY_NAME.get(name)
    assert spec is not None, f"{name} is not in monitor/export/specs.py"
    assert (kind, documentation) == (spec.type, spec.help), name
    assert labels <= set(spec.labels), name
    return spec


def test_every_scraped_family_is_in_the_table(scrape: Scrape) -> None:
    """Each family of a real scrape has the table's help, type and labels; none is missing."""
    seen = set()
    for family in parse_om(scrape.openmetrics):
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        seen.add(check_family(family.name, family.type, family.documentation, labels).name)
    assert seen == scrape.expected
    seen = set()
    for family in parse_text(scrape.text):
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        # No creation-time series (prometheus_client's _created), in either format.
        assert not family.name.endswith("_created"), family.name
        seen.add(check_family(family.name, family.type, family.documentation, labels).name)
    assert seen == scrape.expected
    assert specs.POLLS.total in scrape.text and specs.RESPONSE_TIME.bucket in scrape.text
    assert "_created" not in scrape.text and "_created" not in scrape.openmetrics


def enabled(detail: specs.Detail, settings: MetricsModel) -> bool:
    """Whether ``settings`` turn on the families behind ``detail``."""
    if detail in (specs.Detail.CHANNEL, specs.Detail.TIER):
        return detail.value in settings.breakdowns
    if detail is specs.Detail.HISTOGRAM:
        return settings.response_time_histogram
    return settings.account_details


def series_by_account(text: str) -> dict[str, int]:
    """How many series each account has in a text scrape."""
    counts: dict[str, int] = {}
    for family in parse_text(text):
        for sample in family.samples:
            if "account" in sample.labels:
                counts[sample.labels["account"]] = counts.get(sample.labels["account"], 0) + 1
    return counts


@pytest.mark.parametrize("mode", ["run", "serve"])
async def test_the_default_scrape_keeps_the_budget(mode: str, sqlite_url: str) -> None:
    """By default: at most 20 series per account, no switched-off family, the open waits of
    an account nobody waits on at 0 (present, not absent)."""
    async for scraped in scraped_metrics(mode, sqlite_url, MetricsModel()):
        per_account = series_by_account(scraped.text)
        assert set(per_account) >= {"shop", "studio"}, per_account
        assert max(per_account.values()) <= 20, per_account
        families = {family.name for family in parse_text(scraped.text)}
        switched = {s.name for s in SPECS if s.detail is not None}
        assert not families & switched, families & switched
        assert families >= scraped.expected - {specs.RESPONSE_TIME.name}
        # studio's customer wrote two days ago and still waits; shop's are all in the store.
        open_waits = {
            sample.labels["account"]: sample.value
            for family in parse_text(scraped.text)
            if family.name == specs.OPEN_WAITS.name
            for sample in family.samples
        }
        assert open_waits == {"shop": 1.0, "studio": 1.0}
        assert 'channel="all"' not in scraped.text and 'tier="all"' not in scraped.text


def test_cluster_health_describes_the_database_families_without_a_query() -> None:
    """describe() needs no engine, and lists exactly the table's from_database families."""
    described = list(ClusterHealth(None, {}, account_details=True).describe())  # type: ignore[arg-type]
    assert {f.name for f in described} == {s.name for s in SPECS if s.from_database}
    for family in described:
        check_family(family.name, family.type, family.documentation, set())
    default = list(ClusterHealth(None, {}).describe())  # type: ignore[arg-type]
    expected = {s.name for s in SPECS if s.from_database and s.detail is None}
    assert {f.name for f in default} == expected
