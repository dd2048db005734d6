"""Accounts, events, waits and cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("derivation", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("platform", "name", name="uq_accounts_platform_name"),
    )
    op.create_table(
        "events",
        sa.Column("id", _BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("author_role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("text_excerpt", sa.String(140), nullable=True),
        sa.Column("thread_url", sa.String(1024), nullable=True),
        sa.UniqueConstraint("account_id", "message_id", name="uq_events_account_message"),
    )
    op.create_index("ix_events_account_thread", "events", ["account_id", "thread_id"])
    op.create_table(
        "waits",
        sa.Column("id", _BigId, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("derivation", sa.String(128), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(255), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(255), nullable=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("response_seconds", sa.Float(), nullable=True),
        sa.Column("business_seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_waits_account_opened", "waits", ["account_id", "opened_at"])
    op.create_index("ix_waits_account_thread", "waits", ["account_id", "thread_id"])
    op.create_index(
        "ix_waits_open",
        "waits",
        ["account_id"],
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "cursors",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cursors")
    op.drop_index("ix_waits_open", "waits")
    op.drop_index("ix_waits_account_thread", "waits")
    op.drop_index("ix_waits_account_opened", "waits")
    op.drop_table("waits")
    op.drop_index("ix_events_account_thread", "events")
    op.drop_table("events")
    op.drop_table("accounts")
