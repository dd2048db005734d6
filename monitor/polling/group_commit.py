"""Group commit: the results of polls that finish close together share one transaction.

With thousands of accounts, polls finish dozens of times a second. Each needs its events and
its cursor stored atomically, but not in a transaction of its own: a short window (100 ms by
default) gathers them and one transaction stores them all, so the per-transaction cost (the
thread hand-off, the statements, the commit) is paid once per window instead of once per poll.
Every poll still waits for the commit that holds its data before it reports success. Should a
shared transaction fail, each poll is retried alone, so one bad poll cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Event
from monitor.store.ingest import Ingestor

__all__ = ["GroupCommit"]

log = logging.getLogger("monitor.group_commit")


@dataclass
class _Poll:
    platform: str
    account: str
    events: Sequence[Event]
    cursor: Mapping[str, str]
    done: asyncio.Future[int]


class GroupCommit:
    """Queues poll results and stores them together."""

    def __init__(
        self,
        ingestor: Ingestor,
        write_lock: asyncio.Lock,
        clock: Callable[[], datetime],
        *,
        window: float = 0.1,
        max_polls: int = 500,
    ) -> None:
        self.ingestor = ingestor
        self.write_lock = write_lock
        self.clock = clock
        self.window = window
        self.max_polls = max_polls
        self._queue: list[_Poll] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def store(
        self, platform: str, account: str, events: Sequence[Event], cursor: Mapping[str, str]
    ) -> int:
        """Store one poll's events and cursor; returns how many events were new."""
        recent = self.ingestor.recent
        if recent is not None and recent.covers((platform, account), events, cursor, self.clock()):
            return 0  # nothing new and the cursor did not move: no transaction at all
        loop = asyncio.get_running_loop()
        poll = _Poll(platform, account, events, cursor, loop.create_future())
        self._queue.append(poll)
        if len(self._queue) >= self.max_polls:
            self._start_flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._start_flush)
        return await poll.done

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[_Poll]) -> None:
        async with self.write_lock:
            try:
                await self._store_together(batch)
            except Exception as error:
                # Broad on purpose: not handled here but handed to each waiting poll, whose
                # coordinator counts it as a ``store`` outcome (PollCoordinator isolates it).
                if len(batch) == 1:
                    _settle(batch[0], error=error)
                    return
                log.warning(
                    "storing %d polls together failed (%s); storing each alone",
                    len(batch),
                    type(error).__name__,
                )
                for poll in batch:
                    try:
                        await self._store_together([poll])
                    except Exception as alone:  # handed to that poll alone, as above
                        _settle(poll, error=alone)

    async def _store_together(self, batch: list[_Poll]) -> None:
        events = [event for poll in batch for event in poll.events]
        cursors = [(poll.platform, poll.account, poll.cursor) for poll in batch]
        result = await asyncio.to_thread(
            self.ingestor.ingest, events, cursors=cursors, seen_at=self.clock()
        )
        for poll in batch:
            _settle(poll, stored=result.stored_by_account.get((poll.platform, poll.account), 0))

    async def drain(self) -> None:
        """Store whatever is queued now (at shutdown)."""
        self._start_flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)


def _settle(poll: _Poll, *, stored: int = 0, error: BaseException | None = None) -> None:
    if poll.done.done():
        return
    if error is not None:
        poll.done.set_exception(error)
    else:
        poll.done.set_result(stored)
