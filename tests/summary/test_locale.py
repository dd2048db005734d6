"""The summary's words, numbers, durations and dates in English and Persian."""

from __future__ import annotations

import datetime as dt
import re
import string

import jdatetime  # type: ignore[import-untyped]
import pytest

from monitor.summary.locale import LOCALES, Locale, get_locale

EN, FA = get_locale("en"), get_locale("fa")
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"
ARABIC_ONLY = re.compile("[\u064a\u0643\u0660-\u0669]")  # Arabic yeh, kaf and digits


def placeholders(pattern: str) -> set[str]:
    """The ``{names}`` in a text pattern."""
    return {name for _, name, _, _ in string.Formatter().parse(pattern) if name}


def fa_strings() -> list[str]:
    """Every Persian word the locale holds: texts, day and month names, unit patterns."""
    return [
        *FA.texts.values(),
        *FA.weekdays,
        *FA.weekdays_short,
        *FA.months,
        *FA.duration_patterns.values(),
        FA.points_pattern,
        FA.week_pattern,
        FA.date_time_pattern,
        *FA.range_patterns.values(),
    ]


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    """A text missing in one language, or a placeholder lost in translation, fails here."""
    assert set(EN.texts) == set(FA.texts)
    for key, english in EN.texts.items():
        assert placeholders(english) == placeholders(FA.texts[key]), key


def test_known_locales_and_default() -> None:
    """Both codes resolve, and English is the default."""
    assert LOCALES == ("en", "fa")
    assert [get_locale(code).code for code in LOCALES] == ["en", "fa"]
    assert get_locale() is EN
    assert (EN.direction, FA.direction) == ("ltr", "rtl")
    assert FA.font_family.startswith("Vazirmatn, 'Noto Naskh Arabic'")


def test_unknown_locale_names_the_code_and_the_known_ones() -> None:
    """A typo in the config gets a message saying what would work."""
    with pytest.raises(ValueError, match=r"^unknown locale 'xx' \(known: en, fa\)$"):
        get_locale("xx")


def test_unknown_key_is_a_lookup_error_naming_the_key() -> None:
    """A misspelt key says which key, not a bare KeyError."""
    with pytest.raises(LookupError, match="'titel'") as caught:
        FA.text("titel")
    assert not isinstance(caught.value, KeyError)


def test_missing_placeholder_value_is_named() -> None:
    """A text called without one of its values names the value."""
    with pytest.raises(LookupError, match="deadline"):
        EN.text("col_rate")
    assert EN.text("col_rate", deadline="1 d") == "Answered within 1 d"


def test_unused_values_are_ignored_as_str_format_does() -> None:
    """Passing a value the text does not use is harmless."""
    assert EN.text("title", count="3") == "Weekly response summary"


def test_latin_values_are_isolated_in_persian_text_only() -> None:
    """A Latin account name keeps its order inside a Persian sentence; Persian values stay bare."""
    assert FA.text("empty_week", account="@acme_shop").startswith(
        f"این هفته هیچ مشتری‌ای به {FSI}@acme_shop{PDI} "
    )
    assert FA.text("and_more", count="۳") == "و ۳ مورد دیگر"
    assert EN.text("empty_week", account="@acme_shop") == (
        "No customer wrote to @acme_shop this week."
    )


@pytest.mark.parametrize(
    ("value", "decimals", "en", "fa"),
    [
        (1234.5, 1, "1,234.5", "۱٬۲۳۴٫۵"),
        (1234567, 0, "1,234,567", "۱٬۲۳۴٬۵۶۷"),
        (2.5, 0, "3", "۳"),  # half up, not Python's half to even
        (2.675, 2, "2.68", "۲٫۶۸"),  # as written, not as the nearest binary float
        (0, 0, "0", "۰"),
        (-0.04, 1, "0.0", "۰٫۰"),  # no "-0.0"
        (-1234.0, 0, "−1,234", f"{LRI}−۱٬۲۳۴{PDI}"),
    ],
)
def test_number(value: float, decimals: int, en: str, fa: str) -> None:
    """Grouping, rounding and digits per language."""
    assert EN.number(value, decimals) == en
    assert FA.number(value, decimals) == fa


