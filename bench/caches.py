"""Benchmark: what each long-lived in-memory structure of ``replywatch run`` holds, and its size.

Run with ``.venv/bin/python bench/caches.py`` (5,000 and 10,000 accounts by default). For each
size it builds a store as ``bench/scrape.py`` does (two channels, a few answered waits and
one customer waiting per account), then builds the structures ``replywatch run`` keeps for
the life of the process, the way its runtime (``monitor.service.runtime``) builds them:

* ``RecentlyStored``, filled as steady polling fills it: per account one backfill batch of
  a few messages, then small polls (each re-reading the previous poll's newest message, the
  overlap) until the account holds its bound (the fewest ids an account keeps, as its polls
  are small) and a few polls past it. Its most, every account at the cap of 2,000 ids (polls
  of 1,000 messages), is estimated from a sample of accounts filled that way, scaled to the
  size (20 million entries are not allocated).
* ``AlertCycle`` (incremental) after ``load()`` and one ``_step``, its decisions added to its
  totals as ``run()`` adds them: its due times and its ``SliTotals``.
* ``FiguresSnapshot`` (incremental, reading those totals) after a full ``refresh()``: the
  snapshot a scrape reads, the open-wait entries, each account's figures between refreshes
  (``_lines``, rendered sample lines, or ``_rows``, label texts and Figures, whichever the
  code keeps) and the due times.
* ``ExpositionCache`` after ``refresh()``: the rendered text (and OpenMetrics with
  ``--openmetrics``).
* The process registry (``Metrics``) with every account prepared as ``bench/scrape.py``
  prepares it.
* SQLite's page cache: ``MONITOR_CACHE_MIB`` per pooled connection times the pool's most
  connections, read from the engine (an upper bound, not measured).

How the sizes are measured: ``tracemalloc`` runs while the structures are built, and each
one's size is the traced memory freed when the references to it are dropped (the attribute
set to an empty value, or the object deleted), after ``gc.collect()``. That is the memory the
structure alone keeps alive, what bounding or removing it would give back. The difference of
two tracemalloc snapshots taken around construction would also count what building it warmed
elsewhere (SQLAlchemy's statement cache, the account directory), which stays when the
structure goes; that part is printed on its own, as "not attributed" (what building kept
minus what dropping everything gave back). Objects two structures share are counted with the
one dropped last, in the tables' order: the figures snapshot is dropped before the per-account
entries it may re-use, so it counts only what is its own. The registry is dropped with the
cache's reference to it, its only other holder. An attribute that does not exist is an error,
not 0 MB (the code it measures may be renamed). tracemalloc counts the bytes Python
allocated; the resident size is larger (allocator arenas, fragmentation), and SQLite's own
memory is not traced at all. The Python heap after importing what ``replywatch run`` imports
is the resident size (VmRSS) of a fresh interpreter that imports only those modules, so
nothing this script imports counts. MB are 10^6 bytes.

``--results FILE`` appends every figure for ``bench/all.py`` (reported, not judged).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import Result, add_results_option, record
from bench.scrape import NOW, build_store
from connectors.base import Event
from monitor.config.loading import Config
from monitor.core.due_times import DueTimes
from monitor.core.polls import AccountState
from monitor.core.profiles import BUILTIN_PROFILES
from monitor.export.exposition import ExpositionCache
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.export.metrics import Metrics
from monitor.notify.alert_cycle import AlertCycle
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import MONITOR_CACHE_MIB, open_engine
from monitor.store.ingest import Ingestor
from monitor.store.recent import RecentlyStored

ROOT = Path(__file__).resolve().parent.parent
MB = 1e6
RUN_IMPORTS = "monitor.cli.main, monitor.service.runtime, monitor.cli.commands.run"
# Steady polling of a quiet account: a backfill of a few messages, then polls that bring one
# new message and re-read the previous poll's newest (the overlap that guards against gaps).
BACKFILL = 5
NEW_PER_POLL = 1
# Polls past the bound, so the account is evicting (steady state), not just full.
PAST_BOUND = 4
OLD_BOUND = 2000
# Accounts filled to the old 2,000 ids to estimate its cost per account: a tenth of them, at
# most 50 (100,000 entries; every account costs the same, the sample need not be large).
OLD_SAMPLE = 50


@dataclass(frozen=True)
class Held:
    """One structure's measured (or estimated) size at one size of deployment."""

    structure: str
    holds: str
    bound: str
    bytes: int
    # How the figure was obtained when it is not a measurement: "estimate", "upper bound".
    note: str = ""

    def mb(self, unit: str = "") -> str:
        """The size in MB as the tables show it (with the note when not measured)."""
        text = f"{self.bytes / MB:.2f}{unit}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Measured:
    """Every structure's size at one number of accounts."""

    accounts: int
    held: list[Held]
    seconds: float


