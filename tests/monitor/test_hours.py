"""Business hours (metrics.md section 3): schedules, DST, holidays and the business clock."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.core.hours import BusinessCalendar, ScheduleError, _country_holidays

H = 3600
US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TEHRAN = ZoneInfo("Asia/Tehran")
TOKYO = ZoneInfo("Asia/Tokyo")
ALL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAYS = ALL_DAYS[:5]


def every_day(*periods: str, days: tuple[str, ...] = ALL_DAYS) -> dict[str, list[str]]:
    return {day: list(periods) for day in days}


def office(
    holiday_country: str | None = None,
    holiday_subdivision: str | None = None,
    extra_holidays: Iterable[date] = (),
    *,
    timezone: str = "Europe/Berlin",
    afternoon: str = "13:30-18:00",
) -> BusinessCalendar:
    """Monday to Friday with a lunch break, in Berlin unless told otherwise."""
    return BusinessCalendar.build(
        timezone,
        every_day("09:00-12:30", afternoon, days=WEEKDAYS),
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
        extra_holidays=extra_holidays,
    )


# --- building and validating -------------------------------------------------------------


def test_build_parses_aliases_sorts_merges_and_closes_unnamed_days() -> None:
    cal = BusinessCalendar.build(
        "Europe/Berlin",
        {
            "Mon": ["13:00-18:00", "09:00-12:00"],
            "tuesday": ["09:00-12:00", "12:00-17:00"],
            " WED ": ["9:00 - 17:00"],
            "friday": ["20:00-24:00"],
        },
    )
    assert cal.weekly == (
        ((540, 720), (780, 1080)),
        ((540, 1020),),  # touching periods merge into one
        ((540, 1020),),
        (),
        ((1200, 1440),),
        (),
        (),
    )
    assert cal.holidays == frozenset()
    assert cal.holiday_country is None


def test_build_accepts_a_bare_string_as_one_period() -> None:
    cal = BusinessCalendar.build("UTC", {"monday": "09:00-17:00"})
    assert cal.weekly[0] == ((540, 1020),)


def test_overnight_period_is_split_across_two_days() -> None:
    cal = BusinessCalendar.build(
        "UTC", {"friday": ["22:00-02:00"], "sunday": ["23:00-01:30"], "saturday": ["21:00-00:00"]}
    )
    assert cal.weekly[4] == ((1320, 1440),)
    assert cal.weekly[5] == ((0, 120), (1260, 1440))  # Friday's tail, then Saturday's own
    assert cal.weekly[6] == ((1380, 1440),)
    assert cal.weekly[0] == ((0, 90),)  # Sunday night wraps round to Monday
    # Friday 2026-06-05 21:00 UTC to Saturday 03:00: open 22:00-02:00, i.e. 4 h.
    start = datetime(2026, 6, 5, 21, tzinfo=UTC)
    assert cal.business_seconds(start, start + timedelta(hours=6)) == 4 * H
    assert cal.is_open(datetime(2026, 6, 6, 1, 59, tzinfo=UTC))
    assert not cal.is_open(datetime(2026, 6, 6, 2, tzinfo=UTC))


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ({"funday": ["09:00-17:00"]}, "'funday' is not a day name"),
        ({"monday": ["9:00-25:00"]}, "monday: '9:00-25:00' is not HH:MM-HH:MM"),
        ({"monday": ["09:60-10:00"]}, "monday: '09:60-10:00' is not HH:MM-HH:MM"),
        ({"monday": ["24:00-02:00"]}, "monday: '24:00-02:00' is not HH:MM-HH:MM"),
        ({"monday": ["24:30"]}, "monday: '24:30' is not HH:MM-HH:MM"),
        ({"tue": ["0900-1700"]}, "tuesday: '0900-1700' is not HH:MM-HH:MM"),
        ({"monday": ["09:00-09:00"]}, "monday: '09:00-09:00' is empty"),
        (
            {"monday": ["09:00-12:00", "11:00-13:00"]},
            "monday: '11:00-13:00' overlaps '09:00-12:00'",
        ),
        (
            {"monday": ["22:00-02:00"], "tuesday": ["01:00-05:00"]},
            "tuesday: '01:00-05:00' overlaps '22:00-02:00' (from monday)",
        ),
        ({"monday": ["09:00-17:00"], "mon": ["10:00-11:00"]}, "monday: '10:00-11:00' overlaps"),
        ({}, "no open time"),
        ({"monday": [], "friday": []}, "no open time"),
    ],
)
def test_build_rejects_bad_schedules(periods: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        BusinessCalendar.build("Europe/Berlin", periods)


@pytest.mark.parametrize(
    ("zone", "country", "subdivision", "message"),
    [
        ("Mars/Olympus_Mons", None, None, "'Mars/Olympus_Mons' is not a known time zone"),
        ("../etc/passwd", None, None, "'../etc/passwd' is not a known time zone"),
        ("Europe/Berlin", "XX", None, "'XX' is not a holiday country code"),
        ("Europe/Berlin", "DE", "ZZ", "'ZZ' is not a holiday subdivision of DE"),
        ("Europe/Berlin", None, "BY", "'BY' needs a holiday country"),
    ],
)
def test_build_rejects_bad_zone_and_holiday_settings(
    zone: str, country: str | None, subdivision: str | None, message: str
) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        office(country, subdivision, timezone=zone)


def test_holiday_codes_are_normalised() -> None:
    cal = office(holiday_country=" de ", holiday_subdivision="by")
    assert (cal.holiday_country, cal.holiday_subdivision) == ("DE", "BY")
    assert cal == office(holiday_country="DE", holiday_subdivision="BY")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ScheduleError, match="weekly needs 7 days, got 2"):
        BusinessCalendar("UTC", ((), ((0, 60),)))
    with pytest.raises(ScheduleError, match=re.escape("sunday: (60, 1500)")):
        BusinessCalendar("UTC", ((),) * 6 + (((60, 1500),),))
    with pytest.raises(ScheduleError, match=re.escape("monday: 00:30-02:00 overlaps 00:00-01:00")):
        BusinessCalendar("UTC", (((0, 60), (30, 120)),) + ((),) * 6)
    with pytest.raises(ScheduleError, match="no open time"):
        BusinessCalendar("UTC", ((),) * 7)
    cal = BusinessCalendar("UTC", (((60, 120), (0, 60)),) + ((),) * 6)
    assert cal.weekly[0] == ((0, 120),)


def test_naive_datetimes_are_refused() -> None:
    cal = office()
    naive = datetime(2026, 6, 1, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.business_seconds(naive, naive + timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)


def test_calendars_are_hashable_values() -> None:
    a, b = office(), office()
    a.business_seconds(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    # The day cache must not leak into equality or hashing.
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert "Europe/Berlin" in repr(a)
    assert "_days" not in repr(a)


# --- the business clock --------------------------------------------------------------------


def test_split_shift_skips_the_lunch_break() -> None:
    cal = office()
    start = datetime(2026, 6, 1, 11, tzinfo=BERLIN)  # a Monday
    end = datetime(2026, 6, 1, 15, tzinfo=BERLIN)
    # 11:00-12:30 is 1.5 h, lunch is closed, 13:30-15:00 is 1.5 h.
    assert cal.business_seconds(start, end) == 3 * H
    assert (end - start).total_seconds() == 4 * H
    assert not cal.is_open(datetime(2026, 6, 1, 13, tzinfo=BERLIN))
    assert cal.is_open(datetime(2026, 6, 1, 12, 29, 59, 999999, tzinfo=BERLIN))
    assert not cal.is_open(datetime(2026, 6, 1, 12, 30, tzinfo=BERLIN))  # periods are [start, end)
    assert cal.is_open(datetime(2026, 6, 1, 13, 30, tzinfo=BERLIN))


def test_wait_opened_while_closed_counts_from_the_next_opening() -> None:
    cal = office()
    # Monday 07:00 -> 09:30: only 09:00-09:30 counts.
    assert (
        cal.business_seconds(
            datetime(2026, 6, 1, 7, tzinfo=BERLIN), datetime(2026, 6, 1, 9, 30, tzinfo=BERLIN)
        )
        == 0.5 * H
    )
    # Friday 19:00 -> Monday 09:15 across the weekend: only Monday's 15 minutes count.
    friday_evening = datetime(2026, 6, 5, 19, tzinfo=BERLIN)
    monday_morning = datetime(2026, 6, 8, 9, 15, tzinfo=BERLIN)
    assert cal.business_seconds(friday_evening, monday_morning) == 15 * 60
    assert cal.next_opening(friday_evening) == datetime(2026, 6, 8, 7, tzinfo=UTC)  # 09:00 CEST
    assert cal.business_seconds(monday_morning, friday_evening) == 0.0


def test_next_opening() -> None:
    cal = office()
    open_at = datetime(2026, 6, 1, 10, 0, 0, 5, tzinfo=BERLIN)
    result = cal.next_opening(open_at)
    assert result == open_at
    assert result.utcoffset() == timedelta(0)
    # Lunch on Monday -> 13:30 CEST, which is 11:30 UTC.
    assert cal.next_opening(datetime(2026, 6, 1, 12, 45, tzinfo=BERLIN)) == datetime(
        2026, 6, 1, 11, 30, tzinfo=UTC
    )
    # Exactly at a closing instant it is closed: next is Tuesday 09:00 CEST.
    assert cal.next_opening(datetime(2026, 6, 2, 16, tzinfo=UTC)) == datetime(
        2026, 6, 3, 7, tzinfo=UTC
    )


def test_start_and_end_in_other_zones_than_the_calendar() -> None:
    cal = office()
    # Monday 2026-06-01 17:00 JST is 10:00 CEST; 22:00 JST is 15:00 CEST.
    start, end = datetime(2026, 6, 1, 17, tzinfo=TOKYO), datetime(2026, 6, 1, 22, tzinfo=TOKYO)
    # 10:00-12:30 (2.5 h) + 13:30-15:00 (1.5 h) = 4 h.
    assert cal.business_seconds(start, end) == 4 * H
    assert cal.business_seconds(start.astimezone(NEW_YORK), end.astimezone(UTC)) == 4 * H
    # 2026-06-01 23:30 in New York is Tuesday 05:30 in Berlin: closed, opens 09:00 CEST.
    late = datetime(2026, 6, 1, 23, 30, tzinfo=NEW_YORK)
    assert not cal.is_open(late)
    assert cal.next_opening(late) == datetime(2026, 6, 2, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),  # CET -> CEST at 02:00
        (BERLIN, date(2026, 10, 25), 25),  # CEST -> CET at 03:00
        (BERLIN, date(2026, 6, 14), 24),
        (NEW_YORK, date(2026, 3, 8), 23),  # EST -> EDT at 02:00
        (NEW_YORK, date(2026, 11, 1), 25),  # EDT -> EST at 02:00
    ],
)
def test_a_whole_local_day_lasts_its_real_length_across_dst(
    zone: ZoneInfo, day: date, hours: int
) -> None:
    cal = BusinessCalendar.build(zone.key, every_day("00:00-24:00"))
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == hours * H
    assert cal.business_seconds(start, end) == hours * H
    assert cal.business_seconds(start.astimezone(UTC), end.astimezone(TOKYO)) == hours * H
    # Noon to noon across the change: the local day's length, all of it open.
    noon = start.replace(hour=12) - timedelta(days=1)
    assert cal.business_seconds(noon, noon + timedelta(days=2)) == (24 + hours) * H


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        # Berlin spring: 01:00 CET (00:00Z) -> 05:00 CEST (03:00Z) = 3 h.
        (BERLIN, date(2026, 3, 29), 3),
        # Berlin autumn: 01:00 CEST (23:00Z the day before) -> 05:00 CET (04:00Z) = 5 h.
        (BERLIN, date(2026, 10, 25), 5),
        # New York spring: 01:00 EST (06:00Z) -> 05:00 EDT (09:00Z) = 3 h.
        (NEW_YORK, date(2026, 3, 8), 3),
        # New York autumn: 01:00 EDT (05:00Z) -> 05:00 EST (10:00Z) = 5 h.
        (NEW_YORK, date(2026, 11, 1), 5),
    ],
)
def test_night_period_spans_real_elapsed_time_across_dst(
    zone: ZoneInfo, day: date, hours: int
) -> None:
    cal = BusinessCalendar.build(zone.key, {ALL_DAYS[day.weekday()]: ["01:00-05:00"]})
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    assert cal.business_seconds(start, start + timedelta(days=1)) == hours * H
    opening = cal.next_opening(start)
    # Compared in UTC: PEP 495 makes == across zones False for an ambiguous local time, and
    # New York's 01:00 on 2026-11-01 is one (fold=0, its first occurrence, is meant).
    assert opening == datetime(day.year, day.month, day.day, 1, tzinfo=zone).astimezone(UTC)
    assert cal.add_business_seconds(start, hours * H) == datetime(
        day.year, day.month, day.day, 5, tzinfo=zone
    )


def test_periods_inside_a_dst_gap_or_fold() -> None:
    start = datetime(2026, 3, 29, tzinfo=BERLIN)  # 02:00-03:00 does not exist that night
    gap = BusinessCalendar.build("Europe/Berlin", {"sunday": ["02:00-02:30"]})
    assert gap.business_seconds(start, start + timedelta(days=1)) == 0.0
    # The next real 02:00-02:30 is a week later.
    assert gap.next_opening(start) == datetime(2026, 4, 5, 2, tzinfo=BERLIN)
    # Starting inside the gap means starting when the clock jumps to 03:00 CEST (01:00Z).
    partly = BusinessCalendar.build("Europe/Berlin", {"sunday": ["02:30-04:00"]})
    assert partly.business_seconds(start, start + timedelta(days=1)) == 1 * H
    assert partly.next_opening(start) == datetime(2026, 3, 29, 1, tzinfo=UTC)

    fold_day = datetime(2026, 10, 25, tzinfo=BERLIN)  # 02:00-03:00 happens twice that night
    fold = BusinessCalendar.build("Europe/Berlin", {"sunday": ["02:00-02:30"]})
    # Only the first occurrence counts: 02:00-02:30 CEST is 00:00-00:30Z.
    assert fold.business_seconds(fold_day, fold_day + timedelta(days=1)) == 0.5 * H
    assert fold.is_open(datetime(2026, 10, 25, 0, 15, tzinfo=UTC))
    assert not fold.is_open(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))  # 02:15 CET, the repeat


def test_a_day_skipped_by_the_zone_contributes_nothing() -> None:
    # Samoa jumped from 2011-12-29 to 2011-12-31 (UTC-10 -> UTC+14).
    apia = ZoneInfo("Pacific/Apia")
    cal = BusinessCalendar.build("Pacific/Apia", every_day("00:00-24:00"))
    start, end = datetime(2011, 12, 29, tzinfo=apia), datetime(2011, 12, 31, tzinfo=apia)
    # 29 December lasted 24 h; 30 December never happened.
    assert cal.business_seconds(start, end) == 24 * H
    assert cal.add_business_seconds(start, 24 * H) == end


def _first_holiday(
    country: str, year: int, accept: Callable[[date, frozenset[date]], bool]
) -> date:
    found = frozenset(holidays.country_holidays(country, years=[year, year + 1]))
    for day in sorted(found):
        if day.year == year and accept(day, found):
            return day
    raise AssertionError(f"no {country} holiday in {year} fits the test")


def test_wait_spanning_a_weekend_and_an_iranian_holiday() -> None:
    # Iran: Saturday to Wednesday 08:00-16:00, Thursday 08:00-13:00, Friday closed.
    periods = every_day("08:00-16:00", days=("saturday", "sunday", "monday", "tuesday"))
    periods |= {"wednesday": ["08:00-16:00"], "thursday": ["08:00-13:00"]}
    cal = BusinessCalendar.build("Asia/Tehran", periods, holiday_country="IR")
    plain = BusinessCalendar.build("Asia/Tehran", periods)

    # A Saturday holiday, with ordinary days on the Thursday before and the Sunday after.
    def fits(day: date, found: frozenset[date]) -> bool:
        thursday, sunday = day - timedelta(days=2), day + timedelta(days=1)
        return day.weekday() == 5 and thursday not in found and sunday not in found

    holiday = _first_holiday("IR", 2026, fits)
    assert cal.is_holiday(holiday)
    thursday = datetime.combine(holiday - timedelta(days=2), datetime.min.time(), tzinfo=TEHRAN)
    start = thursday.replace(hour=12)
    end = datetime.combine(holiday + timedelta(days=1), datetime.min.time(), tzinfo=TEHRAN)
    end = end.replace(hour=10)
    # Thursday 12:00-13:00 (1 h) + Friday closed + Saturday holiday + Sunday 08:00-10:00 (2 h).
    assert cal.business_seconds(start, end) == 3 * H
    # Tehran has no DST: Thursday 12:00 to Sunday 10:00 is 70 calendar hours.
    assert (end - start).total_seconds() == 70 * H
    # Without the holidays Saturday's 8 hours would count.
    assert plain.business_seconds(start, end) == 11 * H
    noon = datetime.combine(holiday, datetime.min.time(), tzinfo=TEHRAN).replace(hour=12)
    assert not cal.is_open(noon)
    assert plain.is_open(noon)
    assert cal.next_opening(start.replace(hour=14)) == end.replace(hour=8)
    # 2 business hours from Thursday 12:00: 1 h on Thursday, then Sunday 08:00-09:00.
    assert cal.add_business_seconds(start, 2 * H) == end.replace(hour=9)


def test_wait_spanning_a_german_holiday_and_weekend() -> None:
    cal = office(holiday_country="DE")

    # A Friday holiday with ordinary Thursday before and Monday after.
    def fits(day: date, found: frozenset[date]) -> bool:
        return (
            day.weekday() == 4
            and day - timedelta(days=1) not in found
            and day + timedelta(days=3) not in found
        )

    holiday = _first_holiday("DE", 2026, fits)
    start = datetime.combine(holiday - timedelta(days=1), datetime.min.time(), tzinfo=BERLIN)
    start = start.replace(hour=17)
    end = datetime.combine(holiday + timedelta(days=3), datetime.min.time(), tzinfo=BERLIN)
    end = end.replace(hour=10)
    # Thursday 17:00-18:00 (1 h), Friday holiday, weekend, Monday 09:00-10:00 (1 h).
    assert cal.business_seconds(start, end) == 2 * H
    assert office().business_seconds(start, end) == 2 * H + 8 * H  # Friday: 3.5 h + 4.5 h
    assert cal.add_business_seconds(start, 1.5 * H) == end.replace(hour=9, minute=30)


def test_subdivision_holidays_close_only_that_subdivision() -> None:
    # Epiphany (6 January) is a holiday in Bavaria but not in Berlin.
    bavaria = office(holiday_country="DE", holiday_subdivision="BY")
    germany = office(holiday_country="DE")
    day = next(
        d
        for d in sorted(holidays.country_holidays("DE", subdiv="BY", years=2026))
        if d not in holidays.country_holidays("DE", years=2026) and d.weekday() < 5
    )
    noon = datetime.combine(day, datetime.min.time(), tzinfo=BERLIN).replace(hour=12)
    assert not bavaria.is_open(noon)
    assert germany.is_open(noon)


def test_explicit_extra_holidays_close_the_whole_local_date() -> None:
    closed = date(2026, 6, 10)  # a Wednesday
    cal = office(extra_holidays=[closed, datetime(2026, 6, 12, 15, tzinfo=UTC)])
    assert cal.holidays == frozenset({closed, date(2026, 6, 12)})
    wednesday = datetime(2026, 6, 10, tzinfo=BERLIN)
    assert cal.business_seconds(wednesday, wednesday + timedelta(days=1)) == 0.0
    assert not cal.is_open(wednesday.replace(hour=10))
    # 2 h from Tuesday 17:00: 1 h on Tuesday, then Thursday 09:00-10:00.
    assert cal.add_business_seconds(datetime(2026, 6, 9, 17, tzinfo=BERLIN), 2 * H) == datetime(
        2026, 6, 11, 10, tzinfo=BERLIN
    )
    assert cal.is_holiday(date(2026, 6, 10))
    assert not cal.is_holiday(date(2026, 6, 11))
    # The holiday is the Berlin date, whatever the UTC date: 22:30 UTC is 00:30 CEST next day.
    always = BusinessCalendar.build(
        "Europe/Berlin", every_day("00:00-24:00"), extra_holidays=[closed]
    )
    assert not always.is_open(datetime(2026, 6, 9, 22, 30, tzinfo=UTC))  # Wednesday 00:30
    assert always.is_open(datetime(2026, 6, 9, 21, 30, tzinfo=UTC))  # Tuesday 23:30
    assert always.is_open(datetime(2026, 6, 10, 22, 0, tzinfo=UTC))  # Thursday 00:00
    assert not always.is_open(datetime(2026, 6, 10, 21, 59, 59, 999999, tzinfo=UTC))
    # Wednesday is 24 h shorter: Tuesday 12:00 to Thursday 12:00 CEST is 24 h open.
    tuesday_noon = datetime(2026, 6, 9, 12, tzinfo=BERLIN)
    assert always.business_seconds(tuesday_noon, tuesday_noon + timedelta(days=2)) == 24 * H


def test_country_holidays_are_expanded_lazily_per_year() -> None:
    _country_holidays.cache_clear()
    cal = office(holiday_country="DE", holiday_subdivision="BW")
    assert _country_holidays.cache_info().currsize == 0
    cal.business_seconds(datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 3, 20, tzinfo=UTC))
    cal.business_seconds(datetime(2031, 4, 1, tzinfo=UTC), datetime(2031, 4, 20, tzinfo=UTC))
    assert _country_holidays.cache_info().currsize == 1  # only (DE, BW, 2031)


# --- deadlines -----------------------------------------------------------------------------


def test_add_business_seconds_basics() -> None:
    cal = office()
    monday_nine = datetime(2026, 6, 1, 9, tzinfo=BERLIN)
    # Exactly the morning's 3.5 h ends at 12:30, not at the 13:30 reopening: earliest instant.
    deadline = cal.add_business_seconds(monday_nine, 3.5 * H)
    assert deadline == datetime(2026, 6, 1, 12, 30, tzinfo=BERLIN)
    assert deadline.tzinfo is UTC
    assert cal.add_business_seconds(monday_nine, 3.5 * H + 1) == datetime(
        2026, 6, 1, 13, 30, 1, tzinfo=BERLIN
    )
    # 8 h from Friday 14:00: 4 h on Friday, 4 h on Monday (09:00-12:30 and 13:30-14:00).
    assert cal.add_business_seconds(datetime(2026, 6, 5, 14, tzinfo=BERLIN), 8 * H) == datetime(
        2026, 6, 8, 14, tzinfo=BERLIN
    )
    saturday = datetime(2026, 6, 6, 12, tzinfo=BERLIN)
    assert cal.add_business_seconds(saturday, 0) == saturday  # a zero deadline is met at once
    assert cal.add_business_seconds(saturday, 1e-7) == saturday  # rounds to the microsecond
    assert cal.add_business_seconds(saturday, 1) == datetime(2026, 6, 8, 9, 0, 1, tzinfo=BERLIN)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and not negative"):
            cal.add_business_seconds(saturday, bad)


def test_searches_give_up_when_holidays_close_everything() -> None:
    first_monday = date(2026, 6, 1)
    mondays = [first_monday + timedelta(weeks=w) for w in range(4 * 53)]
    cal = BusinessCalendar.build("UTC", {"monday": ["09:00-10:00"]}, extra_holidays=mondays)
    start = datetime(2026, 5, 30, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="no open time for 1098 days"):
        cal.add_business_seconds(start, 60)
    with pytest.raises(ScheduleError, match="no open time for 1098 days"):
        cal.next_opening(start)
    # The same calendar still counts (zero) over the closed years without complaint.
    assert cal.business_seconds(start, start + timedelta(days=1000)) == 0.0


def test_absurd_deadline_is_refused_not_searched_forever() -> None:
    cal = BusinessCalendar.build("UTC", {"monday": ["09:00-09:01"]})
    # One minute a week: 200 years' worth of minutes is far past the 100-year search limit.
    with pytest.raises(ScheduleError, match="no deadline within"):
        cal.add_business_seconds(datetime(2026, 1, 1, tzinfo=UTC), 200 * 53 * 60)


# --- fingerprint ---------------------------------------------------------------------------


def test_fingerprint_is_stable_and_tracks_every_setting() -> None:
    base = office(holiday_country="DE", extra_holidays=[date(2026, 6, 10)])
    same = BusinessCalendar.build(
        "Europe/Berlin",
        {day[:3]: ["13:30-18:00", "09:00-12:30"] for day in WEEKDAYS},
        holiday_country="de",
        extra_holidays=(date(2026, 6, 10), date(2026, 6, 10)),
    )
    assert base.fingerprint() == same.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", base.fingerprint())
    # Pinned to the canonical form: stored waits are re-derived when the fingerprint changes,
    # so the encoding must only ever change on purpose.
    office_day = [[540, 750], [810, 1080]]
    canonical = (
        '{"holiday_country":"DE","holiday_subdivision":null,"holidays":["2026-06-10"],'
        '"timezone":"Europe/Berlin","v":1,"weekly":['
        + ",".join([json.dumps(office_day, separators=(",", ":"))] * 5 + ["[]", "[]"])
        + "]}"
    )
    assert base.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    june_10 = [date(2026, 6, 10)]
    variants = [
        office("DE", None, june_10, timezone="Europe/Vienna"),
        office("DE", None, [date(2026, 6, 11)]),
        office("DE"),
        office("AT", None, june_10),
        office("DE", "BY", june_10),
        office("DE", None, june_10, afternoon="13:30-18:01"),
    ]
    prints = {base.fingerprint()} | {v.fingerprint() for v in variants}
    assert len(prints) == len(variants) + 1


# --- properties ----------------------------------------------------------------------------

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tehran",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # DST changes at midnight: some local days start inside a gap
    "Pacific/Chatham",  # +12:45 / +13:45
)
# Instants near DST changes, where mistakes hide; plus anywhere in 2025-2027.
DST_NIGHTS = (
    datetime(2026, 3, 29, tzinfo=BERLIN),
    datetime(2026, 10, 25, tzinfo=BERLIN),
    datetime(2026, 3, 8, tzinfo=NEW_YORK),
    datetime(2026, 11, 1, tzinfo=NEW_YORK),
    datetime(2026, 4, 5, tzinfo=ZoneInfo("Australia/Lord_Howe")),
    datetime(2026, 10, 4, tzinfo=ZoneInfo("Australia/Lord_Howe")),
    datetime(2026, 4, 4, 12, tzinfo=ZoneInfo("America/Santiago")),
    datetime(2026, 9, 5, 12, tzinfo=ZoneInfo("America/Santiago")),
    datetime(2026, 4, 5, tzinfo=ZoneInfo("Pacific/Chatham")),
    datetime(2026, 9, 27, tzinfo=ZoneInfo("Pacific/Chatham")),
)
_DAY_US = 86_400 * 1_000_000

instants = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2027, 12, 31),
        timezones=st.sampled_from([UTC, BERLIN, TOKYO, NEW_YORK]),
    ),
    st.builds(
        lambda night, us: night + timedelta(microseconds=us),
        st.sampled_from(DST_NIGHTS),
        st.integers(-2 * _DAY_US, 2 * _DAY_US),
    ),
)


@st.composite
def calendars(draw: st.DrawFn, zones: tuple[str, ...] = ZONES) -> BusinessCalendar:
    weekly = []
    for _ in range(7):
        # Distinct sorted cut points paired up: non-overlapping, non-touching periods.
        cuts = sorted(draw(st.sets(st.integers(0, 1440), max_size=6)))
        weekly.append(tuple(zip(cuts[0::2], cuts[1::2], strict=False)))
    assume(any(weekly))
    return BusinessCalendar(
        timezone=draw(st.sampled_from(zones)),
        weekly=tuple(weekly),
        holidays=draw(st.frozensets(st.dates(date(2025, 1, 1), date(2027, 12, 31)), max_size=20)),
        holiday_country=draw(st.sampled_from([None, "DE", "IR"])),
    )


PROPERTY = settings(
    max_examples=200,
    deadline=None,  # the first use of a country computes its holidays for a year
    database=None,  # keep the repository free of .hypothesis/
    suppress_health_check=[HealthCheck.too_slow],
)


def _weekly_open_seconds(cal: BusinessCalendar) -> int:
    return sum(b - a for day in cal.weekly for a, b in day) * 60


@PROPERTY
@given(calendars(), st.lists(instants, min_size=3, max_size=3))
def test_business_seconds_is_additive_and_bounded(
    cal: BusinessCalendar, points: list[datetime]
) -> None:
    # Ordered and subtracted in UTC: within one zone Python compares and subtracts wall times.
    a, b, c = sorted(points, key=lambda p: p.astimezone(UTC))
    ab, bc, ac = cal.business_seconds(a, b), cal.business_seconds(b, c), cal.business_seconds(a, c)
    assert ac == pytest.approx(ab + bc, abs=1e-6)
    for lo, hi, got in ((a, b, ab), (b, c, bc), (a, c, ac)):
        assert 0.0 <= got <= (hi.astimezone(UTC) - lo.astimezone(UTC)).total_seconds() + 1e-6
    assert cal.business_seconds(c, a) == 0.0
    # The zone the endpoints are written in changes nothing.
    assert cal.business_seconds(a.astimezone(TEHRAN), c.astimezone(UTC)) == ac


@PROPERTY
@given(calendars(), instants)
def test_is_open_agrees_with_business_seconds(cal: BusinessCalendar, at: datetime) -> None:
    one_us = cal.business_seconds(at, at + US)
    assert one_us == (1e-6 if cal.is_open(at) else 0.0)
    opening = cal.next_opening(at)
    assert opening >= at
    assert cal.is_open(opening)
    assert cal.business_seconds(at, opening) == 0.0
    if cal.is_open(at):
        # In UTC: PEP 495 makes == across zones False when `at` is a skipped or repeated time.
        assert opening == at.astimezone(UTC)


@PROPERTY
@given(calendars(), instants, st.floats(0, 20), st.booleans())
def test_add_business_seconds_inverts_business_seconds(
    cal: BusinessCalendar, start: datetime, weeks: float, whole_us: bool
) -> None:
    # Scaled to the schedule so a one-minute-a-week calendar stays within a few months.
    seconds = _weekly_open_seconds(cal) * weeks
    if whole_us:
        seconds = round(seconds * 1_000_000) / 1_000_000
    deadline = cal.add_business_seconds(start, seconds)
    assert deadline.tzinfo is UTC
    assert deadline >= start
    assert cal.business_seconds(start, deadline) == pytest.approx(seconds, abs=1e-6)
    # Earliest: either no time passed at all, or the clock was running just before the deadline.
    assert deadline == start.astimezone(UTC) or cal.is_open(deadline - US)
    if deadline > start:
        assert cal.business_seconds(start, deadline - US) < seconds


# An independent oracle: walk the timeline minute by minute and read the wall clock. Offsets and
# periods are whole minutes, so openness is constant within each UTC minute. It reads the wall
# clock literally, which agrees with the calendar's rule (a fold's boundary is its first
# occurrence) unless a period boundary falls strictly inside a repeated hour; such calendars
# are skipped below.
ORACLE_ZONES = (
    "UTC",
    "Asia/Kolkata",
    "Asia/Tehran",
    "America/Phoenix",  # west of UTC: local dates lag the UTC date
    "Pacific/Kiritimati",  # +14: local dates lead it by most of a day
    "Europe/Berlin",
    "America/New_York",
)
REPEATED_MINUTES = {"Europe/Berlin": range(121, 180), "America/New_York": range(61, 120)}


@cache
def _country_days(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


def _oracle_open(cal: BusinessCalendar, at: datetime) -> bool:
    wall = at.astimezone(ZoneInfo(cal.timezone))
    day = wall.date()
    if day in cal.holidays:
        return False
    if cal.holiday_country and day in _country_days(cal.holiday_country, day.year):
        return False
    minute = wall.hour * 60 + wall.minute
    return any(a <= minute < b for a, b in cal.weekly[day.weekday()])


@settings(PROPERTY, max_examples=100)
@given(
    calendars(ORACLE_ZONES),
    instants,
    st.integers(0, 3 * 1440),
    st.integers(0, 59_999_999),
)
def test_business_seconds_matches_a_minute_by_minute_oracle(
    cal: BusinessCalendar, start: datetime, minutes: int, offset_us: int
) -> None:
    repeated = REPEATED_MINUTES.get(cal.timezone, range(0))
    assume(not any(m in repeated for a, b in cal.weekly[6] for m in (a, b)))
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    steps = [start + timedelta(minutes=i) for i in range(minutes)]
    expected = 60 * sum(_oracle_open(cal, t) for t in steps)
    assert cal.business_seconds(start, start + timedelta(minutes=minutes)) == expected
    # Anywhere inside a minute, is_open agrees with the oracle for that minute.
    for t in steps[:: max(1, len(steps) // 50)]:
        assert cal.is_open(t + timedelta(microseconds=offset_us)) == _oracle_open(cal, t)
