"""Waits: the core rule of metrics.md section 2, as a pure function of a thread's events.

The result depends only on the *set* of events, never on their arrival order: events are
sorted by (time, customer before business, message id numerically when all digits) and
duplicates of a message id collapse to the earliest copy. Every late or re-delivered event
therefore re-derives its whole thread and gets the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

from monitor.core.profiles import WaitRule, tier_for_rating

__all__ = [
    "BusinessClock",
    "ThreadEvent",
    "Wait",
    "WaitInput",
    "derive_waits",
    "event_order_key",
]


class WaitInput(Protocol):
    """What the wait rule reads from an event (``ThreadEvent`` and ``connectors.base.Event``)."""

    @property
    def created_at(self) -> datetime:
        """When the message was written, aware UTC."""
        ...

    @property
    def author_role(self) -> str:
        """``customer``, ``business`` or ``automated``."""
        ...

    @property
    def message_id(self) -> str:
        """The platform's id, unique within the account."""
        ...

    @property
    def rating(self) -> int | None:
        """A review's stars, 1-5."""
        ...


class ThreadEvent(NamedTuple):
    """The part of an event the wait rule looks at."""

    created_at: datetime
    author_role: str
    message_id: str
    rating: int | None = None


class BusinessClock(Protocol):
    """Anything that can count business seconds (``monitor.core.hours.BusinessCalendar``)."""

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds inside open periods in ``[start, end)``."""
        ...


class Wait(NamedTuple):
    """A span during which a customer waited; ``closed_at`` is None while still open."""

    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    tier: str
    rating: int | None
    response_seconds: float | None
    business_seconds: float | None


_DEFAULT_RULE = WaitRule()
_ROLE_RANK = {"customer": 0, "automated": 1, "business": 2}


def _id_key(message_id: str) -> tuple[int, int, str]:
    # All-digit ids (tweet ids, Telegram ids) sort numerically: "9" < "10".
    if message_id.isdigit():
        return (0, int(message_id), "")
    return (1, 0, message_id)


def event_order_key(event: WaitInput) -> tuple[datetime, int, tuple[int, int, str]]:
    """Sort key: time, then customer before business, then message id."""
    return (event.created_at, _ROLE_RANK.get(event.author_role, 1), _id_key(event.message_id))


def _unique(events: Iterable[WaitInput]) -> list[WaitInput]:
    # Rule 9: one event per message id; the earliest copy wins (rule 8: never later).
    best: dict[str, WaitInput] = {}
    for event in events:
        seen = best.get(event.message_id)
        if seen is None or event_order_key(event) < event_order_key(seen):
            best[event.message_id] = event
    return sorted(best.values(), key=event_order_key)


def derive_waits(
    events: Iterable[WaitInput],
    rule: WaitRule = _DEFAULT_RULE,
    clock: BusinessClock | None = None,
) -> list[Wait]:
    """Derive the waits of one thread from its events (in any order, duplicates allowed)."""
    ordered = _unique(events)
    closers = {"business", "automated"} if rule.automated_closes_wait else {"business"}
    if rule.counting == "first_after_silence":
        # Meta's badge: automated and away replies never close a wait.
        closers = {"business"}
    silence = rule.silence.total_seconds()
    waits: list[Wait] = []
    open_event: WaitInput | None = None
    previous_at: datetime | None = None
    for event in ordered:
        role = event.author_role
        if role == "customer":
            if open_event is None and (
                rule.counting == "every_turn"
                or previous_at is None
                or (event.created_at - previous_at).total_seconds() >= silence
            ):
                open_event = event
        elif role in closers and open_event is not None:
            waits.append(_closed(open_event, event, clock))
            open_event = None
        # Silence is broken by customers and by whoever can answer: an automated message
        # that cannot close a wait does not break it (metrics.md 4, meta-badge).
        if role != "automated" or role in closers:
            previous_at = event.created_at
    if open_event is not None:
        waits.append(
            Wait(
                opened_at=open_event.created_at,
                opened_by=open_event.message_id,
                closed_at=None,
                closed_by=None,
                tier=tier_for_rating(open_event.rating),
                rating=open_event.rating,
                response_seconds=None,
                business_seconds=None,
            )
        )
    return waits


def _closed(opening: WaitInput, closing: WaitInput, clock: BusinessClock | None) -> Wait:
    seconds = (closing.created_at - opening.created_at).total_seconds()
    business = clock.business_seconds(opening.created_at, closing.created_at) if clock else None
    return Wait(
        opened_at=opening.created_at,
        opened_by=opening.message_id,
        closed_at=closing.created_at,
        closed_by=closing.message_id,
        tier=tier_for_rating(opening.rating),
        rating=opening.rating,
        response_seconds=seconds,
        business_seconds=business,
    )
