"""SLI outcomes, per-conversation alert levels and the alert outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wait_outcomes",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("thread_id", sa.String(255), primary_key=True),
        sa.Column("opened_at", UTCDateTime(), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("response_seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_wait_outcomes_decided", "wait_outcomes", ["decided_at"])
    op.create_table(
        "conversation_alerts",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("thread_id", sa.String(255), primary_key=True),
        sa.Column("opened_at", UTCDateTime(), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("thread_url", sa.String(1024), nullable=True),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("id", _BigId, primary_key=True),
        sa.Column("receiver", sa.String(64), nullable=False),
        sa.Column("alert_key", sa.String(600), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.UniqueConstraint("receiver", "alert_key", "level", name="uq_alert_outbox_state"),
    )
    op.create_index(
        "ix_alert_outbox_pending",
        "alert_outbox",
        ["next_attempt_at"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_pending", "alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_table("conversation_alerts")
    op.drop_index("ix_wait_outcomes_decided", "wait_outcomes")
    op.drop_table("wait_outcomes")
