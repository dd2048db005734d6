"""A list of ids as one bound value, so a statement's text never depends on its length.

``column IN (?, ?, ...)`` is a new statement for every length, and each database connection
keeps the statements it prepared: at 5,000 accounts, rounds that name a different number of
changed accounts each time filled SQLite's statement cache with up to 128 variants per pooled
connection (about 3 MB each, measured), which read as memory growing for half an hour. One
JSON array (SQLite) or one array (PostgreSQL) keeps a single statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Connection, any_, bindparam, func, select
from sqlalchemy.sql import column as sql_column

from monitor.store.rawsql import RawSql

__all__ = ["any_of", "raw_any_of"]


def any_of(
    connection: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """``column`` equals one of ``values``, as one bound value whatever their number."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    listed = func.json_each(bindparam(None, json.dumps(list(values))))
    return column.in_(select(sql_column("value")).select_from(listed))


def raw_any_of(sql: RawSql, column: str, values: Collection[Any]) -> tuple[str, tuple[Any]]:
    """The same for a statement on the driver cursor: its SQL text and its one parameter."""
    if sql.sqlite:
        return f"{column} IN (SELECT value FROM json_each(?))", (json.dumps(list(values)),)
    return f"{column} = ANY(%s)", (list(values),)
