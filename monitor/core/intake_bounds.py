"""What intake accepts: times inside a plausibility window, text a store and a receiver can hold.

Every path into the store (import, ``/hooks/*``, polls) checks items with these functions, so
nothing that passed intake can make a later round raise: a time outside the window overflows
deadline arithmetic near year 9999 and turns year-1 waits into 6.4e10-second ages, and a lone
UTF-16 surrogate (what JavaScript leaves when it cuts an emoji) cannot be encoded for the
database, so it would fail the whole batch it arrived in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

__all__ = [
    "DEFAULT_EARLIEST",
    "DEFAULT_MAX_AHEAD",
    "IntakeBounds",
    "check_identifier",
    "clean_text",
    "has_lone_surrogate",
]

# Platforms replywatch has no record of (``/hooks/events`` carries WhatsApp and helpdesks).
DEFAULT_EARLIEST = date(2000, 1, 1)
# Platform clocks and ours disagree by seconds; minutes ahead is a wrong clock or a forgery.
DEFAULT_MAX_AHEAD = timedelta(minutes=5)
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls and DEL: shown as escapes by a terminal, kept out of ids.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate that no UTF-8 encoder accepts."""
    return _SURROGATE.search(text) is not None


def check_identifier(name: str, value: str) -> str:
    """``value`` if it can be an id (no lone surrogate, no control character), else ValueError."""
    if has_lone_surrogate(value):
        raise ValueError(f"{name} holds a lone UTF-16 surrogate (a cut emoji?)")
    if _CONTROL.search(value):
        raise ValueError(f"{name} holds a control character")
    return value


def clean_text(text: str) -> str:
    """Free text made storable: lone surrogates become U+FFFD, controls but line breaks go."""
    return _CONTROL_BUT_LINES.sub("", _SURROGATE.sub("\ufffd", text))


@dataclass(frozen=True, slots=True)
class IntakeBounds:
    """The plausibility window for event times.

    ``earliest`` None means each platform's own launch day from ``launched`` (no Facebook
    message predates Facebook; the config fills it from the platform records), and
    DEFAULT_EARLIEST for platforms it does not name; ``max_ahead`` is how far past the server's
    clock a time may be.
    """

    earliest: date | None = None
    max_ahead: timedelta = DEFAULT_MAX_AHEAD
    launched: Mapping[str, date] = field(default_factory=dict)

    def earliest_for(self, platform: str) -> datetime:
        """The earliest time accepted for an event of this platform (midnight UTC of its day)."""
        day = self.earliest
        if day is None:
            day = self.launched.get(platform, DEFAULT_EARLIEST)
        return datetime.combine(day, time(), tzinfo=UTC)

    def check_time(self, platform: str, created_at: datetime, now: datetime) -> None:
        """Raise ValueError naming the window when ``created_at`` is outside it."""
        earliest = self.earliest_for(platform)
        if created_at < earliest:
            raise ValueError(
                f"{created_at.isoformat()} is before {earliest.date().isoformat()}, "
                f"the earliest time accepted for {platform}"
            )
        latest = now + self.max_ahead
        if created_at > latest:
            raise ValueError(
                f"{created_at.isoformat()} is more than {_minutes(self.max_ahead)} ahead of "
                f"this server's clock ({now.replace(microsecond=0).isoformat()})"
            )


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
