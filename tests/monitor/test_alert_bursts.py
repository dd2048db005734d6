"""A burst of conversation alerts stays cheap for the event loop that also runs the polls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine, event, func, select

from connectors.base import Event
from monitor.config.loading import Config
from monitor.notify.conversation_alerts import ALERTS, firing_alerts, update_conversation_alerts
from monitor.notify.receivers import AlertmanagerReceiver
from monitor.store.accounts import AccountDirectory, account_names
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """A migrated store on SQLite and on PostgreSQL."""
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def _customers(count: int, prefix: str, minute: float) -> list[Event]:
    at = T0 + timedelta(minutes=minute)
    return [
        Event("facebook", f"page-{i % 7}", "dm", f"{prefix}{i}", f"{prefix}m{i}", "customer", at)
        for i in range(count)
    ]


def _statements_for_one_round(engine: Engine, directory: AccountDirectory, at: datetime) -> int:
    seen: list[str] = []

    def count(*_args: Any) -> None:
        seen.append("statement")

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.begin() as connection:
            who = account_names(connection)
            update_conversation_alerts(
                connection,
                who,
                lambda account_id: directory.policy(who[account_id][1]),
                at,
                timedelta(days=3),
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_burst_of_level_changes_is_written_in_as_many_statements_as_one(
    engine: Engine,
) -> None:
    """3 or 300 customers moving up a level and as many new ones: the same statements."""
    directory = AccountDirectory(Config.empty())
    ingestor = Ingestor(engine, directory)

    def two_rounds(size: int, prefix: str, start: float) -> int:
        # Round 1: the first group reaches warning. Round 2: it moves on to breach while a
        # second group, 5 minutes younger, reaches warning.
        seen = T0 + timedelta(minutes=start + 6)
        ingestor.ingest(_customers(size, f"{prefix}a", start), seen_at=seen)
        ingestor.ingest(_customers(size, f"{prefix}b", start + 5), seen_at=seen)
        _statements_for_one_round(engine, directory, T0 + timedelta(minutes=start + 11))
        return _statements_for_one_round(engine, directory, T0 + timedelta(minutes=start + 16.5))

    small = two_rounds(3, "s", 0)
    big = two_rounds(300, "b", 20)
    assert big == small
    with engine.connect() as connection:
        by_level = dict(
            connection.execute(select(ALERTS.c.level, func.count()).group_by(ALERTS.c.level)).all()
        )
    # At minute 36.5: both early groups and the big first group in breach, the big second
    # group in warning; nothing lost in the batch.
    assert by_level == {"breach": 306, "warning": 300}
    answers = [
        Event(
            "facebook",
            f"page-{i % 7}",
            "dm",
            f"bb{i}",
            f"r{i}",
            "business",
            T0 + timedelta(minutes=37),
        )
        for i in range(300)
    ]
    ingestor.ingest(answers, seen_at=T0 + timedelta(minutes=37))
    _statements_for_one_round(engine, directory, T0 + timedelta(minutes=38))
    with engine.connect() as connection:
        resolved = connection.execute(
            select(func.count()).where(ALERTS.c.level == "resolved")
        ).scalar_one()
    assert resolved == 300


async def test_the_keep_alive_of_many_firing_alerts_goes_out_in_bounded_batches(
    engine: Engine,
) -> None:
    """1,200 firing alerts: every one re-sent, no request carries more than 500."""
    directory = AccountDirectory(Config.empty())
    Ingestor(engine, directory).ingest(_customers(1200, "c", 0), seen_at=T0)
    at = T0 + timedelta(minutes=11)
    with engine.begin() as connection:
        who = account_names(connection)
        update_conversation_alerts(
            connection, who, lambda i: directory.policy(who[i][1]), at, timedelta(days=3)
        )
        firing = firing_alerts(connection, who, at)
    sizes: list[int] = []

    async def record(request: web.Request) -> web.Response:
        sizes.append(len(await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/v2/alerts", record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        manager = AlertmanagerReceiver(str(server.make_url("")))
        async with aiohttp.ClientSession() as session:
            report = await asyncio.wait_for(manager.refresh(session, firing, at), 60)
    finally:
        await server.close()
    assert report.pushed == 1200 and report.refused == 0
    assert sum(sizes) == 1200 and max(sizes) <= 500 and len(sizes) == 3
