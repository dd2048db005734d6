"""Benchmark: the weekly summary over one million events for 1,000 accounts.

Run with ``make bench-summary`` (or ``.venv/bin/python bench/summary.py``). It synthesises the
events (the same generator as ``bench/ingest.py``: 30 days up to 2026-11-20), imports them,
then measures, for the busiest ISO week and all accounts:
1. ``replywatch stats`` for that week (the baseline: the figures alone);
2. ``replywatch summary`` as Markdown, HTML (with the chart) and PDF (WeasyPrint).
It prints the seconds, each ratio to the baseline, and whether the PDF, the slowest, stays
under the 30-second target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import synthesise, timed_cli

TARGET_SECONDS = 30.0
AS_OF = "2026-11-20T00:00:00Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"synthesising {args.events:,} events for {args.accounts:,} accounts ...", flush=True)
        rows = synthesise(workdir / "events.csv", args.events, args.accounts, args.seed)
        weeks = Counter(
            datetime.fromisoformat(r[5].replace("Z", "+00:00")).isocalendar()[:2] for r in rows
        )
        (year, week), busiest = weeks.most_common(1)[0]
        url = f"sqlite:///{workdir / 'bench.db'}"
        seconds, _ = timed_cli(
            "--database", url, "import", "--progress", "never", str(workdir / "events.csv")
        )
        print(f"import: {seconds:.1f} s; busiest week {year}-W{week:02d} with {busiest:,} events")
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
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
