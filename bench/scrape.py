"""Benchmark: the metrics budget, and one /metrics scrape, at 100, 1,000 and 10,000 accounts.

Run with ``make bench-scrape`` (or ``.venv/bin/python bench/scrape.py``). For each size it
builds a store (two channels, a few answered waits and one customer waiting per account),
prepares every connector-health series as ``replywatch run`` does, decides SLI outcomes,
refreshes the figures snapshot and renders the exposition (the background work of one
refresh, timed), then times scrapes in the Prometheus text format and in OpenMetrics. It
reports series per account, samples and bytes per scrape (raw and gzip, as Prometheus
fetches it), and prints the rows of the README's budget table. The baseline, measured in the
same run, renders the same number of samples from plain prometheus_client gauges.

Targets, with the default ``[metrics]`` settings at 10,000 accounts: a scrape under 50 ms in
either format, under 15 MB of text, at most 20 series per account (judged at the largest size
given; exit code 1 when one is missed). A last run at the largest size turns every
``[metrics]`` switch on, to show what each costs (reported, not judged). ``--results FILE``
appends the judged figures for ``bench/all.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import Baseline, Result, add_results_option, record
from connectors.base import Event
from monitor.config.loading import Config
from monitor.config.schema import MetricsModel
from monitor.core.polls import AccountState
from monitor.core.profiles import BUILTIN_PROFILES
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.notify.alert_cycle import AlertCycle
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.sli import SliTotals, decide_outcomes, histogram_buckets

BUDGET_MS = 50.0
BUDGET_BYTES = 15_000_000
BUDGET_SERIES = 20
ALL_DETAILS = MetricsModel(
    breakdowns=("channel", "tier"), response_time_histogram=True, account_details=True
)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def build_store(url: str, accounts: int, seed: int) -> list[Event]:
    """Events for every account: answered waits on two channels and one customer waiting."""
    rng = random.Random(seed)
    events = []
    for a in range(accounts):
        name = f"acct-{a:05d}"
        for t in range(4):
            channel = "dm" if t % 2 == 0 else "comment"
            opened = NOW - timedelta(minutes=rng.randrange(30, 6 * 24 * 60))
            thread = f"{name}-t{t}"
            events.append(
                Event("facebook", name, channel, thread, f"{thread}-q", "customer", opened)
            )
            # Never after NOW: intake refuses times ahead of the clock it stores with.
            answer = min(NOW, opened + timedelta(seconds=rng.expovariate(1 / 900)))
            events.append(
                Event("facebook", name, channel, thread, f"{thread}-a", "business", answer)
            )
        events.append(
            Event(
                "facebook",
                name,
                "dm",
                f"{name}-open",
                f"{name}-open-q",
                "customer",
                NOW - timedelta(minutes=rng.randrange(1, 60)),
            )
        )
    return events


def timed(render: object, runs: int) -> list[float]:
    """Milliseconds per call of ``render()`` over ``runs`` calls."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        render()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


@dataclass(frozen=True)
class Measured:
    """One size's figures."""

    accounts: int
    samples: int
    text_bytes: int
    gzip_bytes: int
    refresh_s: float
    render_s: float
    scrape_ms: float
    openmetrics_ms: float
    baseline_ms: float
    per_account: int
    # The incremental monitor's round when one account changed: figures, then alerts (ms).
    one_changed_ms: tuple[float, float] = (0.0, 0.0)

    def row(self) -> str:
        """One row of the README's budget table."""
        return (
            f"| {self.accounts:,} | {self.per_account} | {self.samples:,} "
            f"| {self.text_bytes / 1e6:.2f} MB | {self.gzip_bytes / 1e6:.2f} MB "
            f"| {self.scrape_ms:.1f} ms / {self.openmetrics_ms:.1f} ms "
            f"| {self.refresh_s * 1000:.0f} ms + {self.render_s * 1000:.0f} ms |"
        )


def series_per_account(text: bytes) -> int:
    """The most series any one account has in a scrape (counted by its account label)."""
    counts: Counter[bytes] = Counter()
    for line in text.splitlines():
        if line.startswith(b"#") or b'account="' not in line:
            continue
        counts[line.split(b'account="', 1)[1].split(b'"', 1)[0]] += 1
    return max(counts.values(), default=0)


