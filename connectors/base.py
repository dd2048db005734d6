"""The seam between platform connectors and the monitor: events, pages, the protocol.

Connectors speak HTTP and a platform's format and hand back these frozen dataclasses; they
never see the database, the scheduler or metrics. `monitor.store.ingest` is the one place that turns
an `Event` into stored state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol, runtime_checkable

__all__ = [
    "AUTHOR_ROLES",
    "CHANNELS",
    "AuthorRole",
    "Channel",
    "Connector",
    "ConnectorSettings",
    "Event",
    "FetchResult",
    "comment_thread",
    "dm_thread",
]

AuthorRole = Literal["customer", "business", "automated"]
Channel = Literal["dm", "comment", "mention", "review"]

AUTHOR_ROLES: tuple[AuthorRole, ...] = ("customer", "business", "automated")
CHANNELS: tuple[Channel, ...] = ("dm", "comment", "mention", "review")


def dm_thread(customer_id: str) -> str:
    """The thread of a direct-message conversation with one customer (every platform)."""
    return f"dm/{customer_id}"


def comment_thread(top_comment_id: str, customer_id: str) -> str:
    """The thread of one customer's comments (or mentions) in one conversation tree."""
    return f"{top_comment_id}/{customer_id}"


@dataclass(frozen=True, slots=True)
class Event:
    """One message, comment, mention, review or reply seen on a platform (metrics.md section 1).

    `created_at` is timezone-aware and normalised to UTC. `message_id` is unique per
    `(platform, account)`; `account` is the configured account name, not a platform id.
    """

    platform: str
    account: str
    channel: Channel
    thread_id: str
    message_id: str
    author_role: AuthorRole
    created_at: datetime
    rating: int | None = None
    text_excerpt: str | None = None
    thread_url: str | None = None

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError(f"event {self.message_id!r}: created_at must be timezone-aware")
        if self.created_at.tzinfo is not UTC:
            object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        if self.author_role not in AUTHOR_ROLES:
            raise ValueError(f"event {self.message_id!r}: unknown author_role {self.author_role!r}")
        if self.channel not in CHANNELS:
            raise ValueError(f"event {self.message_id!r}: unknown channel {self.channel!r}")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise ValueError(f"event {self.message_id!r}: rating {self.rating} is not within 1-5")
        if not self.message_id:
            raise ValueError("event has an empty message_id")
        if not self.thread_id:
            raise ValueError(f"event {self.message_id!r}: empty thread_id")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one poll returned: the events seen and the cursor to resume from next time.

    `cursor` is opaque to the monitor; it is stored in the same transaction as the events, so
    a crash never moves it past data that was not stored. `missed` counts items the platform
    would not show in full (for example beyond Meta's 20-recent-messages limit), and
    `quota_used` is the platform's own usage figure (0..1) when it reports one.
    """

    events: tuple[Event, ...]
    cursor: Mapping[str, str] = field(default_factory=dict)
    missed: int = 0
    quota_used: float | None = None


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """Everything a connector needs to talk to one account, already resolved from the config.

    `ids` holds the platform's identifiers (`page_id`, `ig_user_id`, ...), `secrets` the resolved
    credentials (never logged), `options` platform switches (`graph_version`, ...).
    `backfill_since` bounds the first poll of an account that has no cursor yet.
    """

    account: str
    ids: Mapping[str, str]
    secrets: Mapping[str, str]
    channels: tuple[Channel, ...]
    backfill_since: datetime
    base_url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    request_timeout: float = 30.0


@runtime_checkable
class Connector(Protocol):
    """A client for one monitored account on one platform."""

    platform: ClassVar[str]

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Return events newer than `cursor` (an empty mapping means: backfill)."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP session if this connector owns it."""
        ...
