"""What cluster workers leave in the shared poll tables, written directly for `serve` to read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert

from monitor.store.accounts import account_names
from monitor.store.tables import POLL_COUNTS, POLL_STATE


def record_cluster_polls(
    engine: Engine,
    at: datetime,
    *,
    state: str,
    failures: int,
    duration: float,
    quota: float,
    stored: int,
    missed: int,
    successes: int,
) -> None:
    """Give every stored account a poll_state row and a count of successful polls."""
    with engine.begin() as connection:
        for ident in account_names(connection):
            connection.execute(
                insert(POLL_STATE).values(
                    account_id=ident,
                    next_poll_at=at,
                    state=state,
                    failures=failures,
                    last_success_at=at,
                    last_duration_seconds=duration,
                    quota_used=quota,
                    events_stored=stored,
                    missed_items=missed,
                )
            )
            connection.execute(
                insert(POLL_COUNTS).values(account_id=ident, outcome="success", polls=successes)
            )
