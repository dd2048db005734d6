"""INSERT statements with ON CONFLICT, for whichever backend the connection talks to."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["insert_for"]


def insert_for(connection: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT on ``table`` that supports ``on_conflict_do_nothing``/``_update``."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