def measure(accounts: int, runs: int, seed: int, settings: MetricsModel) -> Measured:
    """Build a store of ``accounts`` accounts and time its refresh, render and scrapes."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        config = dataclasses.replace(Config.empty(), metrics=settings)
        directory = AccountDirectory(config)
        Ingestor(engine, directory).ingest(build_store("", accounts, seed), seen_at=NOW)

        metrics = Metrics(settings=settings)
        for a in range(accounts):
            name = f"acct-{a:05d}"
            metrics.prepare_account("facebook", name, 60.0)
            metrics.set_state("facebook", name, AccountState.OK)
            metrics.set_targets("facebook", name, BUILTIN_PROFILES["strict"])
            if settings.account_details:
                metrics.last_success.labels("facebook", name).set(NOW.timestamp())
        totals = SliTotals(histogram_buckets(BUILTIN_PROFILES.values()))
        with engine.begin() as connection:
            totals.add(decide_outcomes(connection, lambda _id: directory.policy("x"), NOW))
        snapshot = FiguresSnapshot(engine, directory, lambda: NOW, totals, include_live=False)
        exposition = ExpositionCache(metrics.registry, snapshot.render_live, snapshot.render_static)
        exposition.stale(openmetrics=True)  # a scraper asked for OpenMetrics once
        # One refresh's background work: the figures, then the render in both formats.
        refresh = statistics.median(timed(snapshot.refresh, 3)) / 1000
        render = statistics.median(timed(exposition.refresh, 3)) / 1000

        one_changed = round_with_one_change(engine, directory, totals, accounts)

        text = exposition.body(False)
        samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        scrape = statistics.median(timed(lambda: exposition.body(False), runs))
        openmetrics = statistics.median(timed(lambda: exposition.body(True), runs))
        engine.dispose()
    baseline = statistics.median(timed(baseline_render(samples), runs))
    return Measured(
        accounts,
        samples,
        len(text),
        len(gzip.compress(text, compresslevel=6)),
        refresh,
        render,
        scrape,
        openmetrics,
        baseline,
        series_per_account(text),
        one_changed,
    )


def round_with_one_change(
    engine: Engine, directory: AccountDirectory, totals: SliTotals, accounts: int
) -> tuple[float, float]:
    """Milliseconds of `replywatch run`'s figures refresh and alert round when one account
    changed since the last: what cost follows when it follows change, not size."""
    snapshot = FiguresSnapshot(
        engine, directory, lambda: NOW, totals, include_live=False, incremental=True
    )
    alerts = AlertCycle(engine, directory, [], lambda: NOW, incremental=True)
    snapshot.refresh()  # the first refresh and round derive every account
    alerts._step(NOW, [])
    changed = [("facebook", f"acct-{accounts // 2:05d}")]

    def figures() -> None:
        snapshot.mark_changed(changed)
        snapshot.refresh()

    def alert_round() -> None:
        alerts.mark_changed(changed)
        alerts._step(NOW, [])

    return statistics.median(timed(figures, 5)), statistics.median(timed(alert_round, 5))


def baseline_render(samples: int) -> object:
    """``generate_latest`` over ``samples`` plain labelled gauges, ready to time."""
    registry = CollectorRegistry()
    per_gauge = 1000
    gauges = [
        Gauge(f"baseline_{i}", "baseline", ["platform", "account", "channel"], registry=registry)
        for i in range(samples // per_gauge + 1)
    ]
    for i in range(samples):
        gauges[i // per_gauge].labels("facebook", f"acct-{i:07d}", "dm").set(i)
    return lambda: generate_latest(registry)


def verdicts(rows: list[Measured]) -> list[Result]:
    """The judged figures: both scrapes and the text at the largest size, series per account."""
    largest = rows[-1]
    at = f"at {largest.accounts:,} accounts"
    baseline = Baseline(largest.baseline_ms, "prometheus_client, as many plain gauges")
    scrapes = [("text", largest.scrape_ms), ("OpenMetrics", largest.openmetrics_ms)]
    judged = [
        Result(
            "scrape",
            f"scrape ({name}) {at}",
            ms,
            "ms",
            baseline,
            ms / largest.baseline_ms,
            f"< {BUDGET_MS:g} ms",
            ms < BUDGET_MS,
        )
        for name, ms in scrapes
    ]
    judged.append(
        Result(
            "scrape",
            f"exposition text {at}",
            largest.text_bytes / 1e6,
            "MB",
            None,
            None,
            f"< {BUDGET_BYTES / 1e6:g} MB",
            largest.text_bytes < BUDGET_BYTES,
        )
    )
    most = max(rows, key=lambda row: row.per_account)
    judged.append(
        Result(
            "scrape",
            "series per account (most, any size)",
            most.per_account,
            "",
            None,
            None,
            f"<= {BUDGET_SERIES}",
            most.per_account <= BUDGET_SERIES,
        )
    )
    return judged


def main() -> int:
    """Parse the options, measure every size, print the budget table and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    add_results_option(parser)
    args = parser.parse_args()

    print(
        "| accounts | series per account | samples | text | gzip | scrape text / OpenMetrics "
        "| per refresh: figures + render |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = [measure(size, args.runs, args.seed, MetricsModel()) for size in args.accounts]
    for row in rows:
        print(row.row())
    largest = rows[-1]
    full = measure(largest.accounts, args.runs, args.seed, ALL_DETAILS)
    print(f"every [metrics] switch on at {full.accounts:,} accounts:")
    print(full.row())
    print("a round of `replywatch run` with one account changed (figures refresh, alert round):")
    for row in rows:
        figures, alerts = row.one_changed_ms
        print(f"  {row.accounts:>6,} accounts: {figures:.1f} ms + {alerts:.1f} ms")
    print(
        f"baseline at {largest.accounts:,} accounts, prometheus_client rendering "
        f"{largest.samples:,} plain gauges: {largest.baseline_ms:.0f} ms; the scrape is "
        f"{largest.scrape_ms / largest.baseline_ms:.3f} of it (text), "
        f"{largest.openmetrics_ms / largest.baseline_ms:.3f} (OpenMetrics)"
    )
    judged = verdicts(rows)
    record(args.results, judged)
    within = all(result.passed for result in judged)
    verdict = "within" if within else "OVER"
    print(
        f"{verdict} the budget at {largest.accounts:,} accounts: scrape under {BUDGET_MS:.0f} ms, "
        f"text under {BUDGET_BYTES / 1e6:.0f} MB, at most {BUDGET_SERIES} series per account"
    )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
