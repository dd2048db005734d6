"""`--log-format json`: one JSON object per stderr line, with the event name and its fields."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli.command import UsageError
from monitor.cli.logging_setup import TEXT_FORMAT, json_lines_to, log_settings
from monitor.core.log_format import JsonFormatter, event_of
from tests.conftest import RunCli

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEYS = ("time", "level", "logger", "event", "message")


def record(name: str = "monitor.alerts", **extra: object) -> logging.LogRecord:
    """A WARNING record as ``logging`` makes it, with ``extra`` fields."""
    return logging.getLogger(name).makeRecord(
        name,
        logging.WARNING,
        __file__,
        1,
        "sent %d alert(s) to %s",
        (3, "pager"),
        None,
        extra=extra,
    )


def test_a_record_with_fields_and_an_exception_is_one_json_line() -> None:
    """Time, level, logger, event, message, every extra field and the traceback."""
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    entry = record(
        event="alert_sent",
        account="shop-fb",
        attempt=2,
        at=datetime(2026, 11, 16, 9, 0, tzinfo=UTC),
        time="a field named like a key",
    )
    entry.exc_info = exc_info
    entry.created = datetime(2026, 11, 16, 9, 0, 1, 250000, tzinfo=UTC).timestamp()
    line = formatter.format(entry)
    assert "\n" not in line
    parsed = json.loads(line)
    assert list(parsed)[:5] == list(KEYS)
    assert parsed["time"] == "2026-11-16T09:00:01.250Z"
    assert parsed["level"] == "warning"
    assert parsed["logger"] == "monitor.alerts"
    assert parsed["event"] == "alert_sent"
    assert parsed["message"] == "sent 3 alert(s) to pager"
    assert parsed["account"] == "shop-fb" and parsed["attempt"] == 2
    assert parsed["at"] == "2026-11-16T09:00:00+00:00"
    assert parsed["extra_time"] == "a field named like a key"
    assert parsed["exc_info"].startswith("Traceback (most recent call last):")
    assert parsed["exc_info"].endswith("ValueError: boom")
    # Nothing of LogRecord's own attributes leaks in as a field.
    assert not {"args", "msg", "pathname", "lineno", "levelno", "created"} & set(parsed)


def test_a_record_without_an_event_is_named_after_its_logger() -> None:
    """A library's record gets ``<last part of its logger>_log`` as its event."""
    assert event_of(record("alembic.runtime.migration")) == "migration_log"
    assert event_of(record("aiohttp.access")) == "access_log"
    assert event_of(record("root")) == "root_log"
    parsed = json.loads(JsonFormatter().format(record("monitor.webhooks")))
    assert parsed["event"] == "webhooks_log"
    assert "exc_info" not in parsed


def test_control_characters_and_non_ascii_stay_on_one_escaped_line() -> None:
    """A name from an imported file cannot break the line or reach a terminal raw."""
    entry = record(account="line\nbreak \x1b[31m فروشگاه")
    line = JsonFormatter().format(entry)
    assert "\n" not in line and "\x1b" not in line and line.isascii()
    assert json.loads(line)["account"] == "line\nbreak \x1b[31m فروشگاه"


def settings_of(environ: dict[str, str], **options: object) -> tuple[int, str]:
    """The level and format chosen for these global options and this environment."""
    args = Namespace(**{"log_level": None, "log_format": None, "verbose": False, **options})
    chosen = log_settings(args, environ)
    return chosen.level, chosen.format


def test_the_command_line_wins_over_the_environment_then_defaults() -> None:
    """--log-level/-v/--log-format, then REPLYWATCH_LOG_*, then warning and text."""
    assert settings_of({}) == (logging.WARNING, "text")
    assert settings_of({}, verbose=True) == (logging.INFO, "text")
    env = {"REPLYWATCH_LOG_FORMAT": "JSON", "REPLYWATCH_LOG_LEVEL": "error"}
    assert settings_of(env) == (logging.ERROR, "json")
    assert settings_of(env, verbose=True) == (logging.INFO, "json")
    assert settings_of(env, log_level="debug", log_format="text") == (logging.DEBUG, "text")
    with pytest.raises(UsageError, match="REPLYWATCH_LOG_FORMAT must be one of text, json"):
        settings_of({"REPLYWATCH_LOG_FORMAT": "xml"})


