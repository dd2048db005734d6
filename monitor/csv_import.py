"""Reading normalized event CSV files: every bad row reported by line, good rows kept.

Columns: ``platform, account, thread_id, message_id, author_role, created_at`` and optionally
``channel, rating, text``. Times are ISO 8601 with an offset (``Z`` for UTC).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from connectors.base import AUTHOR_ROLES, CHANNELS, Channel, Event
from monitor.config import Config
from monitor.platforms import PLATFORMS, canonical_platform

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "BadRow",
    "CsvFormatError",
    "RowParser",
    "parse_time",
    "read_events",
]

REQUIRED_COLUMNS = ("platform", "account", "thread_id", "message_id", "author_role", "created_at")
OPTIONAL_COLUMNS = ("channel", "rating", "text")
_MAX_ID = 255


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, missing columns)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was skipped, with the reason."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_time(text: str, default_zone: tzinfo | None = None) -> datetime:
    """Parse an ISO 8601 time; without an offset it needs ``default_zone``."""
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        if default_zone is None:
            raise ValueError(f"{value!r} has no UTC offset (write e.g. {value}Z for UTC)")
        parsed = parsed.replace(tzinfo=default_zone)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def read_events(
    lines: Iterable[str],
    config: Config,
    *,
    default_zone: tzinfo | None = None,
    on_bad_row: Callable[[BadRow], None],
) -> Iterator[Event]:
    """Yield the good rows of a CSV file as events; report the bad ones to ``on_bad_row``."""
    reader = csv.reader(lines)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise CsvFormatError("the file is empty (expected a header row)") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    parse = RowParser(header, config, default_zone)
    width = len(header)
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != width:
                raise ValueError(f"has {len(row)} fields, the header has {width}")
            yield parse(row)
        except ValueError as err:
            on_bad_row(BadRow(start, str(err)))


class RowParser:
    """Turns one CSV row into an Event; column positions and account checks are cached."""

    def __init__(self, header: list[str], config: Config, default_zone: tzinfo | None) -> None:
        def position(name: str) -> int:
            return header.index(name) if name in header else -1

        self.required = [position(name) for name in REQUIRED_COLUMNS]
        self.optional = [position(name) for name in OPTIONAL_COLUMNS]
        self.config = config
        self.default_zone = default_zone
        # (platform as written, account) -> canonical platform, once validated.
        self.accounts: dict[tuple[str, str], str] = {}

    def __call__(self, row: list[str]) -> Event:
        """The row as an Event, or ValueError naming the first thing wrong with it."""
        required = [row[index].strip() for index in self.required]
        for name, value in zip(REQUIRED_COLUMNS, required, strict=True):
            if not value:
                raise ValueError(f"{name} is empty")
            if len(value) > _MAX_ID:
                raise ValueError(f"{name} is longer than {_MAX_ID} characters")
        written, account, thread_id, message_id, role, created_text = required
        channel, rating_text, text = (
            row[index].strip() if index >= 0 else "" for index in self.optional
        )
        platform = self._platform(written, account)
        role = role.lower()
        if role not in AUTHOR_ROLES:
            raise ValueError(f"author_role {role!r} is not one of {', '.join(AUTHOR_ROLES)}")
        try:
            created = parse_time(created_text, self.default_zone)
        except ValueError as err:
            raise ValueError(f"created_at {err}") from None
        rating = None
        if rating_text:
            if not rating_text.isdigit() or not 1 <= int(rating_text) <= 5:
                raise ValueError(f"rating {rating_text!r} is not a whole number from 1 to 5")
            rating = int(rating_text)
        return Event(
            platform=platform,
            account=account,
            channel=_channel(channel.lower(), platform),
            thread_id=thread_id,
            message_id=message_id,
            author_role=role,
            created_at=created,
            rating=rating,
            text_excerpt=text or None,
        )

    def _platform(self, written: str, account: str) -> str:
        known = self.accounts.get((written, account))
        if known is not None:
            return known
        platform = canonical_platform(written)
        configured = self.config.accounts.get(account)
        if configured is not None and configured.platform != platform:
            raise ValueError(
                f"account {account!r} is configured on {configured.platform}, "
                f"the row says {platform}"
            )
        self.accounts[(written, account)] = platform
        return platform


def _channel(value: str, platform: str) -> Channel:
    if not value:
        spec = PLATFORMS.get(platform)
        return spec.default_channel if spec else "dm"
    if value not in CHANNELS:
        raise ValueError(f"channel {value!r} is not one of {', '.join(CHANNELS)}")
    return value