def test_number_rejects_what_is_not_a_number() -> None:
    """NaN would otherwise print as "nan" in a manager's report."""
    with pytest.raises(ValueError, match="nan"):
        EN.number(float("nan"))


def test_percent() -> None:
    """Ratios become percentages with one decimal; None is the no-data dash."""
    assert EN.percent(0.875) == "87.5%"
    assert FA.percent(0.875) == "۸۷٫۵٪"
    assert FA.percent(1) == "۱۰۰٫۰٪"
    assert EN.percent(0.5, decimals=0) == "50%"
    assert EN.percent(None) == FA.percent(None) == "–"


@pytest.mark.parametrize(
    ("seconds", "en", "fa"),
    [
        (0, "0 s", "۰ ثانیه"),
        (45, "45 s", "۴۵ ثانیه"),
        (59, "59 s", "۵۹ ثانیه"),
        (59.9, "59 s", "۵۹ ثانیه"),  # truncated: not yet a minute
        (60, "1 min", "۱ دقیقه"),
        (720, "12 min", "۱۲ دقیقه"),
        (3599, "59 min", "۵۹ دقیقه"),
        (3600, "1 h", "۱ ساعت"),
        (3 * 3600 + 300, "3 h 05 min", "۳ ساعت و ۵ دقیقه"),
        (86399, "23 h 59 min", "۲۳ ساعت و ۵۹ دقیقه"),
        (86400, "1 d", "۱ روز"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h", "۲ روز و ۴ ساعت"),
    ],
)
def test_duration_boundaries(seconds: float, en: str, fa: str) -> None:
    """Each unit starts exactly at its boundary, in both languages."""
    assert EN.duration(seconds) == en
    assert FA.duration(seconds) == fa


def test_duration_none_and_negative() -> None:
    """No data is a dash; a negative wait is a bug upstream, not a number to print."""
    assert FA.duration(None) == "–"
    with pytest.raises(ValueError, match=">= 0"):
        EN.duration(-1)


def test_signed_changes() -> None:
    """Changes carry a sign; the Persian sign is isolated so bidi keeps it left of the digits."""
    assert EN.signed(2.5, "points") == "+2.5 pts"
    assert EN.signed(-2.54, "points") == "−2.5 pts"
    assert EN.signed(0.01, "points") == "0.0 pts"
    assert EN.signed(180, "duration") == "+3 min"
    assert EN.signed(-120, "duration") == "−2 min"
    assert EN.signed(3 * 3600 + 300, "duration") == "+3 h 05 min"
    assert EN.signed(-0.4, "duration") == "0 s"
    assert FA.signed(2.5, "points") == f"{LRI}+۲٫۵{PDI} واحد درصد"
    assert FA.signed(-120, "duration") == f"{LRI}−۲{PDI} دقیقه"
    assert FA.signed(3 * 3600 + 300, "duration") == f"{LRI}+۳{PDI} ساعت و ۵ دقیقه"
    assert EN.signed(None, "points") == FA.signed(None, "duration") == "–"
    with pytest.raises(ValueError, match="'minutes'"):
        EN.signed(1, "minutes")


def test_persian_uses_persian_letters_and_digits_only() -> None:
    """No Arabic yeh/kaf, no Arabic-Indic or Latin digits, no unjoined verb prefix."""
    for text in fa_strings():
        assert not ARABIC_ONLY.search(text), text
        assert not re.search("[0-9]", re.sub(r"\{\w*\}", "", text)), text
        # "می" as a verb prefix is joined to its verb with a zero-width non-joiner.
        assert not re.search(r"(^|\s)ن?می ", text), text
    assert "\u200c" in FA.text("advice_staff", hours="x")  # ZWNJ really is there
    assert FA.texts["title"] == "خلاصهٔ هفتگی پاسخ‌گویی"
    outputs = [
        FA.number(9876543.21, 2),
        FA.date(dt.datetime(2026, 11, 23, 14, 5), with_time=True),
        FA.duration(3 * 86400 + 7200),
    ]
    assert not any(ARABIC_ONLY.search(text) for text in outputs)


def test_first_of_farvardin_1405() -> None:
    """Nowruz 1405 falls on 21 March 2026, a Saturday."""
    day = dt.date(2026, 3, 21)
    jalali = jdatetime.date.fromgregorian(date=day)
    assert (jalali.year, jalali.month, jalali.day) == (1405, 1, 1)
    assert FA.date(day) == "شنبه ۱ فروردین ۱۴۰۵"
    assert EN.date(day) == "Sat 21 Mar 2026"


def test_dates_in_aban_and_azar() -> None:
    """Monday 23 Nov 2026 is 2 Azar 1405; Tuesday 17 Nov is 26 Aban."""
    assert FA.date(dt.date(2026, 11, 23)) == "دوشنبه ۲ آذر ۱۴۰۵"
    assert FA.date(dt.date(2026, 11, 17)) == "سه‌شنبه ۲۶ آبان ۱۴۰۵"
    assert EN.date(dt.date(2026, 11, 17)) == "Tue 17 Nov 2026"


def test_dates_with_time() -> None:
    """The clock time follows the day, in the locale's digits."""
    moment = dt.datetime(2026, 11, 23, 9, 5)
    assert EN.date(moment, with_time=True) == "Mon 23 Nov 2026 09:05"
    assert FA.date(moment, with_time=True) == "دوشنبه ۲ آذر ۱۴۰۵ ساعت ۰۹:۰۵"
    assert EN.date(moment) == "Mon 23 Nov 2026"
    with pytest.raises(ValueError, match="no time"):
        EN.date(dt.date(2026, 11, 23), with_time=True)


def test_weekday_names_follow_iso_order() -> None:
    """Index 0 is Monday in both languages, and agrees with the Jalali calendar's week."""
    assert [EN.weekday(i, short=True) for i in range(7)] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    ]  # fmt: skip
    assert FA.weekday(0) == "دوشنبه"
    assert FA.weekday(4) == "جمعه"
    assert FA.weekday(5) == "شنبه"
    # jdatetime counts from Saturday (0): each Gregorian day must get the matching name.
    saturday_first = [FA.weekday(5), FA.weekday(6), *(FA.weekday(i) for i in range(5))]
    for offset in range(7):
        day = dt.date(2026, 11, 23) + dt.timedelta(days=offset)
        jalali_index = jdatetime.date.fromgregorian(date=day).weekday()
        assert saturday_first[jalali_index] == FA.weekday(day.weekday())
    with pytest.raises(ValueError, match="not 7"):
        FA.weekday(7)


