"""`replywatch import` and `replywatch stats` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from monitor.config.loading import Config
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.stats import account_stats
from tests.conftest import RunCli

HEADER = "platform,account,thread_id,message_id,author_role,created_at,channel,rating,text\n"
ROWS = [
    # shop-fb: thread a answered in 10 min, thread b in 40 min, thread c open.
    "facebook,shop-fb,a,1,customer,2026-11-16T09:00:00Z,dm,,hello",
    "facebook,shop-fb,a,2,business,2026-11-16T09:10:00Z,dm,,hi",
    "facebook,shop-fb,b,3,customer,2026-11-16T10:00:00+01:00,comment,,where is it",
    "facebook,shop-fb,b,4,business,2026-11-16T09:40:00Z,comment,,on its way",
    "facebook,shop-fb,c,5,customer,2026-11-17T12:00:00Z,dm,,anyone?",
    # A review rated 1, answered after 3 h.
    "google_play,app,r1,r1,customer,2026-11-16T08:00:00Z,review,1,crashes",
    "google_play,app,r1,r1-reply,business,2026-11-16T11:00:00Z,review,,sorry",
]
BAD = [
    "facebook,shop-fb,d,6,client,2026-11-16T09:00:00Z,dm,,",  # bad role
    "facebook,shop-fb,d,7,customer,16/11/2026 09:00,dm,,",  # bad time
    "facebook,shop-fb,d,8,customer,2026-11-16T09:00:00,dm,,",  # no offset
    "facebook,shop-fb,,9,customer,2026-11-16T09:00:00Z,dm,,",  # empty thread
    "facebook,shop-fb,d,10,customer,2026-11-16T09:00:00Z,sms,,",  # bad channel
    "google_play,app,r2,r2,customer,2026-11-16T09:00:00Z,review,6,",  # bad rating
    "facebook,shop-fb,d,11,customer",  # short row
]
AS_OF = "2026-11-18T12:00:00Z"


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def snapshot(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [
            tuple(r)
            for table in ("accounts", "events", "waits", "cursors")
            for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))
        ]
    engine.dispose()
    return rows


def test_import_reports_each_bad_row_and_keeps_the_good(
    tmp_path: Path, run_cli: RunCli, store_url: str
) -> None:
    """Bad rows are named by line with the reason; good rows are stored; exit code 1."""
    path = write_csv(tmp_path, ROWS[:3] + BAD + ROWS[3:])
    result = run_cli("--database", store_url, "import", str(path))
    assert result.code == 1
    lines = [ln for ln in result.err.splitlines() if ln.startswith(str(path))]
    assert [ln.split(":")[1].strip() for ln in lines] == [f"line {n}" for n in range(5, 12)]
    assert "author_role 'client' is not one of customer, business, automated" in lines[0]
    assert "is not an ISO 8601 time" in lines[1]
    assert "has no UTC offset" in lines[2]
    assert "thread_id is empty" in lines[3]
    assert "channel 'sms'" in lines[4]
    assert "rating '6'" in lines[5]
    assert "has 6 fields, the header has 9" in lines[6] or "fields" in lines[6]
    assert "14 row(s): 7 new event(s), 0 already stored, 7 bad row(s) skipped" in result.out


def test_importing_twice_changes_nothing(tmp_path: Path, run_cli: RunCli, store_url: str) -> None:
    """The second import stores nothing new and leaves every table as it was."""
    path = write_csv(tmp_path, ROWS)
    first = run_cli("--database", store_url, "import", str(path))
    assert first.code == 0, first.err
    before = snapshot(store_url)
    second = run_cli("--database", store_url, "import", str(path))
    assert second.code == 0
    assert "0 new event(s), 7 already stored" in second.out
    assert snapshot(store_url) == before


def test_missing_columns_and_missing_file(tmp_path: Path, run_cli: RunCli, sqlite_url: str) -> None:
    """A file without the required header, or no file at all, is a usage error (2)."""
    path = tmp_path / "bad.csv"
    path.write_text("platform,account,created_at\nx,y,2026-01-01T00:00:00Z\n")
    result = run_cli("--database", sqlite_url, "import", str(path))
    assert result.code == 2
    assert "missing column(s) thread_id, message_id, author_role" in result.err
    result = run_cli("--database", sqlite_url, "import", str(tmp_path / "nope.csv"))
    assert result.code == 2 and "no such file" in result.err


def test_stats_json_csv_and_by_channel(tmp_path: Path, run_cli: RunCli, store_url: str) -> None:
    """Figures per account and per channel agree across formats."""
    run_cli("--database", store_url, "import", str(write_csv(tmp_path, ROWS)))
    result = run_cli("--database", store_url, "stats", "--as-of", AS_OF, "--format", "json")
    assert result.code == 0, result.err
    figures = {row["account"]: row for row in json.loads(result.out)}
    shop = figures["shop-fb"]
    # waits a (600 s) and b (2400 s) answered; c open for 24 h at as_of -> decided, missed.
    assert (shop["waits"], shop["answered"], shop["unanswered"]) == (3, 2, 1)
    assert shop["response_rate"] == 2 / 3
    assert shop["within_target_share"] == 1 / 3
    assert shop["mean_response_seconds"] == 1500.0
    assert shop["median_response_seconds"] == 1500.0
    assert shop["p90_response_seconds"] == 600 + 0.9 * 1800
    assert shop["open_waits"] == 1 and shop["oldest_open_wait_seconds"] == 86400.0
    assert shop["target_met"] is None  # 3 waits < min_waits 5
    assert shop["profile"] == "strict" and shop["profile_version"] == 1
    table = run_cli(
        "--database",
        store_url,
        "stats",
        "--as-of",
        AS_OF,
        "--format",
        "csv",
        "--by",
        "channel",
    )
    rows = list(csv.DictReader(io.StringIO(table.out)))
    by_channel = {(r["account"], r["channel"]): r for r in rows}
    assert by_channel[("shop-fb", "comment")]["mean_response_seconds"] == "2400.0"
    assert by_channel[("shop-fb", "dm")]["open_waits"] == "1"
    assert by_channel[("app", "review")]["waits"] == "1"


def test_stats_profile_and_window(tmp_path: Path, run_cli: RunCli, sqlite_url: str) -> None:
    """--profile judges by another definition; --from/--to bound the window."""
    run_cli("--database", sqlite_url, "import", str(write_csv(tmp_path, ROWS)))
    stats = ("--database", sqlite_url, "stats", "--as-of", AS_OF, "--format", "json")
    result = run_cli(*stats, "--profile", "reviews", "--account", "app")
    [app] = json.loads(result.out)
    # The rating-1 review is tier negative: 3 h is inside its 4 h deadline.
    assert app["response_rate"] == 1.0 and app["profile"] == "reviews"
    narrow = run_cli(*stats, "--from", "2026-11-17", "--to", "2026-11-18", "--account", "shop-fb")
    [shop] = json.loads(narrow.out)
    assert shop["waits"] == 1 and shop["answered"] == 0
    assert shop["window"]["start"] == "2026-11-17T00:00:00+00:00"
    missing = run_cli("--database", sqlite_url, "stats", "--account", "ghost")
    assert missing.code == 1 and "no account named 'ghost'" in missing.err
    table = run_cli("--database", sqlite_url, "stats", "--as-of", AS_OF)
    assert "shop-fb" in table.out and "66.7%" in table.out


def test_meta_badge_profile_derived_on_the_fly(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """Asking a strict account for meta-badge figures counts only turns after 24 h silence."""
    rows = [
        "facebook,shop,t,1,customer,2026-11-16T09:00:00Z,dm,,",
        "facebook,shop,t,2,business,2026-11-16T09:05:00Z,dm,,",
        "facebook,shop,t,3,customer,2026-11-16T10:00:00Z,dm,,",
        "facebook,shop,t,4,business,2026-11-16T11:00:00Z,dm,,",
        "facebook,shop,t,5,customer,2026-11-17T12:00:00Z,dm,,",
        "facebook,shop,t,6,business,2026-11-17T12:01:00Z,dm,,",
    ]
    run_cli("--database", sqlite_url, "import", str(write_csv(tmp_path, rows)))
    stats = ("--database", sqlite_url, "stats", "--as-of", AS_OF, "--format", "json")
    strict = json.loads(run_cli(*stats).out)[0]
    badge = json.loads(run_cli(*stats, "--profile", "meta-badge").out)[0]
    assert strict["waits"] == 3
    # Turn 3 came 55 min after the reply, turn 5 25 h after: only 1 and 5 open waits.
    assert badge["waits"] == 2 and badge["mean_response_seconds"] == (300 + 60) / 2


def test_progress_bar_is_drawn_when_asked(tmp_path: Path, run_cli: RunCli, sqlite_url: str) -> None:
    """--progress always draws on stderr even when it is not a terminal."""
    result = run_cli(
        "--database",
        sqlite_url,
        "import",
        "--progress",
        "always",
        str(write_csv(tmp_path, ROWS)),
    )
    assert result.code == 0
    assert "importing" in result.err


def test_a_time_that_is_not_iso_8601_is_one_line_and_exit_2(
    run_cli: RunCli, sqlite_url: str
) -> None:
    """Refused while the options are read: no traceback, the usage exit code."""
    result = run_cli("--database", sqlite_url, "stats", "--as-of", "next tuesday")
    assert result.code == 2
    assert result.err == "replywatch: 'next tuesday' is not an ISO 8601 date or time\n"
    assert result.out == ""


def test_a_rolling_window_is_seven_times_86400_seconds_across_a_dst_change(
    tmp_path: Path, run_cli: RunCli, sqlite_url: str
) -> None:
    """7 days before 2026-11-02 12:00 New York (EST) is 7 x 86,400 s, not 12:00 EDT."""
    rows = [
        # 30 min before the window (12:30 EDT on 26 October, inside seven local days).
        "facebook,shop,a,1,customer,2026-10-26T16:30:00Z,dm,,",
        "facebook,shop,a,2,business,2026-10-26T16:31:00Z,dm,,",
        # Exactly at the window's start: inside.
        "facebook,shop,b,3,customer,2026-10-26T17:00:00Z,dm,,",
        "facebook,shop,b,4,business,2026-10-26T17:02:00Z,dm,,",
    ]
    run_cli("--database", sqlite_url, "import", str(write_csv(tmp_path, rows)))
    result = run_cli(
        "--database",
        sqlite_url,
        "stats",
        "--as-of",
        "2026-11-02T12:00:00-05:00",
        "--format",
        "json",
    )
    [shop] = json.loads(result.out)
    assert shop["window"]["start"] == "2026-10-26T17:00:00+00:00"
    assert shop["waits"] == 1 and shop["mean_response_seconds"] == 120.0
    # The same through the store with as_of in the zone itself.
    engine = open_engine(sqlite_url)
    as_of = datetime(2026, 11, 2, 12, tzinfo=ZoneInfo("America/New_York"))
    with engine.connect() as connection:
        [row] = account_stats(connection, AccountDirectory(Config.empty()), as_of=as_of)
    engine.dispose()
    assert (row.window.end - row.window.start).total_seconds() == 7 * 86400
    assert row.figures.waits == 1
