"""Business hours: a weekly schedule, a time zone and holidays, as a clock (metrics.md section 3).

Every wait has two durations: calendar seconds and business seconds. Only time inside open
periods counts as business time, so a wait opened while closed starts counting at the next
opening. Targets are judged on business seconds when a schedule is set.

Periods are local wall-clock times of the calendar's zone, evaluated per local date, so an
``00:00-24:00`` day lasts 23 or 25 real hours across a DST change. A wall time maps to the
UTC instant it shows on the clock; the two exceptions are resolved so that the mapping never
runs backwards and a day's periods stay in order:

* a time skipped by a spring-forward gap maps to the instant the gap ends (a period lying
  wholly inside the gap never happens, ``02:30-04:00`` starts at the jump to 03:00);
* a time repeated by a fall-back fold maps to its first occurrence (``fold=0``), so a period
  spanning the fold includes the repeated hour and ``01:00-05:00`` lasts five real hours.

All arithmetic is done on integer microseconds since the epoch, so sums are exact and
``business_seconds(a, c) == business_seconds(a, b) + business_seconds(b, c)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAY_NAMES", "BusinessCalendar", "ScheduleError"]

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for i, name in enumerate(DAY_NAMES)} | {
    name[:3]: i for i, name in enumerate(DAY_NAMES)
}
_MINUTES_PER_DAY = 1440
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_SECOND = 1_000_000
# Deadlines are hours or days away; a search that finds no open time for this long means the
# holidays close everything, and looping on would never end.
_CLOSED_LIMIT_DAYS = 3 * 366
# A deadline this far out is a mistake (seconds instead of minutes?); stop before date overflow.
_SEARCH_LIMIT_DAYS = 100 * 366
_US_PER_DAY = 86400 * 1_000_000
# Enough for years of day-by-day queries; clearing beats tracking recency for a cheap cache.
_DAY_CACHE_LIMIT = 8192

Period = tuple[int, int]
DayPeriods = tuple[Period, ...]


class ScheduleError(ValueError):
    """A business-hours schedule that cannot be used; the message names the offending value."""


@dataclass(frozen=True)
class _Day:
    start_us: int
    intervals: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BusinessCalendar:
    """Open periods per weekday in a time zone, minus holidays; counts business seconds."""

    timezone: str
    weekly: tuple[DayPeriods, ...]
    holidays: frozenset[date] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: dict[int, _Day] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Direct construction gets the same checks as build(), so no calendar is half valid.
        object.__setattr__(self, "_zone", _zone(self.timezone))
        if len(self.weekly) != len(DAY_NAMES):
            raise ScheduleError(f"weekly needs {len(DAY_NAMES)} days, got {len(self.weekly)}")
        weekly = tuple(
            _check_day(name, tuple(day)) for name, day in zip(DAY_NAMES, self.weekly, strict=True)
        )
        if not any(weekly):
            raise ScheduleError("the schedule has no open time on any day")
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "holidays", frozenset(_as_date(d) for d in self.holidays))
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise ScheduleError(
                f"holiday subdivision {self.holiday_subdivision!r} needs a holiday country"
            )
        if self.holiday_country is not None:
            country, subdivision = _check_country(self.holiday_country, self.holiday_subdivision)
            object.__setattr__(self, "holiday_country", country)
            object.__setattr__(self, "holiday_subdivision", subdivision)

    @classmethod
    def build(
        cls,
        timezone: str,
        periods: Mapping[str, Sequence[str]],
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        extra_holidays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """Parse ``{"monday": ["09:00-12:30", "13:30-18:00"], ...}`` into a calendar."""
        labelled: list[list[tuple[int, int, str]]] = [[] for _ in DAY_NAMES]
        for key, values in periods.items():
            index = _DAY_INDEX.get(key.strip().lower())
            if index is None:
                raise ScheduleError(f"{key!r} is not a day name (monday..sunday or mon..sun)")
            name = DAY_NAMES[index]
            # A bare string is a Sequence[str] of characters; read it as one period instead.
            for text in [values] if isinstance(values, str) else values:
                start, end = _parse_period(name, text)
                if end > start:
                    labelled[index].append((start, end, repr(text)))
                else:
                    # Overnight: the part after midnight belongs to the next weekday.
                    labelled[index].append((start, _MINUTES_PER_DAY, repr(text)))
                    if end > 0:
                        following = (index + 1) % len(DAY_NAMES)
                        labelled[following].append((0, end, f"{text!r} (from {name})"))
        weekly = tuple(_merge(name, day) for name, day in zip(DAY_NAMES, labelled, strict=True))
        return cls(
            timezone=timezone,
            weekly=weekly,
            holidays=frozenset(extra_holidays),
            holiday_country=holiday_country,
            holiday_subdivision=holiday_subdivision,
        )

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside an open period."""
        us = _to_us(at, "at")
        ordinal = self._local_ordinal(at)
        while True:
            day = self._day(ordinal)
            if day.start_us > us:
                return False
            if any(a <= us < b for a, b in day.intervals):
                return True
            ordinal += 1

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds inside open periods in ``[start, end)``; 0 when ``end <= start``."""
        s, e = _to_us(start, "start"), _to_us(end, "end")
        if e <= s:
            return 0.0
        total = 0
        ordinal = self._local_ordinal(start)
        while True:
            day = self._day(ordinal)
            if day.start_us >= e:
                break
            for a, b in day.intervals:
                lo, hi = max(a, s), min(b, e)
                if hi > lo:
                    total += hi - lo
            ordinal += 1
        return total / _US_PER_SECOND

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The deadline: the earliest UTC instant with ``seconds`` business seconds since start."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"seconds must be finite and not negative, got {seconds!r}")
        s = _to_us(start, "start")
        remaining = round(seconds * _US_PER_SECOND)
        if remaining == 0:
            # A deadline of 0 is met at start, whether or not the calendar is open then.
            return _from_us(s)
        ordinal = self._local_ordinal(start)
        last_open = s
        while True:
            day = self._day(ordinal)
            for a, b in day.intervals:
                if b <= s:
                    continue
                lo = max(a, s)
                if remaining <= b - lo:
                    return _from_us(lo + remaining)
                remaining -= b - lo
                last_open = b
            self._check_search(day, last_open, s, start)
            ordinal += 1

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if open, else the start of the next open period."""
        us = _to_us(at, "at")
        ordinal = self._local_ordinal(at)
        while True:
            day = self._day(ordinal)
            for a, b in day.intervals:
                if b > us:
                    return _from_us(max(a, us))
            self._check_search(day, us, us, at)
            ordinal += 1

    def fingerprint(self) -> str:
        """A short stable hash of the zone, weekly periods and holiday settings."""
        canonical = json.dumps(
            {
                "v": 1,
                "timezone": self.timezone,
                "weekly": [[list(p) for p in day] for day in self.weekly],
                "holiday_country": self.holiday_country,
                "holiday_subdivision": self.holiday_subdivision,
                "holidays": sorted(d.isoformat() for d in self.holidays),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def is_holiday(self, local: date) -> bool:
        """Whether the local date is closed as an explicit or country holiday."""
        if local in self.holidays:
            return True
        if self.holiday_country is None:
            return False
        return local in _country_holidays(
            self.holiday_country, self.holiday_subdivision, local.year
        )

    def _local_ordinal(self, at: datetime) -> int:
        # Days before the local date of `at` end no later than its local midnight.
        return at.astimezone(self._zone).toordinal()

    def _check_search(self, day: _Day, last_open: int, origin_us: int, origin: datetime) -> None:
        if day.start_us - last_open > _CLOSED_LIMIT_DAYS * _US_PER_DAY:
            raise ScheduleError(
                f"no open time for {_CLOSED_LIMIT_DAYS} days after "
                f"{_from_us(last_open).isoformat()} (searching from {origin.isoformat()}): "
                "holidays close every day"
            )
        if day.start_us - origin_us > _SEARCH_LIMIT_DAYS * _US_PER_DAY:
            raise ScheduleError(
                f"no deadline within {_SEARCH_LIMIT_DAYS} days of {origin.isoformat()}"
            )

    def _day(self, ordinal: int) -> _Day:
        day = self._days.get(ordinal)
        if day is None:
            day = self._build_day(ordinal)
            if len(self._days) >= _DAY_CACHE_LIMIT:
                self._days.clear()
            self._days[ordinal] = day
        return day

    def _build_day(self, ordinal: int) -> _Day:
        local = date.fromordinal(ordinal)
        start_us = self._wall_to_us(local, 0)
        if self.is_holiday(local):
            return _Day(start_us, ())
        intervals = []
        for a, b in self.weekly[local.weekday()]:
            lo = start_us if a == 0 else self._wall_to_us(local, a)
            hi = self._wall_to_us(local, b)
            # A period wholly inside a DST gap collapses to nothing; keep only real time.
            if hi > lo:
                intervals.append((lo, hi))
        return _Day(start_us, tuple(intervals))

    def _wall_to_us(self, local: date, minute: int) -> int:
        wall = datetime(local.year, local.month, local.day, tzinfo=self._zone)
        wall += timedelta(minutes=minute)
        us = _to_us(wall, "wall")
        shown = _from_us(us).astimezone(self._zone)
        if shown.replace(tzinfo=None) == wall.replace(tzinfo=None):
            return us
        # Skipped by a gap: fold=0 lands after the jump, fold=1 before it; the jump lies between.
        return self._gap_end(_to_us(wall.replace(fold=1), "wall"), us)

    def _gap_end(self, before_us: int, after_us: int) -> int:
        target = _from_us(after_us).astimezone(self._zone).utcoffset()
        lo, hi = before_us, after_us
        # Runs only for wall times inside a gap, once per cached day: bisecting is cheap enough.
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _from_us(mid).astimezone(self._zone).utcoffset() == target:
                hi = mid
            else:
                lo = mid
        return hi


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as err:
        raise ScheduleError(f"{name!r} is not a known time zone") from err


def _check_country(country: str, subdivision: str | None) -> tuple[str, str | None]:
    code = country.strip().upper()
    try:
        _holidays_of(code)
    except NotImplementedError as err:
        raise ScheduleError(f"{country!r} is not a holiday country code") from err
    if subdivision is None:
        return code, None
    # The holidays package wants "BY", but people write "by"; names like "Augsburg" keep case.
    for candidate in dict.fromkeys((subdivision.strip(), subdivision.strip().upper())):
        try:
            _holidays_of(code, subdivision=candidate)
        except NotImplementedError:
            continue
        return code, candidate
    raise ScheduleError(f"{subdivision!r} is not a holiday subdivision of {code}")


@lru_cache(maxsize=1024)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # One year at a time, on demand: expanding decades up front is slow for lunar calendars.
    return frozenset(_holidays_of(country, subdivision, year))


def _holidays_of(country: str, subdivision: str | None = None, year: int | None = None) -> Any:
    # Imported here: the holidays package is about 8 MB resident, which only a monitor whose
    # accounts name a holiday country needs.
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def _as_date(value: date) -> date:
    # A datetime is a date too, but would never equal the plain dates it is compared with.
    return date(value.year, value.month, value.day)


def _parse_period(day: str, text: str) -> tuple[int, int]:
    match = _PERIOD.match(text) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"{day}: {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > _MINUTES_PER_DAY:
        raise ScheduleError(f"{day}: {text!r} is not HH:MM-HH:MM")
    if start == end:
        raise ScheduleError(f"{day}: {text!r} is empty (start equals end)")
    # 24:00 ends a day; as the end of an overnight period it would mean a whole extra day.
    if end == _MINUTES_PER_DAY:
        return start, end
    return start, end % _MINUTES_PER_DAY


def _merge(day: str, periods: list[tuple[int, int, str]]) -> DayPeriods:
    merged: list[list[int]] = []
    last_label = ""
    for start, end, label in sorted(periods):
        if merged and start < merged[-1][1]:
            raise ScheduleError(f"{day}: {label} overlaps {last_label}")
        if merged and start == merged[-1][1]:
            merged[-1][1] = end
        else:
            merged.append([start, end])
        last_label = label
    return tuple((a, b) for a, b in merged)


def _check_day(day: str, periods: tuple[Period, ...]) -> DayPeriods:
    checked = []
    for period in periods:
        start, end = period
        if not (
            isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= _MINUTES_PER_DAY
        ):
            raise ScheduleError(f"{day}: {period!r} is not a (start, end) minute pair in 0..1440")
        checked.append((start, end, f"{_fmt(start)}-{_fmt(end)}"))
    return _merge(day, checked)


def _fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _to_us(at: datetime, what: str) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {at.isoformat()}")
    return (at - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
