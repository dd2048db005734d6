"""Statements on the driver's own cursor, for the hot paths (bulk ingest, figure reads).

SQLAlchemy Core wraps every row and converts every value; on a million rows that costs more
than the database. Hot paths use the DBAPI cursor of the same connection (same transaction)
and this class papers over the two dialects: placeholders, time values and their parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from monitor.store.models import sqlite_time

__all__ = ["RawSql"]


class RawSql:
    """One connection's driver cursor, with the dialect differences."""

    def __init__(self, connection: Connection) -> None:
        self.sqlite = connection.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        self.time_type = "VARCHAR(32)" if self.sqlite else "TIMESTAMPTZ"
        self.cursor = connection.connection.cursor()

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; return the rows it changed."""
        self.cursor.execute(statement, tuple(params))
        return int(self.cursor.rowcount)

    def run_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        """Execute a statement for every row; return the rows changed."""
        self.cursor.executemany(statement, rows)
        return int(self.cursor.rowcount)

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, as plain tuples."""
        self.cursor.execute(statement, tuple(params))
        return list(self.cursor.fetchall())

    def values(self, count: int) -> str:
        """``?, ?, ?`` or ``%s, %s, %s``."""
        return ", ".join([self.mark] * count)

    def time(self, value: datetime | None) -> Any:
        """A time as this dialect stores it."""
        if value is None or not self.sqlite:
            return value
        return sqlite_time(value)

    def read_time(self, value: Any) -> datetime:
        """A stored time back as an aware UTC datetime."""
        if isinstance(value, str):
            return datetime.fromisoformat(value + "+00:00")
        assert isinstance(value, datetime)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
