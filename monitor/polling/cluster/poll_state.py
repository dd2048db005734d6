"""The shared ``poll_state`` table: when each account is due, and which poll job owns it.

Times that order polls against each other come from the database's clock (``now()``), so
workers on machines whose clocks disagree still agree on what happened first. A poll job
takes the account's *lease* (its job id) when it starts; the events it fetched are stored,
and its outcome recorded, only while it still holds it. That is what keeps a worker that
froze, lost its job to the stall check and woke up later from writing after its successor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    TextClause,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)

from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.store.dialect_insert import insert_for
from monitor.store.tables import POLL_COUNTS, POLL_STATE

__all__ = [
    "POLL_COUNTS",
    "POLL_STATE",
    "Claim",
    "LeaseLost",
    "check_lease",
    "claim",
    "enroll",
    "finish",
    "poll_lock",
    "take_due",
]


_LOCK_PREFIX = "poll:"
# A token that was refused is tried again this often (each worker reads its own secrets).
AUTH_RETRY = timedelta(minutes=5)


class LeaseLost(Exception):
    """Another poll job owns the account now; this poll must store nothing."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a poll job learns when it takes an account: the polling state so far."""

    state: AccountState
    failures: int
    last_success: datetime | None
    at: datetime  # when the lease was taken, by the database's clock


def enroll(
    engine: Engine, account_ids: Sequence[int], first_poll_at: datetime, spread: float
) -> None:
    """Give every polled account a row; first polls are spread over ``spread`` seconds."""
    if not account_ids:
        return
    step = spread / len(account_ids)
    rows = [
        {
            "account_id": ident,
            "next_poll_at": first_poll_at + timedelta(seconds=step * index),
            "state": AccountState.STARTING.value,
            "failures": 0,
            "events_stored": 0,
            "missed_items": 0,
        }
        for index, ident in enumerate(account_ids)
    ]
    with engine.begin() as connection:
        connection.execute(insert_for(connection, POLL_STATE).on_conflict_do_nothing(), rows)


def poll_lock(account_id: int) -> str:
    """The procrastinate lock (and queueing lock) of an account's poll jobs."""
    return f"{_LOCK_PREFIX}{account_id}"


def take_due(
    engine: Engine, account_ids: Sequence[int], hold: timedelta
) -> tuple[list[int], datetime]:
    """The due accounts among ``account_ids``, held for ``hold`` so no other tick takes them.

    An account whose poll job still waits in the queue is left alone: when the workers are
    behind, holds run out before the jobs start, and deferring again would only collide
    with the waiting job (one queued job per account), costing a round trip per account.
    Rows another transaction holds locked are passed over until a later tick: waiting for
    them would stop every worker's polls for as long as a worker frozen inside its tick (or
    its claim) keeps its transaction open. Returns the accounts with the database's time of
    the take, which their jobs carry.
    """
    s = POLL_STATE.c
    with engine.begin() as connection:
        now = _db_now(connection)
        due = (
            select(s.account_id)
            .where(s.next_poll_at <= now, _among(account_ids), _no_job_waiting())
            .with_for_update(skip_locked=True)
        )
        rows = connection.execute(
            update(POLL_STATE)
            .where(s.account_id.in_(due.scalar_subquery()))
            .values(next_poll_at=now + hold)
            .returning(s.account_id)
        )
        taken = sorted(int(row[0]) for row in rows)
    return taken, now


def claim(
    engine: Engine, account_id: int, job_id: int, deferred_at: datetime, hold: timedelta
) -> Claim | None:
    """Take the account's lease for ``job_id``; None when a poll finished after the defer.

    A job deferred while an earlier poll was still running waits for that poll (the
    per-account lock) and then has nothing to do.
    """
    s = POLL_STATE.c
    with engine.begin() as connection:
        row = connection.execute(
            update(POLL_STATE)
            .where(
                s.account_id == account_id,
                (s.last_poll_at.is_(None)) | (s.last_poll_at < deferred_at),
            )
            .values(lease=job_id, next_poll_at=func.now() + hold)
            .returning(s.state, s.failures, s.last_success_at, func.clock_timestamp())
        ).first()
    if row is None:
        return None
    return Claim(AccountState(row[0]), int(row[1]), row[2], row[3])


def check_lease(connection: Connection, account_id: int, job_id: int) -> None:
    """Raise LeaseLost unless ``job_id`` owns the account; locks the row until commit."""
    owner = connection.execute(
        select(POLL_STATE.c.lease).where(POLL_STATE.c.account_id == account_id).with_for_update()
    ).scalar_one_or_none()
    if owner != job_id:
        raise LeaseLost(f"poll job {job_id} no longer owns account {account_id}")


def finish(
    engine: Engine,
    account_id: int,
    job_id: int,
    record: PollRecord,
    *,
    failures: int,
    error: str | None,
) -> datetime | None:
    """Record a poll's outcome and when to poll next; None when the lease was lost.

    Returns when the account was given back, by the database's clock: read by a worker after
    the commit, its own clock would stretch the poll over a freeze that came in between.
    """
    s = POLL_STATE.c
    success = record.outcome is PollOutcome.SUCCESS
    with engine.begin() as connection:
        now = func.now()
        next_poll_at = record.next_poll_at or now + AUTH_RETRY
        given_back = connection.execute(
            update(POLL_STATE)
            .where(s.account_id == account_id, s.lease == job_id)
            .values(
                next_poll_at=next_poll_at,
                state=record.state.value,
                failures=failures,
                lease=None,
                last_poll_at=now,
                last_success_at=now if success else s.last_success_at,
                last_duration_seconds=record.duration_s,
                last_error=None if error is None else error[:500],
                # Only when the platform reported usage: unknown keeps the last figure.
                quota_used=s.quota_used if record.quota_used is None else record.quota_used,
                events_stored=s.events_stored + record.stored,
                missed_items=s.missed_items + record.missed,
            )
            .returning(func.clock_timestamp())
        ).scalar_one_or_none()
        if given_back is None:
            return None
        insert = insert_for(connection, POLL_COUNTS).values(
            account_id=account_id, outcome=record.outcome.value, polls=1
        )
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=["account_id", "outcome"],
                set_={"polls": POLL_COUNTS.c.polls + 1},
            )
        )
    at: datetime = given_back
    return at


def _among(account_ids: Sequence[int]) -> ColumnElement[bool]:
    # One array parameter, not ten thousand: the tick runs every few seconds.
    ids = bindparam("ids", list(account_ids), type_=ARRAY(Integer))
    among: ColumnElement[bool] = POLL_STATE.c.account_id == any_(ids)
    return among


def _no_job_waiting() -> TextClause:
    # procrastinate's unique index on waiting jobs' queueing locks answers this per account.
    return text(
        "NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS job WHERE job.status = 'todo' "
        "AND job.queueing_lock = :prefix || poll_state.account_id)"
    ).bindparams(prefix=_LOCK_PREFIX)


def _db_now(connection: Connection) -> datetime:
    value: datetime = connection.execute(select(func.now())).scalar_one()
    return value