@contextlib.contextmanager
def traced() -> Iterator[None]:
    """tracemalloc running for the block (left running when it already was)."""
    if tracemalloc.is_tracing():
        yield
        return
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def freed(drop: Callable[[], object]) -> int:
    """Bytes of traced memory given back once ``drop()`` has run and garbage is collected."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    drop()
    gc.collect()
    return before - tracemalloc.get_traced_memory()[0]


def graph_id(rng: random.Random) -> str:
    """A message id shaped like the Graph API's: ``m_`` and 40 url-safe characters."""
    return "m_" + base64.urlsafe_b64encode(rng.randbytes(30)).decode()


def steady_polls(
    name: str, rng: random.Random, backfill: int, new_per_poll: int
) -> Iterator[tuple[list[Event], dict[str, str]]]:
    """One account's committed batches with their cursors: the backfill, then endless polls."""
    thread = f"dm/{name}-customer"
    at = NOW - timedelta(days=7)

    def message(when: datetime) -> Event:
        # Each its own datetime and id, as a connector parses them from a response.
        return Event("facebook", name, "dm", thread, graph_id(rng), "customer", when)

    batch = [message(at + timedelta(minutes=i)) for i in range(backfill)]
    while True:
        at = batch[-1].created_at
        # The cursor a Graph connector saves: each channel's newest time, as text.
        yield batch, {"dm": at.isoformat(), "comment": at.isoformat()}
        fresh = [message(at + timedelta(minutes=i + 1)) for i in range(new_per_poll)]
        batch = [batch[-1], *fresh]


def fill_recent(
    accounts: int,
    per_account: int = OLD_BOUND,
    backfill: int = BACKFILL,
    new_per_poll: int = NEW_PER_POLL,
    seed: int = 7,
) -> RecentlyStored:
    """A RecentlyStored as steady polling leaves it: every account at its bound, evicting."""
    rng = random.Random(seed)
    recent = RecentlyStored(per_account)
    for a in range(accounts):
        name = f"acct-{a:05d}"
        key = ("facebook", name)
        past = 0
        for batch, cursor in steady_polls(name, rng, backfill, new_per_poll):
            recent.remember(batch, NOW)
            recent.remember_cursor(key, cursor)
            if len(recent._ids[key]) >= recent.bound(key):
                past += 1
                if past > PAST_BOUND:
                    break
    return recent


def recent_size(recent_of: Callable[[], RecentlyStored]) -> tuple[int, int]:
    """(bytes it holds, ids it holds) for the RecentlyStored ``recent_of()`` builds."""
    with traced():
        held = [recent_of()]
        ids = sum(len(kept) for kept in held[0]._ids.values())
        return freed(held.clear), ids


def fewest_ids() -> int:
    """The fewest ids RecentlyStored keeps per account (the bound of one with small polls)."""
    return RecentlyStored().bound(("", ""))


