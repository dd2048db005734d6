"""The shared poll state: due accounts are handed out once, and a lost lease stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from connectors.base import Event
from monitor.config.loading import Config
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.polling.cluster import poll_state
from monitor.polling.cluster.queue import ensure_queue_schema, tidy_queue_tables
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS

pytestmark = pytest.mark.postgres

HOLD = timedelta(seconds=60)


@pytest.fixture
def store(postgres_url: str) -> Iterator[tuple[Engine, dict[str, int], Ingestor]]:
    engine = open_engine(postgres_url)
    ensure_queue_schema(engine)
    accounts = AccountDirectory(Config.empty())
    with engine.begin() as connection:
        ids = accounts.ensure(connection, {("facebook", f"a{i}") for i in range(3)})
    yield engine, {name: ident for (_p, name), ident in ids.items()}, Ingestor(engine, accounts)
    engine.dispose()


def _record(outcome: PollOutcome, next_poll_at: datetime | None, stored: int = 0) -> PollRecord:
    return PollRecord(
        platform="facebook",
        account="a0",
        outcome=outcome,
        started_at=datetime.now(UTC),
        duration_s=0.25,
        items=stored,
        stored=stored,
        missed=0,
        quota_used=None,
        next_poll_at=next_poll_at,
        state=AccountState.OK if outcome is PollOutcome.SUCCESS else AccountState.FAILING,
    )


def _db_now(engine: Engine) -> datetime:
    with engine.connect() as connection:
        value: datetime = connection.execute(select(func.now())).scalar_one()
    return value


def test_a_due_account_is_handed_out_once_until_its_hold_ends(store) -> None:
    """take_due returns each due account once; the hold keeps the next tick off it."""
    engine, ids, _ingestor = store
    past = _db_now(engine) - timedelta(seconds=1)
    poll_state.enroll(engine, list(ids.values()), past, spread=0)
    poll_state.enroll(engine, list(ids.values()), past + HOLD, spread=0)  # keeps the first rows
    due, _at = poll_state.take_due(engine, [ids["a0"], ids["a1"]], HOLD)
    assert due == sorted([ids["a0"], ids["a1"]])  # a2 is not among the accounts asked about
    again, _at = poll_state.take_due(engine, list(ids.values()), HOLD)
    assert again == [ids["a2"]]


def test_an_account_whose_job_still_waits_is_not_taken_again(store) -> None:
    """Workers behind: a due account with a queued job is left to that job, a running one not."""
    engine, ids, _ingestor = store
    poll_state.enroll(engine, list(ids.values()), _db_now(engine) - timedelta(seconds=1), spread=0)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args) "
                "VALUES ('replywatch', 'replywatch.poll', :lock, :lock, '{}')"
            ),
            {"lock": poll_state.poll_lock(ids["a0"])},
        )
    due, _at = poll_state.take_due(engine, list(ids.values()), timedelta(0))
    assert due == sorted([ids["a1"], ids["a2"]])
    with engine.begin() as connection:  # the job starts: its hold may run out while it runs
        connection.execute(text("UPDATE procrastinate_jobs SET status = 'doing'"))
    due, _at = poll_state.take_due(engine, list(ids.values()), timedelta(0))
    assert due == sorted(ids.values())


def test_a_tick_passes_over_rows_a_frozen_worker_holds_locked(store, postgres_url: str) -> None:
    """A worker stopped inside its tick's transaction keeps its rows locked: the others go on.

    Before, the next tick waited for those locks until the server ended the frozen session,
    and no worker started a poll meanwhile.
    """
    engine, ids, _ingestor = store
    poll_state.enroll(engine, list(ids.values()), _db_now(engine) - timedelta(seconds=1), spread=0)
    # Waiting for a lock fails at once instead of hanging the test.
    impatient = create_engine(postgres_url, connect_args={"options": "-c lock_timeout=2000"})
    try:
        with engine.connect() as frozen:
            frozen.execute(
                text(
                    "UPDATE poll_state SET next_poll_at = now() + interval '1 hour' "
                    "WHERE account_id = :a"
                ),
                {"a": ids["a0"]},
            )  # not committed: the worker stopped here
            due, _at = poll_state.take_due(impatient, list(ids.values()), HOLD)
            assert due == sorted([ids["a1"], ids["a2"]])
            frozen.rollback()  # the server ended the frozen session
        due, _at = poll_state.take_due(impatient, list(ids.values()), HOLD)
        assert due == [ids["a0"]]
    finally:
        impatient.dispose()


def test_a_job_deferred_while_a_poll_ran_has_nothing_to_do(store) -> None:
    """A second job queued behind a running poll finds the account polled and skips."""
    engine, ids, _ingestor = store
    account = ids["a0"]
    poll_state.enroll(engine, [account], _db_now(engine) - timedelta(seconds=1), spread=0)
    _due, first_at = poll_state.take_due(engine, [account], HOLD)
    claimed = poll_state.claim(engine, account, 1, first_at, HOLD)
    assert claimed is not None
    second_at = _db_now(engine)  # the hold ran out while job 1 polled: job 2 is deferred
    given_back = poll_state.finish(
        engine, account, 1, _record(PollOutcome.SUCCESS, datetime.now(UTC)), failures=0, error=None
    )
    # Both ends of the poll by the database's clock, in order.
    assert given_back is not None and first_at <= claimed.at < given_back
    assert poll_state.claim(engine, account, 2, second_at, HOLD) is None


def test_a_lost_lease_stores_nothing_and_records_nothing(store) -> None:
    """The stalled job wakes after its successor took the account: its write is refused."""
    engine, ids, ingestor = store
    account = ids["a0"]
    poll_state.enroll(engine, [account], _db_now(engine) - timedelta(seconds=1), spread=0)
    _due, at = poll_state.take_due(engine, [account], HOLD)
    stalled = poll_state.claim(engine, account, 7, at, HOLD)
    assert stalled is not None and stalled.state is AccountState.STARTING
    successor = poll_state.claim(engine, account, 8, at, HOLD)  # job 7 was released
    assert successor is not None
    event = Event(
        platform="facebook",
        account="a0",
        channel="dm",
        thread_id="t1",
        message_id="m1",
        author_role="customer",
        created_at=datetime.now(UTC) - timedelta(minutes=3),
    )

    def guard_for(job: int):
        return lambda connection: poll_state.check_lease(connection, account, job)

    with pytest.raises(poll_state.LeaseLost):
        ingestor.ingest([event], cursor=("facebook", "a0", {"since": "x"}), guard=guard_for(7))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(EVENTS)).scalar_one() == 0
    late = _record(PollOutcome.SUCCESS, datetime.now(UTC), stored=1)
    assert not poll_state.finish(engine, account, 7, late, failures=0, error=None)
    stored = ingestor.ingest([event], cursor=("facebook", "a0", {"since": "y"}), guard=guard_for(8))
    assert stored.stored == 1
    failed = _record(PollOutcome.CONNECTION, datetime.now(UTC) + timedelta(seconds=30))
    assert poll_state.finish(engine, account, 8, failed, failures=1, error="connection refused")
    with engine.connect() as connection:
        row = connection.execute(
            select(poll_state.POLL_STATE).where(poll_state.POLL_STATE.c.account_id == account)
        ).one()
        counts = dict(
            connection.execute(
                select(poll_state.POLL_COUNTS.c.outcome, poll_state.POLL_COUNTS.c.polls)
            )
            .tuples()
            .all()
        )
    assert row.lease is None and row.failures == 1 and row.state == "failing"
    assert row.last_error == "connection refused" and row.last_success_at is None
    assert counts == {"connection": 1}  # job 7's late success was not counted


def test_the_refresh_keeps_the_queue_tables_statistics_fresh(store) -> None:
    """After tidying, the planner knows how many jobs wait (stale counts made fetches slow)."""
    engine, ids, _ingestor = store
    poll_state.enroll(engine, list(ids.values()), _db_now(engine), spread=0)
    with engine.begin() as connection:
        for ident in ids.values():
            connection.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) "
                    "VALUES ('replywatch', 'replywatch.poll', :lock, '{}')"
                ),
                {"lock": poll_state.poll_lock(ident)},
            )

    def planner_rows() -> dict[str, float]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class "
                    "WHERE relname IN ('procrastinate_jobs', 'poll_state')"
                )
            )
            return {name: float(count) for name, count in rows}

    assert planner_rows() == {"procrastinate_jobs": -1.0, "poll_state": -1.0}  # never analyzed
    tidy_queue_tables(engine)
    assert planner_rows() == {"procrastinate_jobs": 3.0, "poll_state": 3.0}
