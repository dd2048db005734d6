"""What one poll did and where an account's polling stands: the records every layer reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["AccountState", "PollOutcome", "PollRecord"]


class AccountState(enum.Enum):
    """Where an account's polling stands."""

    STARTING = "starting"
    OK = "ok"
    FAILING = "failing"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"


class PollOutcome(enum.Enum):
    """How one poll ended (the ``outcome`` label of the poll metrics)."""

    SUCCESS = "success"
    CONNECTION = "connection"
    RESPONSE = "response"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    STORE = "store"
    CRASH = "crash"


@dataclass(frozen=True, slots=True)
class PollRecord:
    """The canonical record of one poll."""

    platform: str
    account: str
    outcome: PollOutcome
    started_at: datetime
    duration_s: float
    items: int
    stored: int
    missed: int
    quota_used: float | None
    next_poll_at: datetime | None
    state: AccountState = AccountState.OK
