"""Polling in one process: APScheduler runs the polls, group commit stores them.

One APScheduler interval job per polled account (in-memory job store, rebuilt from the config
at start): APScheduler keeps the rhythm, with jitter, and the account's coordinator moves the
next run after a failure or a rate limit, or pauses the job when its token is refused. This
process is the store's single writer, so each account's cursor is read once and then kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from connectors.base import FetchResult
from monitor.polling.group_commit import GroupCommit
from monitor.store.cursors import read_cursor
from monitor.store.ingest import Ingestor

__all__ = ["LocalScheduler", "LocalWriter"]


class LocalScheduler:
    """The coordinators' scheduler in one process: an APScheduler job per account."""

    def __init__(
        self, scheduler: AsyncIOScheduler, poll: Callable[[str], Awaitable[object]]
    ) -> None:
        self.scheduler = scheduler
        self._poll = poll

    def add(
        self, account: str, platform: str, interval: timedelta, jitter: float, at: datetime
    ) -> None:
        """Poll the account every ``interval``, the first time at ``at``."""
        seconds = interval.total_seconds()
        self.scheduler.add_job(
            self._poll,
            trigger=IntervalTrigger(
                seconds=seconds, start_date=at, timezone=UTC, jitter=seconds * jitter or None
            ),
            args=[account],
            id=account,
            name=f"poll {platform}/{account}",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    def retry_at(self, account: str, when: datetime) -> None:
        """Move the account's next poll (the interval goes on from there)."""
        if self.scheduler.running:
            self.scheduler.modify_job(account, next_run_time=when)

    def pause(self, account: str) -> None:
        """Stop the account's job until it is resumed."""
        if self.scheduler.running:
            self.scheduler.pause_job(account)

    def resume(self, account: str, when: datetime) -> None:
        """Run a paused account's job again, first at ``when``."""
        self.scheduler.resume_job(account)
        self.scheduler.modify_job(account, next_run_time=when)


class LocalWriter:
    """Stores polls for the store's single writer: group commit, cursors kept in memory."""

    def __init__(
        self,
        engine: Engine,
        ingestor: Ingestor,
        write_lock: asyncio.Lock,
        clock: Callable[[], datetime],
        account_ids: Mapping[str, int],
        on_stored: Callable[[str, str, Mapping[str, str]], None] = lambda *_: None,
    ) -> None:
        self.engine = engine
        self.account_ids = account_ids
        # Called with each stored poll's cursor (the last-update metric reads it).
        self.on_stored = on_stored
        self._writes = GroupCommit(ingestor, write_lock, clock)
        self._cursors: dict[str, Mapping[str, str]] = {}

    async def load_cursor(self, account: str) -> Mapping[str, str]:
        """The account's cursor: read from the store once, then the one this process wrote."""
        if account in self._cursors:
            return self._cursors[account]
        account_id = self.account_ids.get(account)
        if account_id is None:
            return {}
        cursor = await asyncio.to_thread(read_cursor, self.engine, account_id)
        self._cursors[account] = cursor
        return cursor

    async def store(
        self, platform: str, account: str, result: FetchResult, cursor: Mapping[str, str]
    ) -> int:
        """Store the poll in the next group commit; how many events were new."""
        stored = await self._writes.store(platform, account, result.events, cursor)
        self._cursors[account] = dict(cursor)
        self.on_stored(platform, account, cursor)
        return stored

    async def drain(self) -> None:
        """Wait for the group commits in flight."""
        await self._writes.drain()
