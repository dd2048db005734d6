"""The alert outbox: every notification is stored before it is sent, and sent until it lands.

A change is written in the same transaction that records the conversation's new level, once
per receiver that wants that level (a unique key makes a second write of the same state a
no-op). Delivery reads what is due, sends it, and marks it delivered, or schedules a retry
with exponential backoff. Per receiver and conversation, changes go out in order: a later
change waits while an earlier one is failing, so "resolved" never overtakes "breach".
Whatever one send raises is that delivery's failure alone: the round goes on, and what it
delivered is recorded even when the round is cut short.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import Connection, Engine, exists, select, update

from monitor.core.escaping import one_line
from monitor.notify.conversation_alerts import AlertChange
from monitor.notify.receivers import AlertReceiver, DeliveryError
from monitor.store.dialect_insert import insert_for
from monitor.store.tables import OUTBOX

__all__ = ["OUTBOX", "DeliveryReport", "Outbox", "enqueue"]

log = logging.getLogger("monitor.alerts")
_FIRST_RETRY = timedelta(seconds=15)


def enqueue(
    connection: Connection,
    changes: Sequence[AlertChange],
    receivers: Sequence[AlertReceiver],
    now: datetime,
) -> int:
    """Store one delivery per change and interested receiver; returns how many were new."""
    rows = [
        {
            "receiver": receiver.name,
            "alert_key": change.key,
            "level": change.level,
            "payload": json.dumps(change.to_json()),
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for change in changes
        for receiver in receivers
        if change.level in receiver.levels
    ]
    if not rows:
        return 0
    result = connection.execute(insert_for(connection, OUTBOX).on_conflict_do_nothing(), rows)
    return max(0, int(result.rowcount))


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery round did.

    ``crashed`` counts the failures (included in ``failed``) where a receiver raised
    something other than DeliveryError: a bug to report, not an unreachable receiver.
    ``refused`` counts re-sent firing alerts Alertmanager refused (the others still went).
    """

    delivered: int
    failed: int
    pending: int
    crashed: int = 0
    # Firing alerts Alertmanager refused for their content in the keep-alive re-send.
    refused: int = 0


@dataclass
class _Due:
    ident: int
    receiver: str
    change: AlertChange
    attempts: int


class Outbox:
    """Sends due deliveries through the receivers and records the result."""

    def __init__(
        self,
        engine: Engine,
        receivers: Sequence[AlertReceiver],
        clock: Callable[[], datetime],
        retry_max: timedelta = timedelta(minutes=15),
        batch: int = 500,
    ) -> None:
        self.engine = engine
        self.receivers = {receiver.name: receiver for receiver in receivers}
        self.clock = clock
        self.retry_max = retry_max
        self.batch = batch

    async def deliver_due(
        self, session: aiohttp.ClientSession, write_lock: asyncio.Lock | None = None
    ) -> DeliveryReport:
        """Send everything due now; failures are rescheduled, never dropped."""
        now = self.clock()
        due = await asyncio.to_thread(self._due, now)
        blocked: set[tuple[str, str]] = set()
        done: list[int] = []
        failed: list[tuple[_Due, str]] = []
        crashed = 0
        try:
            for item in due:
                order_key = (item.receiver, item.change.key)
                if order_key in blocked:
                    continue
                receiver = self.receivers.get(item.receiver)
                if receiver is None:
                    # Removed from the config: keep the row (it is visible), do not send.
                    continue
                try:
                    await receiver.send(session, item.change)
                except DeliveryError as err:
                    error = str(err)
                except Exception as err:
                    # Broad on purpose: whatever one send raises (a receiver bug, an input it
                    # did not expect) must fail that delivery only. Escaping the loop would
                    # skip the recording below, so everything already sent in this round
                    # would be sent again next round, and every later alert would queue
                    # behind it for ever. Only the type is kept: messages can hold URLs.
                    error = f"{item.receiver} failed unexpectedly: {type(err).__name__}"
                    crashed += 1
                else:
                    done.append(item.ident)
                    continue
                blocked.add(order_key)
                failed.append((item, error))
        finally:
            # Also when the round is cancelled (shutdown): what went out is never re-sent.
            if done or failed:
                await self._save(done, failed, now, write_lock)
        for item, error in failed:
            log.warning(
                "alert for %s not delivered to %s (attempt %d): %s",
                one_line(item.change.account, 200),
                item.receiver,
                item.attempts + 1,
                error,
                extra={
                    "event": "alert_delivery_failed",
                    "receiver": item.receiver,
                    "account": one_line(item.change.account, 200),
                    "attempt": item.attempts + 1,
                },
            )
        pending = await asyncio.to_thread(self.pending)
        return DeliveryReport(len(done), len(failed), pending, crashed)

    async def _save(
        self,
        done: list[int],
        failed: list[tuple[_Due, str]],
        now: datetime,
        write_lock: asyncio.Lock | None,
    ) -> None:
        if write_lock is None:
            await asyncio.to_thread(self._record, done, failed, now)
        else:
            async with write_lock:
                await asyncio.to_thread(self._record, done, failed, now)

    def pending(self) -> int:
        """Deliveries not yet made (due or waiting for a retry)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(OUTBOX.c.id).where(OUTBOX.c.delivered_at.is_(None)))
            return len(rows.all())

    def _due(self, now: datetime) -> list[_Due]:
        o, earlier = OUTBOX, OUTBOX.alias("earlier")
        # A change whose predecessor is still waiting for its retry must wait too.
        held_back = exists().where(
            earlier.c.receiver == o.c.receiver,
            earlier.c.alert_key == o.c.alert_key,
            earlier.c.id < o.c.id,
            earlier.c.delivered_at.is_(None),
            earlier.c.next_attempt_at > now,
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(o.c.id, o.c.receiver, o.c.payload, o.c.attempts)
                .where(o.c.delivered_at.is_(None), o.c.next_attempt_at <= now, ~held_back)
                .order_by(o.c.id)
                .limit(self.batch)
            ).all()
        return [
            _Due(int(ident), receiver, AlertChange.from_json(json.loads(payload)), int(attempts))
            for ident, receiver, payload, attempts in rows
        ]

    def _record(self, done: list[int], failed: list[tuple[_Due, str]], now: datetime) -> None:
        o = OUTBOX
        with self.engine.begin() as connection:
            if done:
                connection.execute(update(o).where(o.c.id.in_(done)).values(delivered_at=now))
            for item, error in failed:
                connection.execute(
                    update(o)
                    .where(o.c.id == item.ident)
                    .values(
                        attempts=item.attempts + 1,
                        next_attempt_at=now + self._backoff(item.attempts + 1),
                        last_error=error[:500],
                    )
                )

    def _backoff(self, attempts: int) -> timedelta:
        growth: int = 2 ** min(attempts - 1, 20)
        return min(self.retry_max, _FIRST_RETRY * growth)
