"""The rows every benchmark reports, shared by the bench scripts and ``bench/all.py``.

A benchmark builds one ``Result`` per target it judges and calls ``record`` with the path of
its ``--results FILE`` option (``add_results_option``); each row is appended as one JSON
line, so the scripts run one after another can share a file and a crash loses only the rows
not yet written. Without ``--results`` nothing is written and the scripts behave as before.
``markdown_table`` renders rows as the table of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Baseline:
    """What a figure is compared with, measured in the same run, in the figure's unit."""

    value: float
    label: str


@dataclass(frozen=True)
class Result:
    """One judged figure of one benchmark: the value, its baseline, its target, the verdict."""

    benchmark: str
    figure: str
    value: float | None
    unit: str
    baseline: Baseline | None
    ratio: float | None
    target: str
    passed: bool

    def to_json(self) -> str:
        """The row as one line of JSON."""
        return json.dumps(dataclasses.asdict(self), allow_nan=True)

    @classmethod
    def from_json(cls, line: str) -> Result:
        """A row written by ``to_json``."""
        fields = json.loads(line)
        baseline = fields.pop("baseline")
        return cls(**fields, baseline=Baseline(**baseline) if baseline else None)


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """Give a bench script the ``--results FILE`` option ``bench/all.py`` passes."""
    parser.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="append this run's judged figures to FILE as JSON lines (for bench/all.py)",
    )


def record(path: Path | None, rows: Iterable[Result]) -> None:
    """Append the rows to ``path`` as JSON lines; do nothing when ``path`` is None."""
    if path is None:
        return
    with path.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row.to_json() + "\n")


def read(path: Path) -> list[Result]:
    """Every row in a results file (none when it does not exist)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Result.from_json(line) for line in lines if line.strip()]


def number(value: float) -> str:
    """A figure for the table: thousands separated, otherwise three significant digits."""
    if value != value:  # NaN: a figure that could not be measured
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cell(text: str) -> str:
    # A "|" in a target or label would split the Markdown cell.
    return text.replace("|", "\\|")


def markdown_table(rows: Iterable[Result]) -> str:
    """The rows as a Markdown table: benchmark, figure, value, baseline, ratio, target, pass."""
    lines = [
        "| benchmark | figure | value | baseline | ratio | target | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        unit = f" {row.unit}" if row.unit else ""
        value = "—" if row.value is None else number(row.value) + unit
        baseline = (
            "—"
            if row.baseline is None
            else f"{number(row.baseline.value)}{unit} ({row.baseline.label})"
        )
        ratio = "—" if row.ratio is None else f"{number(row.ratio)}x"
        cells = [row.benchmark, row.figure, value, baseline, ratio, row.target]
        cells.append("PASS" if row.passed else "**FAIL**")
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
