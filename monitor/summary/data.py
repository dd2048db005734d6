"""The store's rows behind a weekly summary: one read per fact, no decisions.

The figures are ``monitor.store.stats`` over the ISO week (so they equal ``replywatch stats --from
<Monday> --to <next Monday>`` at the same ``as_of``); the waits of the week and the customers
waiting now are read from the stored waits of the same accounts. ``monitor.summary.compose``
decides what the summary makes of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, select

from monitor.store.accounts import AccountDirectory
from monitor.store.stats import account_stats
from monitor.store.tables import ACCOUNTS, EVENTS, WAITS
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
    this_rows = account_stats(
        connection, directory, as_of=as_of, start=start, end=end, accounts=accounts
    )
    last_rows = account_stats(
        connection, directory, as_of=as_of, start=last.start, end=last.end, accounts=accounts
    )
    channel_rows = account_stats(
        connection, directory, as_of=as_of, start=start, end=end, accounts=accounts, by="channel"
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
    w, e, a = WAITS, EVENTS, ACCOUNTS
    opening = and_(e.c.account_id == w.c.account_id, e.c.message_id == w.c.opened_by)
    rows = connection.execute(
        select(
            a.c.platform,
            a.c.name,
            w.c.channel,
            w.c.opened_at,
            w.c.closed_at,
            w.c.tier,
            w.c.rating,
            w.c.response_seconds,
            w.c.business_seconds,
            e.c.thread_url,
        )
        .join(a, a.c.id == w.c.account_id)
        .outerjoin(e, opening)
        .where(
            a.c.name.in_(list(names)),
            w.c.opened_at >= start,
            w.c.opened_at < end,
            w.c.opened_at <= as_of,
        )
    )
    return [
        StoredWait(platform, name, channel, tier, opened, closed, rating, response, business, url)
        for platform, name, channel, opened, closed, tier, rating, response, business, url in rows
    ]


def _waiting_now(connection: Connection, names: Sequence[str], as_of: datetime) -> list[LongWait]:
    if not names:
        return []
    w, e, a = WAITS, EVENTS, ACCOUNTS
    opening = and_(e.c.account_id == w.c.account_id, e.c.message_id == w.c.opened_by)
    rows = connection.execute(
        select(a.c.platform, a.c.name, w.c.channel, w.c.opened_at, w.c.rating, e.c.thread_url)
        .join(a, a.c.id == w.c.account_id)
        .outerjoin(e, opening)
        .where(
            a.c.name.in_(list(names)),
            w.c.closed_at.is_(None),
            w.c.opened_at >= as_of - WAITING_NOW_SINCE,
            w.c.opened_at <= as_of,
        )
        .order_by(w.c.opened_at)
    )
    return [
        LongWait(
            platform, name, channel, opened, (as_of - opened).total_seconds(), False, url, rating
        )
        for platform, name, channel, opened, rating, url in rows
    ]
