"""Each account's polling cursor as the store keeps it: a JSON object of strings."""

from __future__ import annotations

import json

from sqlalchemy import Engine, select

from monitor.store.tables import ACCOUNTS, CURSORS

__all__ = ["decode_cursor", "has_cursor", "read_cursor"]


def decode_cursor(value: str | None) -> dict[str, str]:
    """Parse a stored cursor (JSON object of strings); a damaged one restarts the backfill."""
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items()}


def read_cursor(engine: Engine, account_id: int) -> dict[str, str]:
    """The account's stored cursor (empty when it has none, or a damaged one)."""
    with engine.connect() as connection:
        value = connection.execute(
            select(CURSORS.c.value).where(CURSORS.c.account_id == account_id)
        ).scalar_one_or_none()
    return decode_cursor(None if value is None else str(value))


def has_cursor(engine: Engine, account: str) -> bool:
    """Whether the named account has polled before (its backfill is done)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(CURSORS.c.account_id)
            .join(ACCOUNTS, ACCOUNTS.c.id == CURSORS.c.account_id)
            .where(ACCOUNTS.c.name == account)
        ).first()
    return found is not None
