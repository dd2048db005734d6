"""`replywatch import` on files that are broken in the ways real files are: one line each.

An oversized field, a stray quote, a file in another encoding, semicolons, a directory: the
command says what and where in one line, exits 1 (bad rows, good rows kept) or 2 (nothing
stored), and never shows a traceback.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.intake import csv_records
from monitor.intake.csv_records import Broken, CsvRecords, Record, read_pieces
from tests.conftest import RunCli

HEADER = "platform,account,thread_id,message_id,author_role,created_at,channel,rating,text\n"


def row(number: int, text: str = "hello") -> str:
    """One good row; its message id is m<number>."""
    return f"facebook,shop,t{number},m{number},customer,2024-11-16T09:{number:02d}:00Z,dm,,{text}\n"


def stored_ids(url: str) -> set[str]:
    """The message ids in a SQLite store."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return {mid for (mid,) in connection.execute("SELECT message_id FROM events")}
    finally:
        connection.close()


def problem_lines(err: str, path: Path) -> list[str]:
    """The stderr lines about the file."""
    return [line for line in err.splitlines() if str(path) in line]


def test_an_oversized_field_is_one_bad_row(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """A field past csv's limit: that row is named with the limit, the rows around it stored."""
    limit = csv.field_size_limit()
    path = tmp_path / "big.csv"
    path.write_text(HEADER + row(1) + row(2, "x" * (limit + 1)) + row(3), encoding="utf-8")
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    [line] = problem_lines(result.err, path)
    assert f"line 3: a field is longer than {limit:,} characters" in line
    assert stored_ids(sqlite_url) == {"m1", "m3"}


def test_an_oversized_line_is_never_held_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line past MAX_LINE, read in pieces, is one broken record; the next line is read."""
    monkeypatch.setattr(csv_records, "MAX_LINE", 50)
    text = "a,b\n" + "y" * 200 + "\r\n" + "c,d\r\n"
    pieces = read_pieces(io.StringIO(text, newline=""), size=16)
    got = list(CsvRecords(pieces))
    assert got == [
        Record(1, ["a", "b"]),
        Broken(2, "the line is longer than 50 characters"),
        Record(3, ["c", "d"]),
    ]


def test_crlf_cut_by_a_piece_boundary_is_one_line_end() -> None:
    """A size-limited read that splits "\\r\\n" does not invent an empty line."""
    text = "ab,c\r\nde,f\r\n"
    for size in range(1, len(text) + 2):
        got = list(CsvRecords(read_pieces(io.StringIO(text, newline=""), size=size)))
        assert got == [Record(1, ["ab", "c"]), Record(2, ["de", "f"])], size


def test_an_unterminated_quote_swallows_nothing(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """The row where the quote opens is reported; every row after it is still read."""
    path = tmp_path / "quote.csv"
    stray = row(2, '"he said')  # the quote opens on line 3 and never closes
    path.write_text(HEADER + row(1) + stray + row(3) + row(4), encoding="utf-8")
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 1, result.err
    [line] = problem_lines(result.err, path)
    assert "line 3: unterminated quote starting at line 3" in line
    assert stored_ids(sqlite_url) == {"m1", "m3", "m4"}
    assert "4 row(s): 3 new event(s)" in result.out


def test_a_stray_quote_closed_by_another_row_swallows_nothing(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """A quote closed by a later row's quote: the wrong field count gives the stray one away."""
    path = tmp_path / "quotes.csv"
    later = 'facebook,shop,t4,m4,customer,2024-11-16T09:04:00Z,dm,,"size 5" is fine\n'
    path.write_text(HEADER + row(1) + row(2, '"oops') + row(3) + later + row(5))
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 1
    lines = problem_lines(result.err, path)
    assert "line 3: unterminated quote starting at line 3" in lines[0]
    # The later row's own quoting is broken too ("size 5" followed by text): its own line.
    assert [ln.split(":")[1].strip() for ln in lines] == ["line 3", "line 5"]
    assert stored_ids(sqlite_url) == {"m1", "m3", "m5"}


def test_a_bad_row_whose_quote_closes_lines_later_swallows_nothing(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """A stray quote closed cleanly by a later row's quote: the rows between are read again."""
    path = tmp_path / "closed.csv"
    opening = row(2, '"he said').replace("customer", "client")  # a bad row besides
    closing = 'facebook,shop,t5,m5,customer,2024-11-16T09:05:00Z,dm,,screen 6"\n'
    path.write_text(HEADER + row(1) + opening + row(3) + row(4) + closing)
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 1
    [line] = problem_lines(result.err, path)
    assert "line 3: author_role 'client'" in line
    assert "runs on to line 6, so lines 4-6 are read again" in line
    assert stored_ids(sqlite_url) == {"m1", "m3", "m4", "m5"}


def test_a_quoted_field_over_many_lines_is_fine(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """A text spanning lines and closing properly is one row; the rows after keep their lines."""
    path = tmp_path / "multi.csv"
    spanning = row(2, '"first line\nsecond, with a comma\n""quoted"" third"')
    path.write_text(HEADER + row(1) + spanning + row(3) + "facebook,shop,t9,m9,nobody,x\n")
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 1
    [line] = problem_lines(result.err, path)
    assert "line 7:" in line  # 1 header, 2 row 1, 3-5 row 2, 6 row 3, 7 the bad row
    assert stored_ids(sqlite_url) == {"m1", "m2", "m3"}


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("utf-16", "UTF-16 with BOM"), ("utf-8-sig", "UTF-8 with BOM"), ("utf-32", "UTF-32")],
)
def test_files_with_a_byte_order_mark_are_read(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str, encoding: str, name: str
) -> None:
    """Excel's and Notepad's Unicode files: decoded by their mark, accents intact."""
    path = tmp_path / "marked.csv"
    path.write_bytes((HEADER + row(1, "café") + row(2, "日本")).encode(encoding))
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 0, (name, result.err)
    assert stored_ids(sqlite_url) == {"m1", "m2"}


def test_a_cp1252_file_is_refused_in_one_line_and_read_when_named(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """Not UTF-8: one line naming line and byte, exit 2, nothing stored; --encoding reads it."""
    path = tmp_path / "windows.csv"
    path.write_bytes((HEADER + row(1) + row(2, "café") + row(3)).encode("cp1252"))
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"replywatch: {path}: line 3 is not UTF-8 (byte 0xe9); "
        "the file may be cp1252/Windows-1252: use --encoding cp1252"
    ]
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # refused before storing
    named = run_cli("--database", sqlite_url, "import", "--encoding", "cp1252", str(path))
    assert named.code == 0, named.err
    assert stored_ids(sqlite_url) == {"m1", "m2", "m3"}


def test_the_bad_byte_is_found_past_the_first_chunk(tmp_path: Path, run_cli: RunCli) -> None:
    """A wrong byte after a megabyte of good rows: the right line, still nothing stored."""
    rows = [row(n % 60) for n in range(20_000)]
    path = tmp_path / "late.csv"
    path.write_bytes((HEADER + "".join(rows)).encode() + row(1, "Gr\xfc\xdfe").encode("latin-1"))
    assert path.stat().st_size > 1 << 20
    url = f"sqlite:///{tmp_path / 'late.db'}"
    result = run_cli("--database", url, "import", str(path))
    assert result.code == 2
    assert f"line {len(rows) + 2} is not UTF-8 (byte 0xfc)" in result.err


def test_unknown_encoding_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    """--encoding must name a text encoding."""
    path = tmp_path / "e.csv"
    path.write_text(HEADER + row(1))
    for name in ("klingon", "base64"):
        result = run_cli("import", "--encoding", name, str(path))
        assert result.code == 2
        assert f"--encoding {name!r} is not a known text encoding" in result.err


def test_semicolons_get_a_hint(tmp_path: Path, run_cli: RunCli, sqlite_url: str) -> None:
    """A semicolon-separated file (Excel in many locales): one line saying so."""
    path = tmp_path / "semi.csv"
    path.write_text(HEADER.replace(",", ";") + row(1).replace(",", ";"))
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "the header is separated by semicolons" in line


def test_utf16_without_a_mark_gets_a_hint(tmp_path: Path, run_cli: RunCli) -> None:
    """UTF-16 without a byte-order mark reads as NUL-riddled UTF-8: the hint names it."""
    path = tmp_path / "u16.csv"
    path.write_bytes((HEADER + row(1)).encode("utf-16-le"))
    result = run_cli("--database", f"sqlite:///{tmp_path / 'x.db'}", "import", str(path))
    assert result.code == 2
    assert "use --encoding utf-16-le" in result.err
    named = run_cli(
        "--database", f"sqlite:///{tmp_path / 'x.db'}", "import", "--encoding", "utf-16-le",
        str(path),
    )  # fmt: skip
    assert named.code == 0, named.err


def test_a_directory_is_not_a_missing_file(tmp_path: Path, run_cli: RunCli) -> None:
    """Given a directory, the message says so."""
    result = run_cli("import", str(tmp_path))
    assert result.code == 2
    assert f"{tmp_path}: is a directory, not a file" in result.err
    assert "no such file" not in result.err


def test_stdin_is_checked_before_anything_is_stored(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard input in cp1252 is refused whole; with --encoding it is read."""
    data = (HEADER + row(1) + row(2, "naïve")).encode("cp1252")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    result = run_cli("--database", sqlite_url, "import", "-")
    assert result.code == 2 and "<stdin>: line 3 is not UTF-8 (byte 0xef)" in result.err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    result = run_cli("--database", sqlite_url, "import", "--encoding", "cp1252", "-")
    assert result.code == 0, result.err
    assert stored_ids(sqlite_url) == {"m1", "m2"}


def test_a_pipe_is_copied_before_it_is_checked(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """`import <(command)`: a pipe cannot be read twice, so it is spooled, then imported."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=((HEADER + row(1)).encode(),))
    writer.start()
    try:
        result = run_cli("--database", sqlite_url, "import", str(fifo))
    finally:
        if writer.is_alive():  # the import never opened the pipe: let the writer finish
            fifo.read_bytes()
        writer.join(5)
    assert result.code == 0, result.err
    assert stored_ids(sqlite_url) == {"m1"}
