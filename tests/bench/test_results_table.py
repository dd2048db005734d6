"""bench/all.py's RESULTS.md page and the rows the bench scripts write, without any benchmark."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.all import Run, crash_rows, render
from bench.results import Baseline, Result, read, record

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
PASSING = Result(
    "ingest",
    "import of 1,000,000 events",
    61_000.0,
    "events/s",
    Baseline(100_000.0, "raw sqlite3 executemany"),
    0.61,
    ">= 0.6x the baseline",
    True,
)
FAILING = Result(
    "summary",
    "PDF summary, busiest week",
    12.5,
    "s",
    Baseline(0.5, "stats for the same week"),
    25.0,
    "< 10 s",
    False,
)
CRASHED = Run("poll", ["python", "bench/poll.py"], 3, 12.0, ["Traceback", "ZeroDivisionError"])
FINE = Run("ingest", ["python", "bench/ingest.py"], 0, 90.0, [])


def table_rows(page: str) -> dict[tuple[str, str], list[str]]:
    """The cells of the results table, by (benchmark, figure)."""
    table = page.split("| benchmark | figure |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[cells[0], cells[1]] = cells
    return rows


def page(runs: list[Run], rows: list[Result], quick: bool = False) -> str:
    return render(rows, runs, quick=quick, when=WHEN, commit="abc1234", machine="2 cores")


def test_table_marks_each_row_pass_or_fail_with_its_figures() -> None:
    rows = table_rows(page([FINE], [PASSING, FAILING]))
    assert rows["ingest", "import of 1,000,000 events"] == [
        "ingest",
        "import of 1,000,000 events",
        "61,000 events/s",
        "100,000 events/s (raw sqlite3 executemany)",
        "0.61x",
        ">= 0.6x the baseline",
        "PASS",
    ]
    failing = rows["summary", "PDF summary, busiest week"]
    assert failing[2:5] == ["12.5 s", "0.5 s (stats for the same week)", "25x"]
    assert failing[-1] == "**FAIL**"


def test_crashed_benchmark_is_a_fail_row_with_its_exit_code_and_stderr() -> None:
    rows = [PASSING, *crash_rows(CRASHED, [])]
    text = page([FINE, CRASHED], rows)
    crashed = [cells for key, cells in table_rows(text).items() if key[0] == "poll"]
    assert len(crashed) == 1
    assert "exit code 3" in crashed[0][1]
    assert crashed[0][-1] == "**FAIL**"
    assert "| poll | 3 | 12 s (0.2 min) |" in text
    assert "| ingest | 0 | 90 s (1.5 min) |" in text
    assert "```\nTraceback\nZeroDivisionError\n```" in text
    assert "verdict: FAIL (1 of 2 rows)" in text


def test_header_names_date_commit_machine_and_quick_runs() -> None:
    full = page([FINE], [PASSING])
    assert full.startswith("# Benchmark results\n")
    assert "- date: 2026-11-20 09:30 UTC" in full
    assert "- commit: abc1234" in full
    assert "- machine: 2 cores" in full
    assert "verdict: PASS" in full
    quick = page([FINE], [PASSING], quick=True)
    assert quick.splitlines()[0] == "# Benchmark results (quick run, not a measurement)"


@pytest.mark.parametrize(
    ("exit_code", "own", "expected"),
    [
        (3, [], 1),  # crashed before writing a row
        (1, [PASSING], 1),  # non-zero, yet every row it wrote passed
        (0, [], 1),  # claims success without a result
        (1, [FAILING], 0),  # its own failing row says why
        (0, [PASSING], 0),
    ],
)
def test_crash_rows_only_when_exit_code_and_rows_disagree(
    exit_code: int, own: list[Result], expected: int
) -> None:
    added = crash_rows(Run("poll", [], exit_code, 1.0, []), own)
    assert len(added) == expected
    assert all(not row.passed and row.benchmark == "poll" for row in added)


def test_rows_round_trip_through_the_results_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    record(path, [PASSING])
    record(path, [FAILING])
    assert read(path) == [PASSING, FAILING]
    record(None, [PASSING])  # without --results nothing is written anywhere
    assert read(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize("script", ["all", "ingest", "summary", "scrape", "poll", "soak"])
def test_help_works_and_offers_the_options(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = ("--only", "--quick", "--out") if script == "all" else ("--results",)
    for option in expected:
        assert option in done.stdout
