"""The weekly summary as a reader sees it: real IBM conversations, PDF pages, a browser screenshot.

The figures must equal ``replywatch stats`` for the same window; the Persian summary must be
Persian and laid out right to left; an empty week says so. PDF pages are turned into PNG with
pdftoppm and text with pdftotext (Debian poppler-utils); the HTML is photographed by headless
Chromium (Debian chromium). Tests needing a tool skip with one line when it is missing.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import Event
from monitor.config.loading import Config
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.summary.compose import IsoWeek
from monitor.summary.data import summarise_week
from monitor.summary.locale import get_locale
from monitor.summary.render import render_html, render_markdown
from tests.conftest import SHARED_DATA, RunCli
from tests.summary.fonts import needs_pdf, needs_persian_fonts

IBM = SHARED_DATA / "ibm-twitter-cdp" / "events.csv"
WEEK, FROM, TO = "2020-W13", "2020-03-23T00:00:00Z", "2020-03-30T00:00:00Z"
AS_OF = "2020-04-06T08:00:00Z"
PDFTOPPM, PDFTOTEXT = shutil.which("pdftoppm"), shutil.which("pdftotext")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_poppler = pytest.mark.skipif(
    PDFTOPPM is None, reason="pdftoppm missing: apt-get install poppler-utils (scripts/services)"
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium missing: apt-get install chromium (scripts/services)"
)


@pytest.fixture(scope="module")
def ibm_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The IBM conversations imported once into a store for the whole module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ibm') / 'ibm.db'}"
    from monitor.cli.main import main

    assert main(["--database", url, "import", str(IBM)]) == 0
    return url


def summary_cli(run_cli: RunCli, store: str, *args: str) -> str:
    result = run_cli("--database", store, "summary", "--week", WEEK, "--as-of", AS_OF, *args)
    assert result.code == 0, result.err
    return result.out


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_rows(path: Path) -> list[bytes]:
    """Decoded rows of an 8-bit RGB(A) PNG (what pdftoppm and Chromium write), filters undone."""
    data = path.read_bytes()
    width, _height = png_size(data)
    colour_type = data[25]
    channels = {2: 3, 6: 4}[colour_type]
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for start in range(0, len(raw), stride + 1):
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return [bytes(row[i] for i in range(0, len(row), channels)) for row in rows]  # red channel


def ink_columns(path: Path, top: int, bottom: int) -> tuple[int, int]:
    """The leftmost and rightmost column with dark pixels between two rows."""
    rows = png_rows(path)[top:bottom]
    dark = [x for row in rows for x, value in enumerate(row) if value < 100]
    assert dark, "no text in that band"
    return min(dark), max(dark)


def test_figures_equal_replywatch_stats(ibm_store: str, run_cli: RunCli) -> None:
    """Every account's numbers in the summary are the stats of the same window and as-of."""
    stats = run_cli(
        "--database",
        ibm_store,
        "stats",
        "--from",
        FROM,
        "--to",
        TO,
        "--as-of",
        AS_OF,
        "--format",
        "json",
    )
    assert stats.code == 0, stats.err
    expected = {row["account"]: row for row in json.loads(stats.out)}
    engine = open_engine(ibm_store)
    with engine.connect() as connection:
        summary = summarise_week(
            connection,
            AccountDirectory(Config.empty()),
            IsoWeek(2020, 13, "UTC"),
            datetime.fromisoformat(AS_OF.replace("Z", "+00:00")),
        )
    engine.dispose()
    assert len(summary.accounts) == len(expected) > 20
    for account in summary.accounts:
        want, got = expected[account.account], account.this_week
        assert got.waits == want["waits"]
        assert got.response_rate == want["response_rate"]
        assert got.within_target_share == want["within_target_share"]
        assert got.mean_response_seconds == want["mean_response_seconds"]
        assert got.p90_response_seconds == want["p90_response_seconds"]
    markdown = summary_cli(run_cli, ibm_store)
    adobe = expected["AdobeCare"]
    row = next(line for line in markdown.splitlines() if line.startswith("| AdobeCare"))
    assert f"| {adobe['waits']} | {adobe['response_rate'] * 100:.1f}% |" in row
    assert "| 13 | 76.9% | 23.1% | 14 h 24 min | 48 min |" in row


def test_the_lists_and_the_chart_come_from_the_same_week(ibm_store: str, run_cli: RunCli) -> None:
    """Ten longest waits, longest first; 168 hours whose arrivals sum to the week's waits."""
    engine = open_engine(ibm_store)
    with engine.connect() as connection:
        summary = summarise_week(
            connection,
            AccountDirectory(Config.empty()),
            IsoWeek(2020, 13, "UTC"),
            datetime.fromisoformat(AS_OF.replace("Z", "+00:00")),
        )
    engine.dispose()
    waited = [w.waited_seconds for w in summary.longest_waits]
    assert len(waited) == 10 and waited == sorted(waited, reverse=True)
    assert sum(summary.arrivals) == sum(a.this_week.waits for a in summary.accounts)
    assert all(m <= a for m, a in zip(summary.missed, summary.arrivals, strict=True))
    assert summary.advice[0] in {"advice_waiting", "advice_staff", "advice_rate", "advice_time"}


