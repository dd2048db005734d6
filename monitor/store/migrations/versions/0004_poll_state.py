"""Shared poll state for several workers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_state",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("next_poll_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lease", sa.BigInteger(), nullable=True),
        sa.Column("last_poll_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_duration_seconds", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("quota_used", sa.Float(), nullable=True),
        sa.Column("events_stored", sa.Integer(), nullable=False),
        sa.Column("missed_items", sa.Integer(), nullable=False),
    )
    op.create_index("ix_poll_state_next_poll", "poll_state", ["next_poll_at"])
    op.create_table(
        "poll_counts",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("polls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("poll_counts")
    op.drop_index("ix_poll_state_next_poll", "poll_state")
    op.drop_table("poll_state")
