"""Alembic migrations of the replywatch store."""
