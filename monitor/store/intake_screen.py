"""The store's last check on every event, whatever path brought it (polls, webhooks, import).

The parsers of each path refuse what they can explain to the sender; this screen makes sure
that nothing that slipped past them can fail a batch or a later round. An event whose time is
outside the plausibility window, or whose ids a database cannot hold (a lone UTF-16 surrogate,
a control character, more characters than the column), is refused alone: the good events
beside it are stored. Free text is cleaned instead of refused, and an unusable conversation
link is dropped, because the message itself still counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column

from connectors.base import Event
from monitor.core.intake_bounds import IntakeBounds, check_identifier, clean_text
from monitor.store.recent import stored_time
from monitor.store.tables import ACCOUNTS, EVENTS

__all__ = ["Refusal", "describe", "screen_events"]


# The store's column widths: a longer value fails a whole PostgreSQL batch.
def _width(column: Column[Any]) -> int:
    return int(getattr(column.type, "length"))  # noqa: B009 - every screened column is a String


_WIDTHS = (
    ("platform", _width(ACCOUNTS.c.platform)),
    ("account", _width(ACCOUNTS.c.name)),
    ("thread_id", _width(EVENTS.c.thread_id)),
    ("message_id", _width(EVENTS.c.message_id)),
)
_MAX_URL = _width(EVENTS.c.thread_url)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event the store refused, and why (the reason never quotes message text)."""

    platform: str
    account: str
    message_id: str
    reason: str


def screen_events(
    events: Iterable[Event], bounds: IntakeBounds, now: datetime
) -> tuple[list[Event], list[Refusal]]:
    """The events the store can take (text cleaned, bad links dropped), and the refused ones."""
    kept: list[Event] = []
    refused: list[Refusal] = []
    latest = now + bounds.max_ahead
    earliest: dict[str, datetime] = {}  # per platform, looked up once per batch
    for event in events:
        reason = _refusal(event, bounds, now, latest, earliest)
        if reason is None:
            kept.append(_cleaned(event))
        else:
            refused.append(Refusal(event.platform, event.account, event.message_id, reason))
    return kept, refused


def _refusal(
    event: Event,
    bounds: IntakeBounds,
    now: datetime,
    latest: datetime,
    earliest: dict[str, datetime],
) -> str | None:
    try:
        for name, width in _WIDTHS:
            value = getattr(event, name)
            # isprintable() is False for every surrogate and control character: a fast pass
            # for the usual id, the full check (which allows e.g. a zero-width joiner) else.
            if not value.isprintable():
                check_identifier(name, value)
            if len(value) > width:
                raise ValueError(f"{name} is longer than {width} characters")
        # The time that is stored: a review reply's platform time may be later than now
        # (Google rewrites it on edit), and ingest keeps the first time it was seen instead.
        at = stored_time(event, now)
        first = earliest.get(event.platform)
        if first is None:
            first = earliest[event.platform] = bounds.earliest_for(event.platform)
        if not first <= at <= latest:
            bounds.check_time(event.platform, at, now)  # raises, naming the window
    except ValueError as err:
        return str(err)
    return None


def _cleaned(event: Event) -> Event:
    text, url = event.text_excerpt, event.thread_url
    clean = text if text is None or text.isprintable() else clean_text(text)
    link = url if url is None or _usable_url(url) else None
    if clean == text and link == url:
        return event  # the usual case: no copy
    return dataclasses.replace(event, text_excerpt=clean, thread_url=link)


def _usable_url(url: str) -> bool:
    # A link is shown to people and put in alerts as it is: it is kept whole or not at all.
    if len(url) > _MAX_URL:
        return False
    if url.isprintable():
        return True
    try:
        check_identifier("thread_url", url)
    except ValueError:
        return False
    return True


def describe(refused: Sequence[Refusal], shown: int = 3) -> str:
    """A short log text naming the first few refused events by platform, account and id."""
    parts = [f"{r.platform!r}/{r.account!r} message {r.message_id!r}: {r.reason}" for r in refused]
    more = len(refused) - shown
    return "; ".join(parts[:shown]) + (f"; and {more} more" if more > 0 else "")
