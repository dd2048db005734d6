"""Shared fixtures: stores on SQLite and on the local PostgreSQL, and a CLI runner."""

from __future__ import annotations

import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from monitor.cli.main import main

# CI explores the same examples on every run, so a submission's result does not depend on
# luck; local runs keep drawing new ones (and keep what they find in .hypothesis/).
settings.register_profile("ci", derandomize=True, deadline=None, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

POSTGRES_ADMIN_URL = os.environ.get(
    "REPLYWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SHARED_DATA = Path(__file__).parent / "data"


@dataclass
class CliResult:
    """What one CLI invocation printed and returned."""

    code: int
    out: str
    err: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli() -> RunCli:
    """Run ``replywatch`` in-process and capture its output."""

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), out=out, err=err)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file store."""
    return f"sqlite:///{tmp_path / 'replywatch.db'}"


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except OperationalError:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not _postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432 (run scripts/services)")
    name = f"replywatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


# The test suite's fake secrets are recognisable: "TEST-"/"TEST_" tokens, "SECRET" in capitals,
# "-TOKEN-". None may ever reach a log line, in any test (issue 8: secrets never leak).
_SECRET_SHAPES = re.compile(r"TEST[-_][A-Za-z]|[A-Za-z0-9]SECRET|SECRET[-_A-Za-z]|-TOKEN-")


@pytest.fixture(autouse=True)
def _no_secret_in_any_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test whose code logged something shaped like one of the suite's secrets."""
    caplog.set_level(logging.INFO)
    yield
    for record in caplog.get_records("call") + caplog.get_records("teardown"):
        if record.name == "aiohttp.access":
            continue  # the fake platforms' own request lines (Telegram has tokens in paths)
        text_ = record.getMessage() + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            text_ += repr(record.exc_info[1])
        leaked = _SECRET_SHAPES.search(text_)
        assert leaked is None, f"a log line carries a secret: {record.name}: {text_[:300]}"
