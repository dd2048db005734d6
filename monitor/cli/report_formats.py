"""Rendering stats rows as a terminal table, CSV or JSON.

Names come from imported files: CSV text cells are neutralised against spreadsheet formulas,
and table cells show control characters as escapes and are never read as rich markup. JSON
escapes control characters itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.core.escaping import csv_text_cell, one_line
from monitor.store.stats import StatsRow

__all__ = ["COLUMNS", "render"]

COLUMNS = (
    "account",
    "platform",
    "waits",
    "answered",
    "unanswered",
    "response_rate",
    "within_target_share",
    "mean_response_seconds",
    "median_response_seconds",
    "p90_response_seconds",
    "open_waits",
    "oldest_open_wait_seconds",
    "target_met",
)
_TRAILING = ("profile", "profile_version", "clock")


def _record(row: StatsRow, group_column: str | None) -> dict[str, Any]:
    figures = row.figures
    record: dict[str, Any] = {"account": row.account, "platform": row.platform}
    if group_column:
        record[group_column] = row.group
    for name in COLUMNS[2:]:
        record[name] = getattr(figures, name)
    record.update(
        profile=figures.profile, profile_version=figures.profile_version, clock=figures.clock
    )
    return record


def render(rows: Sequence[StatsRow], fmt: str, group_column: str | None) -> str:
    """Render rows in ``table``, ``csv`` or ``json`` form."""
    records = [_record(row, group_column) for row in rows]
    if fmt == "json":
        return json.dumps(
            [
                {
                    **record,
                    "decided": row.figures.decided,
                    "window": {
                        "start": row.window.start.isoformat(),
                        "end": row.window.end.isoformat(),
                        "as_of": row.window.as_of.isoformat(),
                    },
                }
                for record, row in zip(records, rows, strict=True)
            ],
            indent=2,
        )
    names = _names(group_column)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for record in records:
            writer.writerow(["" if record[n] is None else _csv_value(record[n]) for n in names])
        return buffer.getvalue()
    return _table(records, names)


def _names(group_column: str | None) -> list[str]:
    names = list(COLUMNS)
    if group_column:
        names.insert(2, group_column)
    return [*names, *_TRAILING]


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return round(value, 6)
    # Only text is neutralised: a negative number we write stays a number.
    return csv_text_cell(value) if isinstance(value, str) else value


def _human_seconds(value: float) -> str:
    seconds = round(value)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in ("response_rate", "within_target_share"):
        return f"{value * 100:.1f}%"
    if name.endswith("_seconds"):
        return _human_seconds(float(value))
    return str(value)


def _table(records: list[dict[str, Any]], names: list[str]) -> str:
    shown = [n for n in names if n not in ("profile_version", "clock")]
    table = Table(show_lines=False, header_style="bold")
    for name in shown:
        header = name.replace("_response_seconds", "").replace("_seconds", "").replace("_", " ")
        table.add_column(header, justify="left" if name in ("account", "platform") else "right")
    for record in records:
        # Text, not str: a name like "shop[/]" is not rich markup (it raised MarkupError).
        table.add_row(*(Text(one_line(_cell(n, record[n]))) for n in shown))
    console = Console(file=io.StringIO(), width=max(160, 12 * len(shown)), record=True)
    console.print(table)
    return console.export_text()
