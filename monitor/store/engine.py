"""Opening the store: SQLite (WAL) by default, PostgreSQL by URL, migrated to head at start."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

__all__ = [
    "BULK_CACHE_MIB",
    "DEFAULT_DATABASE_URL",
    "MONITOR_CACHE_MIB",
    "StoreError",
    "choose_database",
    "current_revision",
    "database_errors",
    "database_failure",
    "head_revision",
    "normalise_url",
    "open_engine",
    "redact_url",
    "store_failures",
]

DEFAULT_DATABASE_URL = "sqlite:///replywatch.db"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Advisory lock key held while migrating ("rwmigr").
_MIGRATION_LOCK = 0x72776D696772


class StoreError(Exception):
    """The database cannot be opened or migrated; the message never shows a password."""


def database_errors() -> tuple[type[Exception], ...]:
    """What a database can raise: SQLAlchemy's wrapped errors, and the drivers' own from the
    hot paths that use the driver cursor directly (monitor.store.rawsql)."""
    return (DBAPIError, sqlite3.Error, *_postgres_errors())


def store_failures() -> tuple[type[Exception], ...]:
    """What storing can raise when the store, not the data, is the trouble: the database's
    errors, SQLAlchemy's own (no pooled connection free in time) and the file system's (a
    full disk). A pushed delivery that meets one is answered 503, so its sender retries."""
    return (SQLAlchemyError, sqlite3.Error, *_postgres_errors(), OSError)


def _postgres_errors() -> tuple[type[Exception], ...]:
    # psycopg is imported by SQLAlchemy only when a PostgreSQL store is opened (about 20 MB
    # a SQLite deployment need not carry); until then none of its errors can be raised.
    driver = sys.modules.get("psycopg")
    return () if driver is None else (driver.Error,)


# SQLite's words for a file that is not, or no longer, a database (SQLITE_NOTADB, _CORRUPT).
_SQLITE_DAMAGE = {
    "file is not a database": "is not a valid SQLite database",
    "database disk image is malformed": "is damaged",
}


def database_failure(url: str, error: BaseException, action: str = "open") -> str:
    """One line saying what is wrong with the database and what to do (no password shown)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    lines = str(original).strip().splitlines()
    reason = lines[0] if lines else type(original).__name__
    target = normalise_url(url)
    try:
        parsed = make_url(target)
    except ArgumentError:
        return f"cannot {action} database {redact_url(target)}: {reason}"
    if parsed.get_backend_name() == "sqlite":
        damage = _SQLITE_DAMAGE.get(reason)
        if damage is not None:
            return (
                f"database file {parsed.database} {damage} ({reason}): restore it from a "
                "backup or point --database elsewhere"
            )
    return f"cannot {action} database {redact_url(target)}: {reason}"


def normalise_url(url: str) -> str:
    """Turn user-friendly URLs into SQLAlchemy ones (PostgreSQL through psycopg 3)."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        # A bare path means an SQLite file.
        return f"sqlite:///{url}"
    return url


def redact_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


BULK_CACHE_MIB = 64
"""SQLite page cache per connection for bulk work (imports, ``stats``): a batch touches three
indexes per row, and 64 MB keeps them in memory."""
MONITOR_CACHE_MIB = 2
"""Per connection for the long-running monitor, SQLite's own default: its pool holds several
connections (up to 15), each with a cache of its own. Measured with ``make bench-poll`` (5,000
accounts): 8 MB each let the resident memory climb 44 MB in three minutes of steady polling
as the caches filled, for no CPU saved (1.36x against 1.31x the bare client at 2 MB); a
poll's small transactions touch few pages, and re-reads come from the operating system's
cache."""


def _sqlite_pragmas(cache_mib: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the exporter, the CLI) work while the poller writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint every ~40 MB of WAL instead of 4 MB: hot index pages are then copied
        # back to the database once per checkpoint rather than after nearly every batch.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    return on_connect


def choose_database(command_line: str | None, configured: str | None) -> str:
    """--database, then $REPLYWATCH_DATABASE_URL, then the config's, then replywatch.db."""
    return (
        command_line
        or os.environ.get("REPLYWATCH_DATABASE_URL")
        or configured
        or DEFAULT_DATABASE_URL
    )


def open_engine(
    url: str | None = None,
    *,
    migrate: bool = True,
    sqlite_busy_seconds: float = 30.0,
    idle_transaction_seconds: float | None = None,
    application_name: str | None = None,
    sqlite_cache_mib: int = BULK_CACHE_MIB,
) -> Engine:
    """Create the engine for ``url`` (see :func:`choose_database`) and migrate it.

    ``idle_transaction_seconds`` (PostgreSQL): the server ends a session that sits idle
    inside a transaction this long, so a frozen worker cannot keep its row locks.
    ``application_name`` (PostgreSQL) names the sessions in ``pg_stat_activity``.
    ``sqlite_cache_mib`` (SQLite) is each pooled connection's page cache.
    """
    raw = choose_database(url, None)
    target = normalise_url(raw)
    try:
        parsed = make_url(target)
    except ArgumentError:
        raise StoreError(f"cannot parse database URL {redact_url(target)!r}") from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            parent = Path(database).expanduser().parent
            if not parent.exists():
                raise StoreError(f"folder {parent} for the SQLite database does not exist")
        # How long a write waits for another process's lock before the poll fails (and is
        # retried with backoff, its cursor unmoved). The driver sets SQLite's busy timeout.
        kwargs["connect_args"] = {"timeout": sqlite_busy_seconds}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        connect_args: dict[str, str] = {}
        if idle_transaction_seconds is not None:
            milliseconds = max(1, round(idle_transaction_seconds * 1000))
            connect_args["options"] = f"-c idle_in_transaction_session_timeout={milliseconds}"
        if application_name is not None:
            connect_args["application_name"] = application_name
        if connect_args:
            kwargs["connect_args"] = connect_args
    try:
        engine = create_engine(target, **kwargs)
    except (ArgumentError, ModuleNotFoundError) as err:
        raise StoreError(f"cannot use database {redact_url(target)}: {err}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_cache_mib))
    if migrate:
        try:
            upgrade(engine)
        except database_errors() as err:
            # Not only OperationalError: a damaged SQLite file fails with DatabaseError.
            engine.dispose()
            raise StoreError(database_failure(target, err)) from None
    return engine


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (a no-op when already at head)."""
    config = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several workers may start together on one database: one migrates, the others
            # wait for it here and then find the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        if current_revision(connection) == head_revision():
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    """The newest migration shipped with this version of replywatch."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(connection: Any) -> str | None:
    """The migration the database is at (None for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()