def test_week_label_for_iso_week_48_of_2026() -> None:
    """Week 48 runs Monday 23 to Sunday 29 November, 2 to 8 Azar 1405."""
    start = dt.date.fromisocalendar(2026, 48, 1)
    end = dt.date.fromisocalendar(2026, 48, 7)
    assert (start, end) == (dt.date(2026, 11, 23), dt.date(2026, 11, 29))
    assert EN.week_label(2026, 48, start, end) == "Week 48, 2026 (23–29 Nov)"
    assert FA.week_label(2026, 48, start, end) == "هفتهٔ ۲ تا ۸ آذر ۱۴۰۵"


@pytest.mark.parametrize(
    ("locale", "week", "expected"),
    [
        (EN, (2026, 49), "Week 49, 2026 (30 Nov – 6 Dec)"),
        (EN, (2026, 1), "Week 1, 2026 (29 Dec 2025 – 4 Jan 2026)"),
        (FA, (2026, 47), "هفتهٔ ۲۵ آبان تا ۱ آذر ۱۴۰۵"),
        (FA, (2026, 12), "هفتهٔ ۲۵ اسفند ۱۴۰۴ تا ۲ فروردین ۱۴۰۵"),
    ],
)
def test_week_label_across_months_and_years(
    locale: Locale, week: tuple[int, int], expected: str
) -> None:
    """A week split between months or years names both ends in the locale's calendar."""
    start = dt.date.fromisocalendar(*week, 1)
    end = dt.date.fromisocalendar(*week, 7)
    assert locale.week_label(*week, start, end) == expected


def test_week_label_rejects_a_backwards_week() -> None:
    """Swapped dates are a caller's bug."""
    with pytest.raises(ValueError, match="before"):
        EN.week_label(2026, 48, dt.date(2026, 11, 29), dt.date(2026, 11, 23))
