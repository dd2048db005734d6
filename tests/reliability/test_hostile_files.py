"""Hostile files and hostile names, generated: the import and every writer stay in control.

The import (file -> decoding -> CSV records -> rows) gets random bytes in random encodings and
good rows mixed with junk lines (stray quotes, oversized fields, separators, control codes): it
ends with exit 0, 1 or 2 and never a traceback, every good row is stored, and every junk line
is reported. The writers get random names: no CSV text cell starts a formula, no raw control
code reaches a terminal table, and a Markdown table keeps its rows and columns.
CI runs ``REPLYWATCH_FUZZ_EXAMPLES`` (2,000) cases for the pure targets and a tenth of that
for the command, which opens a store each time, and for the terminal table.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.cli.main import main
from monitor.cli.report_formats import render
from monitor.config.loading import Config
from monitor.core.escaping import FORMULA_STARTS
from monitor.intake.csv_import import BadRow, CsvFormatError, read_events
from monitor.intake.csv_records import read_pieces
from monitor.intake.import_file import UnreadableFile, open_import_text
from monitor.summary.locale import get_locale
from monitor.summary.render import render_markdown
from tests.monitor.test_output_escaping import hostile_summary, split_cells, stats_row, table_blocks

EXAMPLES = int(os.environ.get("REPLYWATCH_FUZZ_EXAMPLES", "2000"))
PURE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
COMMAND = settings(PURE, max_examples=max(20, EXAMPLES // 10))
HEADER = "platform,account,thread_id,message_id,author_role,created_at,channel,rating,text"
# What a terminal or a spreadsheet must never get raw.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252")
_ids = itertools.count()

# Text for junk lines: quotes, separators, controls and any other character, but no line
# break (a junk line is one line) and no surrogate (it could not be written in UTF-8).
junk_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('"",,;\t \x00\x1b\x07\u202e=+-@|\\')),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    ),
    max_size=40,
)


def good_row(number: int, text: str) -> str:
    """A valid row whose message id is unique across the whole run."""
    return f"facebook,shop,t{number},m{number},customer,2024-11-16T09:00:00Z,dm,,{text}"


@st.composite
def mixed_files(draw: st.DrawFn) -> tuple[bytes, str, set[str], int]:
    """(bytes, encoding, good message ids, junk line count) for a file of good and junk lines."""
    lines, good = [HEADER], set()
    junk = 0
    # Oversized lines are few: each is 128 KiB to write, check and parse. "open" lines start
    # a quoted field after some fields, "close" lines end with a quote: together they make
    # records that span lines and close cleanly.
    kinds = st.sampled_from(["good"] * 4 + ["junk"] * 2 + ["open", "close", "big"])
    for kind in draw(st.lists(kinds, max_size=12)):
        if kind == "good":
            number = next(_ids)
            lines.append(good_row(number, draw(st.sampled_from(["hi", "", "a b", "ça va"]))))
            good.add(f"m{number}")
            continue
        # "junk" first: no junk line can begin a valid row, whatever its quotes swallow.
        middle = draw(junk_text)
        if kind == "big":
            middle += "x" * (csv.field_size_limit() + 1) + draw(junk_text)
        elif kind == "open":
            middle = "," * draw(st.integers(0, 10)) + '"' + middle
        elif kind == "close":
            middle += '"'
        lines.append("junk" + middle)
        junk += 1
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    return data, encoding, good, junk


def read_file(path: Path, encoding: str | None) -> tuple[set[str], list[BadRow]]:
    """The message ids and bad rows the import would see, without a store."""
    bad: list[BadRow] = []
    with open_import_text(str(path), encoding) as stream:
        events = read_events(read_pieces(stream), Config.empty(), on_bad_row=bad.append)
        ids = {event.message_id for event in events}
    return ids, bad


@PURE
@given(mixed_files())
def test_good_rows_are_kept_and_junk_is_reported(
    tmp_path: Path, case: tuple[bytes, str, set[str], int]
) -> None:
    """Every good row is read whatever junk surrounds it; each junk line is reported."""
    data, encoding, good, junk = case
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    named = "cp1252" if encoding == "cp1252" else None  # the others say what they are
    ids, bad = read_file(path, named)
    assert ids == good
    # A junk line is reported on its own line, or inside the stray quote that opened on it.
    assert (len(bad) > 0) == (junk > 0)
    assert len(bad) <= junk
    lines = [line.rstrip("\r") for line in data.decode(encoding).lstrip("\ufeff").split("\n")]
    assert all(lines[row.line - 1].startswith("junk") for row in bad)


@PURE
@given(st.binary(max_size=600), st.sampled_from([None, *ENCODINGS]), st.booleans())
def test_any_bytes_are_read_or_refused_in_one_line(
    tmp_path: Path, body: bytes, encoding: str | None, with_header: bool
) -> None:
    """Random bytes: rows and bad rows, or one UnreadableFile/CsvFormatError; nothing else."""
    path = tmp_path / "random.csv"
    path.write_bytes((HEADER + "\n").encode() * with_header + body)
    try:
        read_file(path, encoding)
    except (UnreadableFile, CsvFormatError) as error:
        assert "\n" not in str(error).strip()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for all the command's examples (message ids never repeat)."""
    return f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}"


