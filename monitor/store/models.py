"""The stored state: accounts, every event seen, the waits derived from them, poll cursors.

Times are stored in UTC: as ``timestamptz`` on PostgreSQL and as fixed-width ISO text on
SQLite (so they sort and compare as text). The schema is changed only through the Alembic
migrations in ``monitor/store/migrations``; a test checks the two never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

__all__ = [
    "Account",
    "AlertDelivery",
    "ConversationAlert",
    "Cursor",
    "PollCount",
    "PollState",
    "StoredEvent",
    "StoredWait",
    "SummarySend",
    "UTCDateTime",
    "WaitOutcome",
    "metadata",
]

# SQLite's INTEGER PRIMARY KEY is the rowid; BIGINT would not autoincrement there.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use fixed-width text on SQLite, timestamptz elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Normalise to UTC before storing; reject naive times."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be stored; attach a time zone")
        if dialect.name == "sqlite":
            return sqlite_time(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes whatever the backend gave back."""
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: datetime) -> str:
    """The text form UTCDateTime stores on SQLite (for raw, hot-path statements)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # "YYYY-MM-DD HH:MM:SS.ffffff" without the "+00:00": fixed width, sorts as time.
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


class Account(SQLModel, table=True):
    """One monitored account, created from the config or on the fly by an import."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "name", name="uq_accounts_platform_name"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    name: str = Field(max_length=128)
    profile: str = Field(max_length=64)
    derivation: str = Field(default="", max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)


class StoredEvent(SQLModel, table=True):
    """One message, comment, mention, review or reply, unique per account and message id."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("account_id", "message_id", name="uq_events_account_message"),
        Index("ix_events_account_thread", "account_id", "thread_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    channel: str = Field(max_length=16)
    thread_id: str = Field(max_length=255)
    message_id: str = Field(max_length=255)
    author_role: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    rating: int | None = None
    text_excerpt: str | None = Field(default=None, max_length=140)
    thread_url: str | None = Field(default=None, max_length=1024)


class StoredWait(SQLModel, table=True):
    """A derived wait; rebuilt whenever an event of its thread arrives."""

    __tablename__ = "waits"
    __table_args__ = (
        Index("ix_waits_account_opened", "account_id", "opened_at"),
        Index("ix_waits_account_thread", "account_id", "thread_id"),
        # Only open waits are looked up by state; a partial index stays tiny.
        Index(
            "ix_waits_open",
            "account_id",
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    channel: str = Field(max_length=16)
    thread_id: str = Field(max_length=255)
    derivation: str = Field(max_length=128)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    opened_by: str = Field(max_length=255)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=255)
    tier: str = Field(max_length=16)
    rating: int | None = None
    response_seconds: float | None = None
    business_seconds: float | None = None


class Cursor(SQLModel, table=True):
    """Where an account's next poll resumes; saved with the events it covers."""

    __tablename__ = "cursors"

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    value: str = Field(default="{}")
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WaitOutcome(SQLModel, table=True):
    """A wait's one SLI outcome (metrics.md section 6), decided once and never revised.

    Waits are rebuilt when their thread changes; outcomes are not, so counters made from them
    only ever grow.
    """

    __tablename__ = "wait_outcomes"
    __table_args__ = (Index("ix_wait_outcomes_decided", "decided_at"),)

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    thread_id: str = Field(max_length=255, primary_key=True)
    opened_at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    channel: str = Field(max_length=16)
    tier: str = Field(max_length=16)
    outcome: str = Field(max_length=8)
    decided_at: datetime = Field(sa_type=UTCDateTime)
    # Set once, when the answer is first seen (for the response-time histogram).
    response_seconds: float | None = None


class ConversationAlert(SQLModel, table=True):
    """The alert level a waiting customer has reached (metrics.md section 7)."""

    __tablename__ = "conversation_alerts"

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    thread_id: str = Field(max_length=255, primary_key=True)
    opened_at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    channel: str = Field(max_length=16)
    level: str = Field(max_length=16)
    changed_at: datetime = Field(sa_type=UTCDateTime)
    thread_url: str | None = Field(default=None, max_length=1024)


class AlertDelivery(SQLModel, table=True):
    """One notification waiting to reach (or delivered to) one receiver: the outbox."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("receiver", "alert_key", "level", name="uq_alert_outbox_state"),
        Index(
            "ix_alert_outbox_pending",
            "next_attempt_at",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    receiver: str = Field(max_length=64)
    alert_key: str = Field(max_length=600)
    level: str = Field(max_length=16)
    payload: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class SummarySend(SQLModel, table=True):
    """One weekly summary for one recipient: sent once, retried until it is."""

    __tablename__ = "summary_sends"

    week: str = Field(max_length=8, primary_key=True)
    recipient: str = Field(max_length=300, primary_key=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class PollState(SQLModel, table=True):
    """When an account is polled next and how its polling stands, shared by all workers.

    Only the several-worker mode (``replywatch worker``) uses it. ``lease`` is the id of the
    poll job that owns the account right now: a poll stores its events only while it still
    holds the lease, so a worker that froze and lost its job cannot write after its successor.
    """

    __tablename__ = "poll_state"
    __table_args__ = (Index("ix_poll_state_next_poll", "next_poll_at"),)

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    next_poll_at: datetime = Field(sa_type=UTCDateTime)
    state: str = Field(default="starting", max_length=16)
    failures: int = 0
    lease: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_duration_seconds: float | None = None
    last_error: str | None = Field(default=None, max_length=500)
    quota_used: float | None = None
    events_stored: int = 0
    missed_items: int = 0


class PollCount(SQLModel, table=True):
    """How many polls of an account ended with each outcome, over every worker."""

    __tablename__ = "poll_counts"

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    outcome: str = Field(max_length=16, primary_key=True)
    polls: int = 0


metadata = SQLModel.metadata
