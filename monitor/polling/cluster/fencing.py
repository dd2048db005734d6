"""Ending the database sessions a stalled worker left open inside a transaction.

Every worker session asks the server to end it after ``--stalled-after`` idle inside a
transaction (``idle_in_transaction_session_timeout``). The server does not, though, while the
session waits in the middle of a pipeline: psycopg's ``executemany`` sends its rows without a
Sync, and a worker frozen between two of them kept its transaction, and the row lock on its
account's poll state, for as long as it stayed frozen (found by the frozen-worker test: the
account was not taken over in 60 s). The tick ends such sessions itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

__all__ = ["APPLICATION_NAME", "end_stalled_sessions"]

log = logging.getLogger("monitor.cluster")

# Every worker's store sessions carry this name, so the tick ends only theirs.
APPLICATION_NAME = "replywatch worker"

_REPORTED: set[str] = set()  # errors already logged
_STALLED = text(
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name "
    "AND state IN ('idle in transaction', 'idle in transaction (aborted)') "
    "AND clock_timestamp() - state_change > :older_than AND pid <> pg_backend_pid()"
)


def end_stalled_sessions(engine: Engine, older_than: timedelta) -> int:
    """End the worker sessions idle inside a transaction for longer than ``older_than``."""
    try:
        with engine.connect() as connection:
            ended = connection.execute(
                _STALLED, {"name": APPLICATION_NAME, "older_than": older_than}
            ).scalar_one()
    except DBAPIError as err:
        # Another role's sessions need pg_signal_backend: the server's own timeout remains.
        # Said once, not at every tick.
        reason = type(err.orig).__name__
        if reason not in _REPORTED:
            _REPORTED.add(reason)
            log.warning("could not end stalled workers' sessions: %s", reason)
        return 0
    count = int(ended or 0)
    if count:
        log.warning(
            "ended %d database session(s) a stalled worker left inside a transaction for over "
            "%.0f s",
            count,
            older_than.total_seconds(),
        )
    return count
