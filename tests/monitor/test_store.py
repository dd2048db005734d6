"""The store: migrations match the models, upgrades keep data, errors hide passwords."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text

from monitor.store.engine import (
    BULK_CACHE_MIB,
    MONITOR_CACHE_MIB,
    StoreError,
    head_revision,
    open_engine,
)
from monitor.store.models import Account, metadata
from tests.conftest import RunCli


def test_migrations_produce_exactly_the_models(store_url: str) -> None:
    """Autogenerate finds nothing to change after upgrading an empty database to head."""
    engine = open_engine(store_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == []


def test_reopening_keeps_data_and_revision(store_url: str) -> None:
    """Opening an existing store again migrates nothing away; rows survive."""
    engine = open_engine(store_url)
    table = Account.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            {
                "platform": "x",
                "name": "kept",
                "profile": "strict",
                "derivation": "",
                "created_at": datetime.now(UTC),
            },
        )
    engine.dispose()
    engine = open_engine(store_url)
    with engine.connect() as connection:
        names = connection.execute(select(table.c.name)).scalars().all()
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    assert names == ["kept"]
    assert revision == head_revision()


def test_unusable_urls_give_clear_errors(tmp_path: Path) -> None:
    """A missing folder or an unreachable server is one readable line, password hidden."""
    with pytest.raises(StoreError, match="does not exist"):
        open_engine(f"sqlite:///{tmp_path}/no/such/dir/r.db")
    with pytest.raises(StoreError) as caught:
        open_engine("postgresql://watcher:hunter2-secret@127.0.0.1:1/nope")
    assert "hunter2-secret" not in str(caught.value)
    assert "***" in str(caught.value)


def test_db_command_reports_revision(run_cli: RunCli, sqlite_url: str) -> None:
    """`replywatch db upgrade` migrates and prints the revision."""
    result = run_cli("--database", sqlite_url, "db", "upgrade")
    assert result.code == 0
    assert f"schema revision {head_revision()}" in result.out


def test_database_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    """--database beats $REPLYWATCH_DATABASE_URL, which beats the config's database."""
    from monitor.store.engine import DEFAULT_DATABASE_URL, choose_database

    monkeypatch.delenv("REPLYWATCH_DATABASE_URL", raising=False)
    assert choose_database(None, None) == DEFAULT_DATABASE_URL
    assert choose_database(None, "sqlite:///config.db") == "sqlite:///config.db"
    monkeypatch.setenv("REPLYWATCH_DATABASE_URL", "sqlite:///env.db")
    assert choose_database(None, "sqlite:///config.db") == "sqlite:///env.db"
    assert choose_database("sqlite:///cli.db", "sqlite:///config.db") == "sqlite:///cli.db"


def test_db_current_on_an_unreachable_server_is_one_clear_line(run_cli: RunCli) -> None:
    """No traceback and no password: the URL (redacted) and the driver's reason."""
    url = "postgresql+psycopg://watcher:s3cret-pw@127.0.0.1:1/replywatch"
    result = run_cli("--database", url, "db", "current")
    assert result.code == 2
    assert result.err.startswith(
        "replywatch: cannot open database postgresql+psycopg://watcher:***@"
    )
    assert "Connection refused" in result.err or "connection failed" in result.err
    assert "s3cret-pw" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("mib", [BULK_CACHE_MIB, MONITOR_CACHE_MIB])
def test_each_sqlite_connection_gets_the_page_cache_asked_for(tmp_path: Path, mib: int) -> None:
    """Bulk work keeps 64 MB per connection; the long-running monitor's pool 8 MB each."""
    engine = open_engine(f"sqlite:///{tmp_path / 'cache.db'}", sqlite_cache_mib=mib)
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert connection.execute(text("PRAGMA cache_size")).scalar_one() == -mib * 1024
    finally:
        engine.dispose()
