"""Id lists bound as one value: the same statement text whatever the number of ids."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from connectors.base import Event
from monitor.config.loading import Config
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.id_lists import any_of, raw_any_of
from monitor.store.ingest import Ingestor
from monitor.store.rawsql import RawSql
from monitor.store.tables import ACCOUNTS

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_one_statement_for_any_number_of_ids(store_url: str) -> None:
    """Ids and names select the right rows, with one statement text for 1 and for 30 ids."""
    engine = open_engine(store_url)
    names = [f"page-{n}" for n in range(30)]
    Ingestor(engine, AccountDirectory(Config.empty())).ingest(
        [Event("facebook", name, "dm", "t", f"m-{name}", "customer", AT) for name in names],
        seen_at=AT,
    )
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        with engine.connect() as connection:
            ids = dict(connection.execute(select(ACCOUNTS.c.name, ACCOUNTS.c.id)).all())
            picked = {}
            for chosen in (names[:1], names[:30:3], names):
                query = select(ACCOUNTS.c.name).where(any_of(connection, ACCOUNTS.c.name, chosen))
                by_name = {row.name for row in connection.execute(query)}
                wanted = [ids[name] for name in chosen]
                query = select(ACCOUNTS.c.name).where(any_of(connection, ACCOUNTS.c.id, wanted))
                by_id = {row.name for row in connection.execute(query)}
                sql = RawSql(connection)
                where, params = raw_any_of(sql, "id", wanted)
                raw = {
                    row[0] for row in sql.fetch(f"SELECT name FROM accounts WHERE {where}", params)
                }
                picked[len(chosen)] = (by_name, by_id, raw)
    finally:
        engine.dispose()
    for count, (by_name, by_id, raw) in picked.items():
        expected = set(names[:1] if count == 1 else names[:30:3] if count == 10 else names)
        assert by_name == by_id == raw == expected
    # Three lengths, two kinds of column: six statements, two texts (the raw statement goes
    # to the driver's cursor, which SQLAlchemy does not see).
    assert len(statements[1:]) == 6
    assert len(set(statements[1:])) == 2