@needs_poppler
@needs_pdf
def test_the_pdf_has_the_figures_and_pages_a_reader_can_see(
    ibm_store: str, run_cli: RunCli, tmp_path: Path
) -> None:
    """pdftotext finds the figures; pdftoppm gives pages that are not blank."""
    pdf = tmp_path / "w13.pdf"
    summary_cli(run_cli, ibm_store, "--out", str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(
        [PDFTOTEXT or "", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Weekly response summary" in text and "Week 13, 2020" in text
    assert "AdobeCare" in text and "76.9%" in text and "14 h 24 min" in text
    subprocess.run(
        [PDFTOPPM or "", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    first = png_rows(pages[0])
    assert sum(1 for row in first for value in row if value < 100) > 500


@needs_poppler
@needs_pdf
@needs_persian_fonts
def test_the_persian_pdf_is_persian_and_right_to_left(
    ibm_store: str, run_cli: RunCli, tmp_path: Path
) -> None:
    """Persian words and digits in the text; the title sits at the right edge of the page."""
    pdf = tmp_path / "w13-fa.pdf"
    summary_cli(run_cli, ibm_store, "--locale", "fa", "--out", str(pdf))
    text = subprocess.run(
        [PDFTOTEXT or "", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    fa = get_locale("fa")
    assert fa.text("section_accounts") in text or "عملکرد" in text
    assert "۷۶٫۹٪" in text  # AdobeCare's response rate in Persian digits
    assert "1399" not in text and "۱۳۹۹" in text  # the Jalali year, in Persian digits
    subprocess.run(
        [PDFTOPPM or "", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "fa")],
        check=True,
    )
    page = next(tmp_path.glob("fa-*.png"))
    width, _ = png_size(page.read_bytes())
    left, right = ink_columns(page, 10, 40)  # the title line
    assert right > width * 0.8 and left > width * 0.4, (left, right, width)


@needs_chromium
def test_the_html_in_a_browser(ibm_store: str, run_cli: RunCli, tmp_path: Path) -> None:
    """Chromium draws the mail page: English starts at the left, Persian at the right."""
    for code in ("en", "fa"):
        page = tmp_path / f"{code}.html"
        summary_cli(run_cli, ibm_store, "--locale", code, "--out", str(page))
        body = page.read_text()
        assert f'dir="{"rtl" if code == "fa" else "ltr"}"' in body
        assert "data:image/png;base64," in body  # the chart travels inside the file
        shot = tmp_path / f"{code}.png"
        subprocess.run(
            [
                CHROMIUM or "",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1000,700",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        width, _ = png_size(shot.read_bytes())
        left, right = ink_columns(shot, 40, 80)  # the title line
        if code == "en":
            assert left < width * 0.2 and right < width * 0.6, (left, right)
        else:
            assert right > width * 0.8 and left > width * 0.4, (left, right)


def test_an_empty_week_and_a_new_account_say_so(tmp_path: Path) -> None:
    """No messages at all: a sentence, not an error; a first week: nothing to compare with."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    directory = AccountDirectory(Config.empty())
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    Ingestor(engine, directory).ingest(
        [
            Event("facebook", "quiet", "dm", "t0", "q0", "customer", monday - timedelta(days=30)),
            Event("facebook", "fresh", "dm", "t1", "q1", "customer", monday + timedelta(hours=9)),
            Event("facebook", "fresh", "dm", "t1", "a1", "business", monday + timedelta(hours=9.1)),
        ]
    )
    with engine.connect() as connection:
        empty = summarise_week(
            connection, directory, IsoWeek(2026, 40, "UTC"), monday + timedelta(days=8)
        )
        week = summarise_week(
            connection, directory, IsoWeek(2026, 47, "UTC"), monday + timedelta(days=8)
        )
    engine.dispose()
    en = get_locale("en")
    text = render_markdown(empty, en)
    assert empty.empty and en.text("empty_all") in text
    page = render_html(empty, en).html
    assert "No customer wrote to any of these accounts this week" in page
    md = render_markdown(week, en)
    assert "First week: nothing to compare with." in md
    assert "No customer wrote to quiet this week." in md
    assert "No negative reviews this week." in md


def test_bad_options_get_one_clear_line(ibm_store: str, run_cli: RunCli) -> None:
    """A wrong week, PDF to a terminal, an unknown account or group: exit 2 and why."""
    cases = [
        (["--week", "2026-47"], "is not an ISO week like 2026-W47"),
        (["--week", "2026-W54"], "2026 has no week 54"),
        (["--week", WEEK, "--format", "pdf"], "--format pdf needs --out FILE"),
        (["--week", WEEK, "--account", "NoSuchShop"], "no such account in the store: NoSuchShop"),
        (["--week", WEEK, "--group", "ghosts"], "no accounts in group 'ghosts'"),
    ]
    for args, words in cases:
        result = run_cli("--database", ibm_store, "summary", *args)
        assert result.code == 2, args
        assert words in result.err and "Traceback" not in result.err, result.err


def test_an_out_file_whose_format_is_unknown_is_refused(
    ibm_store: str, run_cli: RunCli, tmp_path: Path
) -> None:
    """`--out x.docx` would hold Markdown under a Word name: refused, nothing written; with
    `--format` the name is the user's choice."""
    docx = tmp_path / "summary.docx"
    result = run_cli(
        "--database", ibm_store, "summary", "--week", WEEK, "--as-of", AS_OF, "--out", str(docx)
    )
    assert result.code == 2
    assert "'summary.docx'" in result.err and ".md, .html or .pdf" in result.err
    assert not docx.exists()
    summary_cli(run_cli, ibm_store, "--format", "md", "--out", str(docx))
    assert docx.read_text(encoding="utf-8").startswith("# ")
