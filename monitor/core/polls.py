"""What one poll did and where an account's polling stands: the records every layer reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "STALE_AFTER_INTERVALS",
    "STALE_STATE",
    "AccountState",
    "PollOutcome",
    "PollRecord",
    "shown_state",
]

STALE_STATE = "stale"
"""The state shown for an account nobody has polled for a while (never a poll's own)."""
STALE_AFTER_INTERVALS = 3


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


def shown_state(polled: str, last_poll: float, interval: float, now: float) -> str:
    """The state to show: ``stale`` for an ok or starting account no poll has ended for in
    STALE_AFTER_INTERVALS intervals (the poller is stuck or gone), else the polled one.

    A failing, throttled or paused account keeps its own state: it says why it is quiet.
    """
    quiet = polled in (AccountState.OK.value, AccountState.STARTING.value)
    late = now - last_poll > STALE_AFTER_INTERVALS * interval
    return STALE_STATE if quiet and late else polled
