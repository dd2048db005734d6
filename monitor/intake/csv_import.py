"""Reading normalized event CSV files: every bad row reported by line, good rows kept.

Columns: ``platform, account, thread_id, message_id, author_role, created_at`` and optionally
``channel, rating, text``. Times are ISO 8601 with an offset (``Z`` for UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from connectors.base import AUTHOR_ROLES, CHANNELS, Channel, Event
from connectors.registry import PLATFORMS, canonical_platform
from monitor.config.loading import Config
from monitor.core.intake_bounds import check_identifier, clean_text
from monitor.intake.csv_records import Broken, CsvRecords

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
    if parsed.tzinfo is UTC:
        return parsed
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is a valid ISO time whose UTC instant is past year 9999.
        raise ValueError(f"{value!r} is outside the years 1-9999 in UTC") from None


def read_events(
    lines: Iterable[str],
    config: Config,
    *,
    default_zone: tzinfo | None = None,
    on_bad_row: Callable[[BadRow], None],
) -> Iterator[Event]:
    """Yield the good rows of a CSV file as events; report the bad ones to ``on_bad_row``.

    ``lines`` may be whole lines or pieces of them (``csv_records.read_pieces``, which bounds
    the memory a hostile line can take).
    """
    records = CsvRecords(lines)
    first = next(records, None)
    if first is None:
        raise CsvFormatError("the file is empty (expected a header row)")
    if isinstance(first, Broken):
        raise CsvFormatError(f"the header (line {first.line}) cannot be read: {first.reason}")
    # A byte-order mark survives an explicit --encoding utf-16-le; it is not part of a name.
    header = [name.replace("\ufeff", "").strip().lower() for name in first.fields]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFormatError(
            f"missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
            + _header_hint(first.fields)
        )
    parse = RowParser(header, config, default_zone)
    width = records.width = len(header)
    for record in records:
        if isinstance(record, Broken):
            on_bad_row(BadRow(record.line, record.reason))
            continue
        row = record.fields
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != width:
                raise ValueError(f"has {len(row)} fields, the header has {width}")
            yield parse(row)
        except ValueError as err:
            on_bad_row(BadRow(record.line, records.refuse(str(err))))


def _header_hint(header: list[str]) -> str:
    """Why the header was not understood, when the cause is a common one."""
    if any("\x00" in name for name in header):
        return (
            "; the header holds NUL characters: the file looks like UTF-16 without a "
            "byte-order mark (use --encoding utf-16-le or utf-16-be)"
        )
    for mark, name in ((";", "semicolons"), ("\t", "tabs")):
        parts = {part.strip().lower() for field in header for part in field.split(mark)}
        if set(REQUIRED_COLUMNS) <= parts:
            return (
                f"; the header is separated by {name}, but replywatch reads comma-separated "
                "files: save it with commas (in Excel: CSV UTF-8 (Comma delimited))"
            )
    return ""


class RowParser:
    """Turns one CSV row into an Event; column positions and account checks are cached."""

    def __init__(
        self,
        header: list[str],
        config: Config,
        default_zone: tzinfo | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        def position(name: str) -> int:
            return header.index(name) if name in header else -1

        self.required = [position(name) for name in REQUIRED_COLUMNS]
        self.optional = [position(name) for name in OPTIONAL_COLUMNS]
        self.config = config
        self.default_zone = default_zone
        # "Now" for the plausibility window: a row may not be ahead of this server's clock.
        self.clock = clock
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
        for name, value in zip(REQUIRED_COLUMNS[:4], required[:4], strict=True):
            # JSON's "\ud83d" (half an emoji) or a control character cannot be part of an id.
            check_identifier(name, value)
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
        try:
            self.config.intake.check_time(platform, created, self.clock())
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
            text_excerpt=clean_text(text) or None,
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
