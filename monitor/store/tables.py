"""The store's table handles, for SQLAlchemy Core statements: defined here once.

SQLModel declares ``__table__`` on each model class only at runtime, so every module that
wrote Core statements used to repeat ``Model.__table__  # type: ignore``; they import these.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlmodel import SQLModel

from monitor.store.models import (
    Account,
    AlertDelivery,
    ConversationAlert,
    Cursor,
    PollCount,
    PollState,
    StoredEvent,
    StoredWait,
    SummarySend,
    WaitOutcome,
)

__all__ = [
    "ACCOUNTS",
    "ALERTS",
    "CURSORS",
    "EVENTS",
    "OUTBOX",
    "OUTCOMES",
    "POLL_COUNTS",
    "POLL_STATE",
    "SENDS",
    "WAITS",
]


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


ACCOUNTS = _table(Account)
EVENTS = _table(StoredEvent)
WAITS = _table(StoredWait)
CURSORS = _table(Cursor)
OUTCOMES = _table(WaitOutcome)
ALERTS = _table(ConversationAlert)
OUTBOX = _table(AlertDelivery)
SENDS = _table(SummarySend)
POLL_STATE = _table(PollState)
POLL_COUNTS = _table(PollCount)
