"""Shared fixtures: stores on SQLite and on the local PostgreSQL, and a CLI runner."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from monitor.cli import main

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
