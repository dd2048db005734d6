"""The store's rows behind a weekly summary: one read per fact, no decisions.

The figures are ``monitor.store.stats`` over the ISO week (so they equal ``replywatch stats --from
<Monday> --to <next Monday>`` at the same ``as_of``); the waits of the week and the customers
waiting now are read from the stored waits of the same accounts. ``monitor.summary.compose``
decides what the summary makes of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from monitor.store.accounts import AccountDirectory
from monitor.store.id_lists import raw_any_of
from monitor.store.rawsql import RawSql
from monitor.store.stats import StatsRequest, account_stats_for
from monitor.summary.compose import (
    IsoWeek,
    LongWait,
    StoredWait,
    WeekRecords,
    WeekSummary,
    compose_week,
)

__all__ = ["IsoWeek", "WeekSummary", "read_week", "summarise_week"]

# Only customers who wrote in the last month count as "still waiting now"; older open waits
# are history nobody will answer any more.
WAITING_NOW_SINCE = timedelta(days=30)

# Waits with their account's names and the link of the message that opened each.
_WAITS_WITH_LINKS = (
    "FROM waits w JOIN accounts a ON a.id = w.account_id "
    "LEFT OUTER JOIN events e ON e.account_id = w.account_id AND e.message_id = w.opened_by"
)


def summarise_week(
    connection: Connection,
    directory: AccountDirectory,
    week: IsoWeek,
    as_of: datetime,
    accounts: Sequence[str] = (),
) -> WeekSummary:
    """Compute the summary of ``week`` for the given accounts (all when empty)."""
    records = read_week(connection, directory, week, as_of, accounts)
    return compose_week(records, directory.policy)


def read_week(
    connection: Connection,
    directory: AccountDirectory,
    week: IsoWeek,
    as_of: datetime,
    accounts: Sequence[str] = (),
) -> WeekRecords:
    """Everything the summary of ``week`` is made from, for the given accounts (all when empty)."""
    start, end = week.start, week.end
    last = week.previous()
    this_rows, last_rows, channel_rows = account_stats_for(
        connection,
        directory,
        [
            StatsRequest(start, end),
            StatsRequest(last.start, last.end),
            StatsRequest(start, end, "channel"),
        ],
        as_of=as_of,
        accounts=accounts,
    )
    names = [row.account for row in this_rows]
    return WeekRecords(
        week=week,
        as_of=as_of,
        this_week=this_rows,
        last_week=last_rows,
        channels=channel_rows,
        waits=_week_waits(connection, names, start, end, as_of),
        waiting_now=_waiting_now(connection, names, as_of),
    )


def _week_waits(
    connection: Connection,
    names: Sequence[str],
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> list[StoredWait]:
    if not names:
        return []
    # On the driver's cursor (monitor.store.rawsql): the busiest week of a large store holds
    # hundreds of thousands of waits, and SQLAlchemy's per-value conversion cost seconds.
    sql = RawSql(connection)
    mark = sql.mark
    named, params = raw_any_of(sql, "a.name", names)
    rows = sql.fetch(
        "SELECT a.platform, a.name, w.channel, w.opened_at, w.closed_at, w.tier, w.rating, "
        f"w.response_seconds, w.business_seconds, e.thread_url {_WAITS_WITH_LINKS} "
        f"WHERE {named} "
        f"AND w.opened_at >= {mark} AND w.opened_at < {mark} AND w.opened_at <= {mark}",
        (*params, sql.time(start), sql.time(end), sql.time(as_of)),
    )
    read = sql.read_time
    return [
        StoredWait(
            platform,
            name,
            channel,
            tier,
            read(opened),
            None if closed is None else read(closed),
            rating,
            response,
            business,
            url,
        )
        for platform, name, channel, opened, closed, tier, rating, response, business, url in rows
    ]


def _waiting_now(connection: Connection, names: Sequence[str], as_of: datetime) -> list[LongWait]:
    if not names:
        return []
    # On the driver's cursor, as _week_waits: tens of thousands of open waits in a large store.
    sql = RawSql(connection)
    mark = sql.mark
    named, params = raw_any_of(sql, "a.name", names)
    rows = sql.fetch(
        f"SELECT a.platform, a.name, w.channel, w.opened_at, w.rating, e.thread_url "
        f"{_WAITS_WITH_LINKS} WHERE {named} AND w.closed_at IS NULL "
        f"AND w.opened_at >= {mark} AND w.opened_at <= {mark} ORDER BY w.opened_at",
        (*params, sql.time(as_of - WAITING_NOW_SINCE), sql.time(as_of)),
    )
    read = sql.read_time
    waiting = []
    for platform, name, channel, opened_text, rating, url in rows:
        opened = read(opened_text)
        waited = (as_of - opened).total_seconds()
        waiting.append(LongWait(platform, name, channel, opened, waited, False, url, rating))
    return waiting
