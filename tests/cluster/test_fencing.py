"""A stalled worker's session left inside a transaction is ended, and only such a session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from monitor.config.loading import Config
from monitor.polling.cluster import poll_state
from monitor.polling.cluster.fencing import APPLICATION_NAME, end_stalled_sessions
from monitor.polling.cluster.queue import ensure_queue_schema
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine

pytestmark = pytest.mark.postgres

HOLD = timedelta(seconds=60)
# What a poll's store transaction holds while it writes (poll_state.check_lease).
_LOCK_ROW = text("SELECT lease FROM poll_state WHERE account_id = :account FOR UPDATE")


@pytest.fixture
def engines(postgres_url: str) -> Iterator[tuple[Engine, Engine, int]]:
    """A worker's engine, an engine of something else, and one due account."""
    worker = open_engine(postgres_url, application_name=APPLICATION_NAME)
    other = open_engine(postgres_url, migrate=False, application_name="replywatch test")
    ensure_queue_schema(worker)
    with worker.begin() as connection:
        ids = AccountDirectory(Config.empty()).ensure(connection, {("facebook", "a0")})
        now = connection.execute(text("SELECT now()")).scalar_one()
    (account,) = ids.values()
    poll_state.enroll(worker, [account], now - timedelta(seconds=1), spread=0)
    yield worker, other, account
    worker.dispose()
    other.dispose()


def test_a_frozen_worker_s_transaction_is_ended_and_its_account_taken(engines) -> None:
    """The worker stopped inside its poll's transaction, holding the account's row lock."""
    worker, other, account = engines
    with worker.connect() as frozen, other.connect() as bystander:
        frozen.execute(_LOCK_ROW, {"account": account})
        bystander.execute(text("SELECT 1"))  # inside a transaction too, but not a worker's
        assert poll_state.take_due(worker, [account], HOLD)[0] == []  # passed over while locked
        # Any age: both sessions are idle inside a transaction by now.
        assert end_stalled_sessions(worker, timedelta(0)) == 1
        with pytest.raises(OperationalError):
            frozen.execute(text("SELECT 1"))
        assert bystander.execute(text("SELECT 1")).scalar_one() == 1
        bystander.rollback()
    assert poll_state.take_due(worker, [account], HOLD)[0] == [account]


def test_a_worker_s_session_is_left_alone_until_it_has_been_idle_long_enough(engines) -> None:
    """A live worker between two statements of its transaction is not ended."""
    worker, _other, account = engines
    with worker.connect() as busy:
        busy.execute(_LOCK_ROW, {"account": account})
        assert end_stalled_sessions(worker, timedelta(hours=1)) == 0
        assert busy.execute(text("SELECT 1")).scalar_one() == 1