@COMMAND
@given(mixed_files(), st.binary(max_size=200), st.booleans())
def test_the_command_exits_0_1_or_2_and_stores_every_good_row(
    tmp_path: Path,
    store: str,
    case: tuple[bytes, str, set[str], int],
    tail: bytes,
    damage: bool,
) -> None:
    """Through `replywatch import`: an exit code, one line per problem, good rows stored."""
    data, encoding, good, junk = case
    path = tmp_path / "import.csv"
    path.write_bytes(data + tail * damage)
    out, err = io.StringIO(), io.StringIO()
    named = ["--encoding", "cp1252"] if encoding == "cp1252" else []
    code = main(["--database", store, "import", *named, str(path)], out=out, err=err)
    assert code in (0, 1, 2)
    assert "Traceback" not in err.getvalue()
    assert not RAW_CONTROL.search(err.getvalue() + out.getvalue())
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1
        return
    connection = sqlite3.connect(store.removeprefix("sqlite:///"))
    try:
        stored = {m for (m,) in connection.execute("SELECT message_id FROM events")}
    finally:
        connection.close()
    assert good <= stored
    if not damage:
        assert code == (1 if junk else 0)


names = st.text(max_size=30)


@PURE
@given(st.lists(st.tuples(names, names), min_size=1, max_size=5), names)
def test_csv_writer_never_emits_a_formula_or_a_control_code(
    rows: list[tuple[str, str]], group: str
) -> None:
    """Text cells never start a formula or hold a raw control code; numbers stay numbers."""
    stats = [stats_row(account, platform, group) for account, platform in rows]
    written = render(stats, "csv", "channel")
    assert not RAW_CONTROL.search(written)
    parsed = list(csv.DictReader(io.StringIO(written)))
    assert len(parsed) == len(rows)
    for record in parsed:
        for column in ("account", "platform", "channel", "profile", "clock"):
            assert not record[column].startswith(FORMULA_STARTS), record[column]
        float(record["mean_response_seconds"])  # negative, and still a number


# A tenth of the cases: rich takes about 10 ms to lay out a table.
@COMMAND
@given(st.lists(st.tuples(names, names), min_size=1, max_size=5))
def test_table_writer_never_prints_a_raw_control_code(rows: list[tuple[str, str]]) -> None:
    """Whatever the names, the terminal table holds no control code but its line breaks."""
    table = render([stats_row(account, platform) for account, platform in rows], "table", None)
    assert not RAW_CONTROL.search(table)


@PURE
@given(st.lists(names, min_size=1, max_size=5), names)
def test_markdown_tables_keep_their_rows_and_columns(accounts: list[str], link: str) -> None:
    """Whatever the names and links, each table has one row per item and equal cell counts."""
    text = render_markdown(hostile_summary(accounts, link or "x"), get_locale("en"))
    assert not RAW_CONTROL.search(text)
    tables = table_blocks(text)
    assert len(tables) == 3
    for table in tables:
        assert len(table) == 2 + len(accounts)
        widths = {len(split_cells(line)) for line in table}
        assert len(widths) == 1, table
