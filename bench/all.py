"""Run every benchmark of ``make bench`` one after another and write ``bench/RESULTS.md``.

Run with ``make bench`` (``.venv/bin/python bench/all.py``); about ten minutes on 2 cores.
Each benchmark runs as its own subprocess, never two at once (on 2 cores they would measure
each other), with ``--results FILE`` so that it appends its judged figures (``bench/results.py``).
The page written has the date (UTC), the commit, the machine, one table of every figure
(value, baseline measured in the same run, ratio, target, PASS or FAIL) and each benchmark's
exit code and wall time. A benchmark that crashes, or exits non-zero without a failing row,
gets a FAIL row and the last lines of its stderr. The exit code is 1 when any row fails.

Sizes, and why (estimates from runs of each part on the 2-core development machine):

* ``ingest``: one million events for 1,000 accounts, the size its targets are set for (about
  1.5 minutes). It keeps its CSV and imported store for ``summary``.
* ``summary``: reuses that store (``--store``) instead of synthesising and importing its own
  million events, which would add about a minute that measures nothing new: the import is
  ingest's figure, and summary's target is the PDF over the busiest week of one million
  events, whichever seed made them. Lowering ingest's size instead would move its ``stats``
  target (set for 1,000 accounts over one million events) off the size it is defined at.
  About 1-2 minutes. Run alone (``--only summary``) it makes its own store.
* ``scrape``: 100, 1,000 and 10,000 accounts, 7 scrapes each (its defaults; the targets are
  at 10,000), about 1.5 minutes.
* ``caches``: what each long-lived in-memory structure holds at 5,000 and 10,000 accounts
  (reported, no target), about 1.5 minutes.
* ``poll``: 5,000 accounts for 3 minutes (its targets are defined at 5,000), about 6.5
  minutes with the backfill and the bare client's burst.

``--quick`` runs tiny sizes to check the plumbing in a couple of minutes; its page says
"quick run, not a measurement" and goes to /tmp unless ``--out`` is given.
``bench/soak.py`` (``make bench-soak``, ``make bench-soak-long``) and ``bench/cluster.py``
are not part of this run: they take 13 to 70 minutes each.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import Result, markdown_table, read

ROOT = Path(__file__).resolve().parent.parent

RESULTS_MD = ROOT / "bench" / "RESULTS.md"
QUICK_MD = Path("/tmp/replywatch-bench-quick.md")
STDERR_LINES = 15
# The order they run in: summary reuses the store ingest leaves.
BENCHMARKS = ("ingest", "summary", "scrape", "caches", "poll")
FULL = {
    "ingest": ["--events", "1000000", "--accounts", "1000"],
    "summary": [],
    "scrape": ["--accounts", "100", "1000", "10000", "--runs", "7"],
    "caches": ["--accounts", "5000", "10000"],
    "poll": ["--accounts", "5000", "--minutes", "3"],
}
QUICK = {
    "ingest": ["--events", "20000", "--accounts", "100"],
    "summary": ["--events", "20000", "--accounts", "100"],
    "scrape": ["--accounts", "100", "1000", "--runs", "3"],
    "caches": ["--accounts", "100"],
    "poll": ["--accounts", "100", "--minutes", "1"],
}


@dataclass(frozen=True)
class Run:
    """How one benchmark's subprocess ended."""

    name: str
    command: list[str]
    exit_code: int
    seconds: float
    stderr_tail: list[str]


def run_one(name: str, args: list[str], results: Path) -> Run:
    """Run ``bench/<name>.py`` with its rows going to ``results``; stream its output through."""
    command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args, "--results", str(results)]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")])),
    }
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
    started = time.monotonic()
    # stdout goes straight to the terminal; stderr is echoed and its tail kept for a crash row.
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
    seconds = time.monotonic() - started
    print(f"=== {name}: exit code {process.returncode}, {seconds / 60:.1f} min", flush=True)
    return Run(name, command, process.returncode, seconds, list(tail))


def crash_rows(run: Run, rows: list[Result]) -> list[Result]:
    """A FAIL row when the exit code and the benchmark's own rows disagree or it wrote none."""
    failed = any(not row.passed for row in rows)
    if run.exit_code != 0 and not failed:
        figure = f"crashed (exit code {run.exit_code}); stderr below"
    elif run.exit_code == 0 and not rows:
        figure = "exited 0 without any result"
    else:
        return []
    return [Result(run.name, figure, None, "", None, None, "runs to the end", False)]


def commit_text() -> str:
    """The short commit, and whether the work tree differs from it (RESULTS.md aside)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # Porcelain lines are "XY path"; the file being written would otherwise always count.
    changed = [
        line
        for line in git("status", "--porcelain").splitlines()
        if line[3:].strip() != "bench/RESULTS.md"
    ]
    return commit + (" + uncommitted changes" if changed else "")


def machine_text() -> str:
    """Cores available (as nproc counts them), the CPU model and the Python version."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return f"{cores} cores ({model}), Python {platform.python_version()}"


def render(
    rows: list[Result],
    runs: list[Run],
    *,
    quick: bool,
    when: datetime,
    commit: str,
    machine: str,
) -> str:
    """The whole RESULTS.md page."""
    heading = "# Benchmark results"
    if quick:
        heading += " (quick run, not a measurement)"
    failed = sum(not row.passed for row in rows)
    lines = [
        heading,
        "",
        f"- date: {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        f"- commit: {commit}",
        f"- machine: {machine}",
        f"- command: `bench/all.py{' --quick' if quick else ''}` (sizes in `bench/all.py`)",
        f"- verdict: {'PASS' if not failed else f'FAIL ({failed} of {len(rows)} rows)'}",
        "",
        markdown_table(rows),
        "## Runs",
        "",
        "| benchmark | exit code | wall time |",
        "|---|---|---|",
    ]
    lines += [
        f"| {run.name} | {run.exit_code} | {run.seconds:.0f} s ({run.seconds / 60:.1f} min) |"
        for run in runs
    ]
    for run in runs:
        if run.exit_code != 0 and run.stderr_tail:
            lines += ["", f"Last lines of {run.name}'s stderr:", "", "```", *run.stderr_tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmarks one by one, write the page; 1 if any row fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable; one of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the plumbing, measures nothing"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"write the page here (default: {RESULTS_MD.relative_to(ROOT)}, "
        f"or {QUICK_MD} with --quick)",
    )
    args = parser.parse_args(argv)
    out = args.out or (QUICK_MD if args.quick else RESULTS_MD)
    sizes = QUICK if args.quick else FULL
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only]
    when = datetime.now(UTC)
    rows: list[Result] = []
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="replywatch-bench-all-") as temporary:
        folder = Path(temporary)
        store = folder / "store"
        store_ready = False
        for name in chosen:
            extra = list(sizes[name])
            if name == "ingest" and "summary" in chosen:
                extra += ["--keep-store", str(store)]
            # Only a store whose import and stats ran to the end (ingest wrote its rows).
            if name == "summary" and store_ready:
                extra += ["--store", str(store)]
            results = folder / f"{name}.jsonl"
            run = run_one(name, extra, results)
            own = read(results)
            rows += own + crash_rows(run, own)
            store_ready = store_ready or (name == "ingest" and bool(own))
            runs.append(run)
    page = render(
        rows, runs, quick=args.quick, when=when, commit=commit_text(), machine=machine_text()
    )
    out.write_text(page, encoding="utf-8")
    print(f"\n{markdown_table(rows)}\nwritten to {out}")
    return 0 if rows and all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
