"""Benchmark: the weekly summary over one million events for 1,000 accounts.

Run with ``make bench-summary`` (or ``.venv/bin/python bench/summary.py``). It synthesises the
events (the same generator as ``bench/ingest.py``: 30 days up to 2026-11-20), imports them,
then measures, for the busiest ISO week and all accounts:
1. ``replywatch stats`` for that week (the baseline: the figures alone);
2. ``replywatch summary`` as Markdown, HTML (with the chart) and PDF (WeasyPrint).
It prints the seconds, each ratio to the baseline, and whether the PDF, the slowest, stays
under the 10-second target (issue 17; exit code 1 when it does not). ``--results FILE``
appends the judged figure for ``bench/all.py``.

``--store DIR`` reuses the CSV and the store ``bench/ingest.py --keep-store DIR`` left (the
same generator and size, another seed) instead of synthesising and importing its own:
``bench/all.py`` runs both, and importing one million events twice would cost about a minute of
its ten without measuring anything more. The import is ingest's measurement, not this one's,
and the week summarised has the same shape either way.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import CSV_NAME, STORE_NAME, synthesise, timed_cli
from bench.results import Baseline, Result, add_results_option, record

TARGET_SECONDS = 10.0
AS_OF = "2026-11-20T00:00:00Z"


def busiest_week(created: Iterable[str]) -> tuple[int, int, int]:
    """ISO year, week and event count of the week with the most events."""
    weeks = Counter(
        datetime.fromisoformat(c.replace("Z", "+00:00")).isocalendar()[:2] for c in created
    )
    (year, week), busiest = weeks.most_common(1)[0]
    return year, week, busiest


def main() -> int:
    """Parse the options, prepare or reuse the store, time stats and the summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="reuse the CSV and store bench/ingest.py --keep-store DIR left "
        "(--events, --accounts and --seed are then ignored)",
    )
    add_results_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.store:
            with (args.store / CSV_NAME).open(newline="", encoding="utf-8") as handle:
                year, week, busiest = busiest_week(
                    row["created_at"] for row in csv.DictReader(handle)
                )
            url = f"sqlite:///{args.store / STORE_NAME}"
            print(
                f"reusing the store bench/ingest.py left in {args.store}; busiest week "
                f"{year}-W{week:02d} with {busiest:,} events",
                flush=True,
            )
        else:
            print(
                f"synthesising {args.events:,} events for {args.accounts:,} accounts ...",
                flush=True,
            )
            rows = synthesise(workdir / CSV_NAME, args.events, args.accounts, args.seed)
            year, week, busiest = busiest_week(row[5] for row in rows)
            url = f"sqlite:///{workdir / STORE_NAME}"
            seconds, _ = timed_cli(
                "--database", url, "import", "--progress", "never", str(workdir / CSV_NAME)
            )
            print(
                f"import: {seconds:.1f} s; busiest week {year}-W{week:02d} with {busiest:,} events"
            )
        monday = datetime.fromisocalendar(year, week, 1)
        nxt = datetime.fromisocalendar(year + (week == 52), 1 if week == 52 else week + 1, 1)
        stats, _ = timed_cli(
            "--database",
            url,
            "stats",
            "--from",
            monday.isoformat(),
            "--to",
            nxt.isoformat(),
            "--as-of",
            AS_OF,
            "--format",
            "csv",
        )
        results = {}
        for fmt in ("md", "html", "pdf"):
            out = workdir / f"summary.{fmt}"
            results[fmt], _ = timed_cli(
                "--database",
                url,
                "summary",
                "--week",
                f"{year}-W{week:02d}",
                "--as-of",
                AS_OF,
                "--out",
                str(out),
            )
            results[fmt + " size"] = out.stat().st_size
    print(f"{'measurement':<34}{'seconds':>9}{'ratio':>8}")
    print(f"{'stats for the week (baseline)':<34}{stats:>9.2f}{1:>8.2f}")
    for fmt in ("md", "html", "pdf"):
        size = int(results[fmt + " size"]) // 1024
        label = f"summary --format {fmt} ({size:,} KiB)"
        print(f"{label:<34}{results[fmt]:>9.2f}{results[fmt] / stats:>8.2f}")
    ok = results["pdf"] < TARGET_SECONDS
    print(f"{'within' if ok else 'OVER'} the {TARGET_SECONDS:.0f} s target for the PDF summary")
    record(
        args.results,
        [
            Result(
                "summary",
                f"PDF summary, busiest week ({busiest:,} events)",
                results["pdf"],
                "s",
                Baseline(stats, "stats for the same week"),
                results["pdf"] / stats,
                f"< {TARGET_SECONDS:g} s",
                ok,
            )
        ],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