def measure_recent(accounts: int) -> list[Held]:
    """RecentlyStored at the quiet steady state, and at its cap (estimated from a sample)."""
    size, ids = recent_size(lambda: fill_recent(accounts))
    # The cap, 2,000 ids: polls of 1,000 messages set an account's bound to it, so filling a
    # sample that way measures the most an account can hold.
    sample = min(OLD_SAMPLE, max(1, accounts // 10))
    old, old_ids = recent_size(
        lambda: fill_recent(sample, new_per_poll=OLD_BOUND // 2 - NEW_PER_POLL)
    )
    assert old_ids == sample * OLD_BOUND, old_ids
    per_id = size / ids
    return [
        Held(
            "RecentlyStored",
            f"message ids stored lately, with their times, and each account's cursor "
            f"({ids // accounts} ids per account, {per_id:.0f} B per id)",
            f"per account max({fewest_ids()}, 2 x largest poll), at most {OLD_BOUND:,}",
            size,
        ),
        Held(
            "RecentlyStored, every account at its cap",
            f"the same if every account's polls brought {OLD_BOUND // 2:,} messages: "
            f"{OLD_BOUND:,} ids each ({old / old_ids:.0f} B per id)",
            f"{OLD_BOUND:,} per account",
            round(old / sample * accounts),
            "estimate",
        ),
    ]


def prepare_metrics(accounts: int) -> Metrics:
    """The process registry with every connector-health series, as bench/scrape.py makes it."""
    metrics = Metrics()
    for a in range(accounts):
        name = f"acct-{a:05d}"
        metrics.prepare_account("facebook", name, 60.0)
        metrics.set_state("facebook", name, AccountState.OK)
        metrics.set_targets("facebook", name, BUILTIN_PROFILES["strict"])
    return metrics


def measure_run_structures(accounts: int, seed: int, openmetrics: bool) -> list[Held]:
    """Build a store and the run's alert cycle, figures, exposition and registry; size them."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(
            f"sqlite:///{Path(tmp) / 'bench.db'}", sqlite_cache_mib=MONITOR_CACHE_MIB
        )
        directory = AccountDirectory(Config.empty())
        Ingestor(engine, directory).ingest(build_store("", accounts, seed), seen_at=NOW)
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]

        # Built as monitor.service.runtime builds them; kept only in ``parts`` so that
        # dropping an attribute or a part is what frees it.
        parts: dict[str, Any] = {}
        alerts = AlertCycle(engine, directory, [], lambda: NOW, incremental=True)
        alerts.load()
        decisions, _changes = alerts._step(NOW, [])
        alerts.totals.add(decisions)
        figures = FiguresSnapshot(
            engine, directory, lambda: NOW, alerts.totals, include_live=False, incremental=True
        )
        figures.refresh()
        metrics = prepare_metrics(accounts)
        exposition = ExpositionCache(metrics.registry, figures.render_live, figures.render_static)
        if openmetrics:
            exposition.stale(openmetrics=True)  # a scraper asked for OpenMetrics once
        exposition.refresh()
        parts.update(
            alerts=alerts,
            figures=figures,
            totals=alerts.totals,
            metrics=metrics,
            exposition=exposition,
        )
        del alerts, figures, metrics, exposition, decisions, _changes
        gc.collect()
        built = tracemalloc.get_traced_memory()[0] - start
        held = measure_parts(parts, openmetrics)
        pool = engine.pool
        connections = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
        engine.dispose()
    held.append(
        Held(
            "not attributed",
            "what building these kept alive elsewhere: SQLAlchemy's statement cache, "
            "the account directory",
            "-",
            built - sum(h.bytes for h in held),
        )
    )
    held.append(
        Held(
            "SQLite page cache",
            f"database pages, {MONITOR_CACHE_MIB} MiB per pooled connection "
            f"(not in the Python heap)",
            f"{pool.size()} pooled + {pool._max_overflow} overflow connections",  # type: ignore[attr-defined]
            MONITOR_CACHE_MIB * 2**20 * connections,
            "upper bound",
        )
    )
    return held


# Each account's figures between refreshes, by the name the snapshot keeps them under: the
# rendered sample lines (kept since the figures refresh renders once per change), or the
# label texts and Figures they replace. Whichever the snapshot has is measured.
FIGURES_ROWS = {
    "_lines": "per account, family group and family: its rendered sample lines",
    "_rows": "per account and family group: label text and Figures",
}
PER_ACCOUNT_ROWS = "one per stored account (x channels, tiers when broken down)"


def emptied(target: object, attribute: str, empty: Callable[[], object]) -> Callable[[], None]:
    """A call that replaces ``target.attribute`` with ``empty()`` (for ``freed``)."""
    if not hasattr(target, attribute):
        # setattr would add it and free nothing: a renamed structure must not read 0 MB.
        raise AttributeError(f"{type(target).__name__} has no {attribute} to measure")
    return lambda: setattr(target, attribute, empty())


def measure_parts(parts: dict[str, Any], openmetrics: bool) -> list[Held]:
    """Drop each structure in turn (shared parts go with the last one), measuring what it frees."""
    buckets = len(parts["totals"].buckets) + 1
    # (structure, what it holds, bound, part, attribute, its empty value), dropped in this
    # order. The snapshot re-uses the rows' and the open-wait entries' tuples: dropped
    # before them, it counts only what is its own. Nothing here is kept in a local name:
    # a reference left in this frame would keep what ``freed`` is meant to see go.
    drops: list[tuple[str, str, str, str, str, Callable[[], object]]] = [
        (
            "ExpositionCache (text)",
            "the last background render of the registry and the window figures, as bytes",
            "one render",
            "exposition",
            "_text",
            lambda: None,
        ),
        (
            "FiguresSnapshot._snapshot",
            "what a scrape reads: the figures families' text (or rows) in label order, "
            "account names by id, open waits, deadline lines",
            "one, replaced at each refresh",
            "figures",
            "_snapshot",
            lambda: None,
        ),
        (
            "FiguresSnapshot._live",
            "per account: open-wait count, oldest opening, deadline lines",
            "one per stored account",
            "figures",
            "_live",
            dict,
        ),
        *[
            (f"FiguresSnapshot.{attribute}", holds, PER_ACCOUNT_ROWS, "figures", attribute, dict)
            for attribute, holds in FIGURES_ROWS.items()
            if hasattr(parts["figures"], attribute)
        ],
        (
            "FiguresSnapshot._due",
            "per account: when its figures next move by time alone",
            "one per stored account",
            "figures",
            "_due",
            DueTimes,
        ),
        (
            "AlertCycle._due",
            "per account id: when its outcomes or alerts next move by time alone",
            "one per stored account",
            "alerts",
            "_due",
            DueTimes,
        ),
        (
            "AlertCycle.totals (SliTotals)",
            f"met/missed, answered, sum and {buckets} histogram buckets per "
            "(account, channel, tier)",
            "one per (account, channel, tier) decided",
            "totals",
            "counts",
            dict,
        ),
    ]
    if openmetrics:
        drops.insert(
            1,
            (
                "ExpositionCache (OpenMetrics)",
                "the same in OpenMetrics, kept once a scraper has asked for it",
                "one render",
                "exposition",
                "_openmetrics",
                lambda: None,
            ),
        )
    if not any(hasattr(parts["figures"], attribute) for attribute in FIGURES_ROWS):
        raise AttributeError(f"FiguresSnapshot keeps none of {sorted(FIGURES_ROWS)}")
    held = [
        Held(structure, holds, bound, freed(emptied(parts[part], attribute, empty)))
        for structure, holds, bound, part, attribute, empty in drops
    ]
    # The registry: the cache that renders it is its only other holder.
    registry_gone = emptied(parts["exposition"], "registry", lambda: None)
    held.append(
        Held(
            "Metrics (process registry)",
            "connector-health series and their labelled children per account",
            "a fixed number of series per account",
            freed(lambda: (registry_gone(), parts.pop("metrics"))),
        )
    )
    # What is left once their structures are dropped: settings, the outbox, locks, the
    # cache's callbacks. Small, and shown so that nothing hides there.
    held.append(
        Held(
            "AlertCycle, FiguresSnapshot, ExpositionCache (the rest)",
            "the objects themselves once emptied: settings, outbox, locks",
            "fixed",
            freed(parts.clear),
        )
    )
    return held


def python_heap_after_imports() -> int:
    """VmRSS in bytes of a fresh interpreter that imports what ``replywatch run`` imports."""
    code = (
        f"import {RUN_IMPORTS}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'):\n"
        "        print(int(line.split()[1]) * 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return int(done.stdout)


def measure(accounts: int, seed: int = 7, openmetrics: bool = False) -> Measured:
    """Every structure's size at ``accounts`` accounts (tracemalloc running meanwhile)."""
    started = time.perf_counter()
    with traced():
        held = measure_recent(accounts)
        held += measure_run_structures(accounts, seed, openmetrics)
    return Measured(accounts, held, time.perf_counter() - started)


def python_total(measured: Measured) -> int:
    """Bytes the measured structures hold in the Python heap (no estimates, no SQLite)."""
    return sum(h.bytes for h in measured.held if not h.note)


def size_table(measured: Measured, heap: int) -> str:
    """One size's table: structure, what it holds, bound, MB."""
    lines = [
        f"{measured.accounts:,} accounts (measured in {measured.seconds:.0f} s)",
        "| structure | what it holds | bound | MB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {h.structure} | {h.holds} | {h.bound} | {h.mb()} |" for h in measured.held]
    total = python_total(measured)
    lines.append(
        f"Python heap held by these: {total / MB:.1f} MB; with the imports' {heap / MB:.1f} MB "
        f"(VmRSS): {(total + heap) / MB:.1f} MB, before SQLite's caches and allocator slack"
    )
    return "\n".join(lines)


def readme_table(rows: list[Measured], heap: int) -> str:
    """The README's table: one row per structure, one column per size."""
    sizes = " | ".join(f"{m.accounts:,} accounts" for m in rows)
    lines = [
        f"| structure | what it holds | bound | {sizes} |",
        "|---|---|---|" + "---|" * len(rows),
    ]
    for i, first in enumerate(rows[0].held):
        cells = " | ".join(m.held[i].mb(" MB") for m in rows)
        lines.append(f"| {first.structure} | {first.holds} | {first.bound} | {cells} |")
    # What the rows above add up to, beside the heap every run starts with.
    totals = " | ".join(f"{python_total(m) / MB:.2f} MB" for m in rows)
    lines.append(f"| all of the above (Python heap, measured) | | | {totals} |")
    imports = " | ".join(f"{heap / MB:.0f} MB" for _ in rows)
    lines.append(
        f"| Python heap after run's imports (VmRSS) | modules, before any account | - | {imports} |"
    )
    return "\n".join(lines)


def results(rows: list[Measured], heap: int) -> list[Result]:
    """Every figure as a reported (not judged) row for bench/all.py."""
    out = [
        Result(
            "caches",
            "Python heap after run's imports (VmRSS)",
            heap / MB,
            "MB",
            None,
            None,
            "reported",
            True,
        )
    ]
    for m in rows:
        for h in m.held:
            figure = f"{h.structure} at {m.accounts:,} accounts"
            if h.note:
                figure += f" ({h.note})"
            out.append(Result("caches", figure, h.bytes / MB, "MB", None, None, "reported", True))
    return out


def main() -> int:
    """Parse the options, measure every size, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[5_000, 10_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--openmetrics", action="store_true", help="also keep (and size) the OpenMetrics render"
    )
    add_results_option(parser)
    args = parser.parse_args()

    heap = python_heap_after_imports()
    print(f"Python heap after importing {RUN_IMPORTS}: {heap / MB:.1f} MB (VmRSS)\n")
    rows = []
    for size in args.accounts:
        rows.append(measure(size, args.seed, args.openmetrics))
        print(size_table(rows[-1], heap) + "\n")
    print(readme_table(rows, heap))
    record(args.results, results(rows, heap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
