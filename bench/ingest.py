"""Benchmark: replywatch's CSV import against raw sqlite3 executemany, in the same run.

Run with ``make bench-ingest`` (or ``.venv/bin/python bench/ingest.py --events 1000000``).
It writes one million synthetic events for 1,000 accounts to a CSV file, then measures
1. raw ``sqlite3`` ``executemany`` inserts of the same rows into a table with the same unique
   key (WAL, the same batch size), the baseline;
2. ``replywatch import`` of the CSV into a fresh store (parsing, validation, bulk insert and
   wait derivation included);
3. ``replywatch stats`` for all accounts (default 7-day window) and over all the data.
It prints events per second, the ratio to the baseline (target >= 0.6, issue 17) and the
stats times (target for the 7-day window < 0.5 s; the stats over all the data are reported,
not judged), and exits 1 when a target is missed. ``--results FILE`` appends the judged
figures for ``bench/all.py``; ``--keep-store DIR`` leaves the CSV and the imported store in DIR
(``events.csv``, ``replywatch.db``) so that ``bench/summary.py --store DIR`` can reuse them.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import Baseline, Result, add_results_option, record
from monitor.cli.main import main as replywatch

BATCH = 5000
IMPORT_RATIO = 0.6
STATS_SECONDS = 0.5
# The names bench/summary.py --store looks for in a folder left by --keep-store.
CSV_NAME = "events.csv"
STORE_NAME = "replywatch.db"


def synthesise(path: Path, events: int, accounts: int, seed: int) -> list[tuple[str, ...]]:
    """Write a CSV of realistic conversations and return its rows."""
    rng = random.Random(seed)
    end = datetime(2026, 11, 20, tzinfo=UTC)
    span = timedelta(days=30).total_seconds()
    rows: list[tuple[str, ...]] = []
    thread = 0
    while len(rows) < events:
        thread += 1
        account = f"acct-{rng.randrange(accounts):04d}"
        at = end - timedelta(seconds=rng.random() * span)
        thread_id = f"t{thread}"
        for turn in range(rng.choice((2, 2, 3, 4, 6))):
            if len(rows) >= events:
                break
            role = "customer" if turn % 2 == 0 else "business"
            if role == "business" and rng.random() < 0.05:
                role = "automated"
            at += timedelta(seconds=rng.expovariate(1 / 900))
            message_id = f"{rng.getrandbits(64):016x}"
            rows.append(
                (
                    "facebook",
                    account,
                    thread_id,
                    message_id,
                    role,
                    at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "dm",
                )
            )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            (
                "platform",
                "account",
                "thread_id",
                "message_id",
                "author_role",
                "created_at",
                "channel",
            )
        )
        writer.writerows(rows)
    return rows


def raw_baseline(path: Path, rows: list[tuple[str, ...]]) -> float:
    """Seconds for plain sqlite3 executemany of the rows, batch by batch."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, platform TEXT, account TEXT, "
        "thread_id TEXT, message_id TEXT, author_role TEXT, created_at TEXT, channel TEXT, "
        "UNIQUE (account, message_id))"
    )
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        with connection:
            connection.executemany(
                "INSERT OR IGNORE INTO events (platform, account, thread_id, message_id, "
                "author_role, created_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows[start : start + BATCH],
            )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def timed_cli(*args: str) -> tuple[float, str]:
    """Run a replywatch command in-process; return seconds and its output."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    code = replywatch(list(args), out=out, err=err)
    elapsed = time.perf_counter() - started
    if code != 0:
        sys.exit(f"replywatch {' '.join(args)} failed ({code}): {err.getvalue()[-500:]}")
    return elapsed, out.getvalue()


def run(
    events: int,
    accounts: int,
    seed: int,
    workdir: Path,
    keep: Path | None = None,
    results: Path | None = None,
) -> int:
    """Run every measurement and print the report; non-zero when a target is missed."""
    kept = keep or workdir
    csv_path = kept / CSV_NAME
    # A store left by an earlier run would turn the import into a re-import of duplicates.
    for suffix in ("", "-wal", "-shm"):
        (kept / (STORE_NAME + suffix)).unlink(missing_ok=True)
    print(f"synthesising {events:,} events for {accounts:,} accounts ...", flush=True)
    rows = synthesise(csv_path, events, accounts, seed)
    # The baseline runs before and after the import and the mean is used, so a machine that
    # speeds up or slows down during the run biases the ratio less.
    raw_before = raw_baseline(workdir / "raw-1.db", rows)
    url = f"sqlite:///{kept / STORE_NAME}"
    import_seconds, _ = timed_cli("--database", url, "import", "--progress", "never", str(csv_path))
    raw_after = raw_baseline(workdir / "raw-2.db", rows)
    raw_seconds = (raw_before + raw_after) / 2
    as_of = "2026-11-20T00:00:00Z"
    stats_seconds, output = timed_cli(
        "--database", url, "stats", "--as-of", as_of, "--format", "csv"
    )
    all_seconds, _ = timed_cli(
        "--database", url, "stats", "--as-of", as_of, "--from", "2026-01-01", "--format", "csv"
    )
    reported = output.count("\n") - 1
    raw_rate = len(rows) / raw_seconds
    import_rate = len(rows) / import_seconds
    ratio = import_rate / raw_rate
    print(f"{'measurement':<42}{'seconds':>10}{'events/s':>12}")
    print(f"{'raw sqlite3 executemany (baseline, mean)':<42}{raw_seconds:>10.2f}{raw_rate:>12,.0f}")
    print(f"{'  runs before and after the import':<42}{raw_before:>10.2f}{raw_after:>10.2f}")
    print(
        f"{'replywatch import (csv -> events + waits)':<42}{import_seconds:>10.2f}"
        f"{import_rate:>12,.0f}"
    )
    print(f"ratio replywatch / raw: {ratio:.2f} (target >= {IMPORT_RATIO:.2f})")
    print(
        f"stats, {reported} accounts, default 7-day window: {stats_seconds:.2f} s "
        f"(target < {STATS_SECONDS:g} s)"
    )
    print(f"stats, {reported} accounts, all {len(rows):,} events: {all_seconds:.2f} s")
    verdicts = [
        Result(
            "ingest",
            f"import of {len(rows):,} events",
            import_rate,
            "events/s",
            Baseline(raw_rate, "raw sqlite3 executemany"),
            ratio,
            f">= {IMPORT_RATIO}x the baseline",
            ratio >= IMPORT_RATIO,
        ),
        Result(
            "ingest",
            f"stats, {reported:,} accounts, 7-day window",
            stats_seconds,
            "s",
            None,
            None,
            f"< {STATS_SECONDS:g} s",
            stats_seconds < STATS_SECONDS,
        ),
    ]
    record(results, verdicts)
    return 0 if all(verdict.passed for verdict in verdicts) else 1


def main() -> int:
    """Parse the options and run the benchmark in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep-store",
        type=Path,
        metavar="DIR",
        help=f"leave {CSV_NAME} and {STORE_NAME} in DIR (for bench/summary.py --store)",
    )
    add_results_option(parser)
    args = parser.parse_args()
    if args.keep_store:
        args.keep_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="replywatch-bench-") as folder:
        return run(
            args.events, args.accounts, args.seed, Path(folder), args.keep_store, args.results
        )


if __name__ == "__main__":
    sys.exit(main())