def test_a_bad_log_format_in_the_environment_is_one_line_and_exit_2(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """An environment value that is not a choice is refused like an option."""
    monkeypatch.setenv("REPLYWATCH_LOG_LEVEL", "loud")
    result = run_cli("--database", sqlite_url, "db", "current")
    assert result.code == 2
    assert result.err == (
        "replywatch: REPLYWATCH_LOG_LEVEL must be one of debug, info, warning, error, not 'loud'\n"
    )


def test_json_lines_to_writes_one_loggers_records_to_a_file_only(tmp_path: Path) -> None:
    """The worker's --poll-log: the records go to the file, not on to stderr."""
    polls = logging.getLogger("monitor.test_log_format.polls")
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("monitor.test_log_format").addHandler(catcher)
    path = tmp_path / "polls.jsonl"
    try:
        with json_lines_to(path, polls):
            polls.debug("poll_ended a job 1", extra={"event": "poll_ended", "job": 1})
        polls.warning("after")
    finally:
        logging.getLogger("monitor.test_log_format").removeHandler(catcher)
    [line] = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["event"] == "poll_ended" and json.loads(line)["job"] == 1
    # Not passed on while the file had them; passed on again (and the level restored) after.
    assert [r.getMessage() for r in seen] == ["after"]
    assert polls.level == logging.NOTSET and polls.propagate


def replywatch(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m monitor.cli`` as a user runs it, without log settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYWATCH_LOG")}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def write_push_account(path: Path, profile: str) -> Path:
    """A config with one push account judged by ``profile``."""
    path.write_text(
        f'[[accounts]]\nname = "helpdesk"\nplatform = "whatsapp"\nsource = "push"\n'
        f'profile = "{profile}"\n',
        encoding="utf-8",
    )
    return path


def test_a_command_logs_json_lines_with_event_names_and_fields(tmp_path: Path) -> None:
    """A changed profile is logged as an event with its account; alembic's lines too."""
    store = f"sqlite:///{tmp_path / 'rw.db'}"
    events = tmp_path / "events.csv"
    events.write_text(
        "platform,account,thread_id,message_id,author_role,created_at\n"
        "whatsapp,helpdesk,a,1,customer,2026-11-16T09:00:00Z\n",
        encoding="utf-8",
    )
    before = write_push_account(tmp_path / "before.toml", "strict")
    first = replywatch("--config", str(before), "--database", store, "import", str(events))
    assert first.returncode == 0, first.stderr
    after = write_push_account(tmp_path / "after.toml", "meta-badge")
    result = replywatch(
        "--log-format",
        "json",
        "--log-level",
        "info",
        "--config",
        str(after),
        "--database",
        store,
        "stats",
        "--as-of",
        "2026-11-17",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines, "nothing was logged at INFO"
    for line in lines:
        assert set(KEYS) <= set(line)
        assert RFC3339_UTC.match(line["time"]) and line["level"] == "info"
    changed = [line for line in lines if line["event"] == "account_policy_changed"]
    assert len(changed) == 1
    assert changed[0]["logger"] == "monitor.context" and changed[0]["account"] == "helpdesk"
    assert changed[0]["message"] == (
        "re-deriving waits of account helpdesk: its profile or hours changed"
    )
    assert {line["event"] for line in lines if line["logger"].startswith("alembic")} == {
        "migration_log"
    }
    assert json.loads(result.stdout)[0]["profile"] == "meta-badge"


def test_text_is_the_default_and_keeps_its_format(tmp_path: Path) -> None:
    """Without --log-format the lines are ``LEVEL logger: message``, as before."""
    result = replywatch("-v", "--database", f"sqlite:///{tmp_path / 'rw.db'}", "db", "upgrade")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert TEXT_FORMAT == "%(levelname)s %(name)s: %(message)s"
    assert "INFO alembic.runtime.migration: Context impl SQLiteImpl." in lines
    assert all(line.startswith("INFO ") for line in lines)
