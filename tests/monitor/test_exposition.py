"""/metrics from pre-rendered bytes: both formats parse, ages are current, big registries cached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from connectors.base import Event
from monitor.config.loading import Config
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.http.app import build_app
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def parts(sqlite_url: str) -> Iterator[tuple[FiguresSnapshot, FiguresSnapshot, Clock, Counter]]:
    """The same store behind a full collector and a cached one (live families rendered apart)."""
    engine = open_engine(sqlite_url)
    directory = AccountDirectory(Config.empty())
    at = NOW - timedelta(minutes=30)
    events = [
        Event("facebook", 'we"ird\\shop', "dm", "t1", "q1", "customer", at),
        Event("facebook", 'we"ird\\shop', "comment", "t2", "q2", "customer", at),
        Event("instagram", "studio", "dm", "t3", "q3", "customer", NOW - timedelta(minutes=5)),
        Event("instagram", "studio", "dm", "t3", "a3", "business", NOW - timedelta(minutes=1)),
    ]
    Ingestor(engine, directory).ingest(events)
    clock = Clock()
    full = FiguresSnapshot(engine, directory, clock)
    cached = FiguresSnapshot(engine, directory, clock, include_live=False)
    full.refresh()
    cached.refresh()
    counter = Counter(
        "replywatch_test_polls", "A counter that moves between renders.", registry=None
    )
    yield full, cached, clock, counter
    engine.dispose()


def samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families  # type: ignore[attr-defined]
        for s in family.samples
    }


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_cached_body_equals_a_full_render_and_parses(
    parts: tuple[FiguresSnapshot, FiguresSnapshot, Clock, Counter], openmetrics: bool
) -> None:
    """Pre-rendered part + live part = what the full collector gives, in both formats."""
    full, cached, clock, _counter = parts
    full_registry, cached_registry = CollectorRegistry(), CollectorRegistry()
    full_registry.register(full)
    cached_registry.register(cached)
    exposition = ExpositionCache(cached_registry, cached.render_live)
    reference = ExpositionCache(full_registry, lambda _om: b"")
    clock.now += timedelta(minutes=7)
    exposition.stale(openmetrics)
    reference.stale(openmetrics)
    exposition.refresh()
    reference.refresh()
    parse = parse_om if openmetrics else parse_text
    got = samples(parse(exposition.body(openmetrics).decode()))
    want = samples(parse(reference.body(openmetrics).decode()))
    assert got == want
    oldest = (
        "replywatch_oldest_open_wait_seconds",
        (("account", 'we"ird\\shop'), ("platform", "facebook")),
    )
    assert got[oldest] == 37 * 60
    if openmetrics:
        assert exposition.body(True).endswith(b"# EOF\n")


def test_an_expensive_registry_is_served_from_the_last_render_with_current_ages(
    parts: tuple[FiguresSnapshot, FiguresSnapshot, Clock, Counter],
) -> None:
    """Counters move only at the next background render; the oldest wait ages at scrape."""
    _full, cached, clock, counter = parts
    registry = CollectorRegistry()
    registry.register(cached)
    registry.register(counter)
    exposition = ExpositionCache(registry, cached.render_live)
    exposition.refresh()
    exposition.render_seconds = 1.0  # as measured on a registry of 10,000 accounts
    counter.inc()
    clock.now += timedelta(minutes=10)
    assert not exposition.stale(False)
    got = samples(parse_text(exposition.body(False).decode()))
    assert got[("replywatch_test_polls_total", ())] == 0
    age = (
        "replywatch_oldest_open_wait_seconds",
        (("account", "studio"), ("platform", "instagram")),
    )
    assert got[age] == 0  # answered: nobody waits, and the series says so
    assert got[("replywatch_open_waits", age[1])] == 0
    key = (
        "replywatch_oldest_open_wait_seconds",
        (("account", 'we"ird\\shop'), ("platform", "facebook")),
    )
    assert got[key] == 40 * 60
    exposition.refresh()
    again = samples(parse_text(exposition.body(False).decode()))
    assert again[("replywatch_test_polls_total", ())] == 1


@pytest.fixture
async def served(
    parts: tuple[FiguresSnapshot, FiguresSnapshot, Clock, Counter],
) -> AsyncIterator[str]:
    _full, cached, _clock, _counter = parts
    registry = CollectorRegistry()
    registry.register(cached)
    exposition = ExpositionCache(registry, cached.render_live)
    server = TestServer(build_app(exposition.handle, lambda: (True, {})), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/metrics"))
    await server.close()


async def test_the_scraper_chooses_the_format(served: str) -> None:
    """Prometheus' OpenMetrics Accept header gets OpenMetrics; anything else gets text."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with aiohttp.ClientSession() as session:
        async with session.get(served, headers={"Accept": accept}) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            body = await response.text()
        async with session.get(served) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    assert body.endswith("# EOF\n") and "# EOF" not in text
    assert list(parse_om(body)) and list(parse_text(text))


def test_background_renders_are_spaced_by_their_cost(
    parts: tuple[FiguresSnapshot, FiguresSnapshot, Clock, Counter],
) -> None:
    """A cheap registry is never rendered in the background; an expensive one not back to back."""
    _full, cached, _clock, _counter = parts
    registry = CollectorRegistry()
    exposition = ExpositionCache(registry, cached.render_live, cached.render_static)
    exposition.refresh()
    assert not exposition.background_due()  # cheap: every scrape renders afresh
    exposition.render_seconds = 3.0
    assert not exposition.background_due()  # just rendered; next in 30 s
    exposition._rendered_at -= 31
    assert exposition.background_due()
