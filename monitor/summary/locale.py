"""Words, numbers, durations and dates of the weekly summary in English or Persian.

Each language is one frozen ``Locale`` holding its data (texts, digits, calendar, patterns);
the methods are the same for every language, so a new language is a new table, not new code.
"""

from __future__ import annotations

import datetime as dt
import math
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

import jdatetime

__all__ = ["LOCALES", "Locale", "get_locale"]

LOCALES: tuple[str, ...] = ("en", "fa")

# Bidi isolates: a signed number or a Latin account name inside Persian text keeps its own
# order (sign left of the digits) and does not drag neighbouring punctuation with it.
_LRI, _FSI, _PDI = "\u2066", "\u2068", "\u2069"
_MINUS = "\u2212"  # a real minus sign: a hyphen is shorter than "+" and looks like a dash

_EN_TEXTS: Mapping[str, str] = {
    "title": "Weekly response summary",
    "period": "{start} – {end}",
    "generated": "Generated {date}",
    "section_accounts": "How each account did",
    "col_account": "Account",
    "col_channel": "Channel",
    "col_waits": "Customers",
    "col_rate": "Answered within {deadline}",
    "col_within": "Within {target}",
    "col_mean": "Mean reply",
    "col_median": "Median",
    "col_p90": "90% within",
    "col_badge": "Badge",
    "col_change": "vs last week",
    "col_budget": "Error budget used",
    "badge_held": "held",
    "badge_lost": "not held",
    "badge_unknown": "too little data",
    "section_longest": "The ten longest waits",
    "col_opened": "Wrote at",
    "col_waited": "Waited",
    "col_status": "Status",
    "status_answered": "answered",
    "status_waiting": "still waiting",
    "open_link": "open",
    "section_waiting": "Customers still waiting now",
    "section_reviews": "Negative reviews (1–2 stars)",
    "col_rating": "Stars",
    "col_answered_in": "Answered after",
    "not_answered": "not answered",
    "section_hours": "Arrivals and missed answers by hour of the week",
    "short_hours": "The team is short on {hours}.",
    "no_short_hours": "No hour of the week stands out.",
    "section_next": "What to do next",
    "empty_week": "No customer wrote to {account} this week.",
    "empty_all": (
        "No customer wrote to any of these accounts this week, so there is nothing to judge."
    ),
    "new_account": "First week: nothing to compare with.",
    "no_reviews": "No negative reviews this week.",
    "no_waiting": "Nobody is waiting right now.",
    "no_waits": "No waits this week.",
    "no_data": "–",
    "advice_ok": "Keep it up: every account met its targets.",
    "advice_waiting": "{count} customers are still waiting: answer them first.",
    "advice_staff": "Add cover on {hours}: that is when most missed answers arrive.",
    "advice_rate": (
        "{account} answered only {rate} within {deadline}: find out why messages go unanswered."
    ),
    "advice_time": (
        "{account} takes {mean} on average to answer, over the {target} target: "
        "speed up first replies."
    ),
    "advice_reviews": (
        "{count} negative reviews waited longer than {target}: answer unhappy reviewers first."
    ),
    "legend_arrivals": "Customers who wrote",
    "legend_missed": "Not answered within the target",
    "legend_short": "Short-staffed hours",
    "axis_hour": "Hour of the day",
    "axis_count": "Customers",
    "hour_range": "{day} {start}–{end}",
    "and_more": "and {count} more",
    "list_separator": ", ",
}

# Written for an Iranian manager: Persian yeh and kaf (U+06CC, U+06A9, not the Arabic ones),
# Persian digits, and the zero-width non-joiner (U+200C) where Persian spelling breaks a word.
_FA_TEXTS: Mapping[str, str] = {
    "title": "خلاصهٔ هفتگی پاسخ‌گویی",
    "period": "{start} تا {end}",
    "generated": "تهیه‌شده در {date}",
    "section_accounts": "عملکرد هر حساب",
    "col_account": "حساب",
    "col_channel": "کانال",
    "col_waits": "مشتریان",
    "col_rate": "پاسخ‌داده‌شده ظرف {deadline}",
    "col_within": "ظرف {target}",
    "col_mean": "میانگین زمان پاسخ",
    "col_median": "میانه",
    "col_p90": "۹۰٪ پاسخ‌ها ظرف",
    "col_badge": "نشان",
    "col_change": "نسبت به هفتهٔ قبل",
    "col_budget": "بودجهٔ خطای مصرف‌شده",
    "badge_held": "حفظ شد",
    "badge_lost": "حفظ نشد",
    "badge_unknown": "دادهٔ کافی نیست",
    "section_longest": "ده مورد از طولانی‌ترین انتظارها",
    "col_opened": "زمان پیام",
    "col_waited": "مدت انتظار",
    "col_status": "وضعیت",
    "status_answered": "پاسخ داده شد",
    "status_waiting": "هنوز در انتظار",
    "open_link": "مشاهده",
    "section_waiting": "مشتریانی که هم‌اکنون در انتظار پاسخ‌اند",
    "section_reviews": "نظرهای منفی (۱ تا ۲ ستاره)",
    "col_rating": "ستاره",
    "col_answered_in": "پاسخ پس از",
    "not_answered": "بی‌پاسخ",
    "section_hours": "پیام‌های رسیده و پاسخ‌های دیرهنگام در ساعت‌های هفته",
    "short_hours": "تیم در {hours} کمبود نیرو دارد.",
    "no_short_hours": "هیچ ساعتی از هفته به‌طور خاص برجسته نیست.",
    "section_next": "اقدام‌های بعدی",
    "empty_week": "این هفته هیچ مشتری‌ای به {account} پیام نداد.",
    "empty_all": (
        "این هفته هیچ مشتری‌ای به این حساب‌ها پیام نداد؛ بنابراین چیزی برای ارزیابی وجود ندارد."
    ),
    "new_account": "هفتهٔ نخست: چیزی برای مقایسه وجود ندارد.",
    "no_reviews": "این هفته هیچ نظر منفی‌ای ثبت نشد.",
    "no_waiting": "در حال حاضر کسی در انتظار پاسخ نیست.",
    "no_waits": "این هفته هیچ انتظاری ثبت نشد.",
    "no_data": "–",
    "advice_ok": "همین روند را ادامه دهید: همهٔ حساب‌ها به هدف‌های خود رسیدند.",
    "advice_waiting": "{count} مشتری هنوز منتظر پاسخ‌اند: اول به آن‌ها پاسخ دهید.",
    "advice_staff": (
        "برای {hours} نیروی بیشتری بگذارید: بیشتر پیام‌های بی‌پاسخ‌مانده در همین ساعت‌ها می‌رسند."
    ),
    "advice_rate": (
        "{account} فقط به {rate} از پیام‌ها ظرف {deadline} پاسخ داد: "
        "علت بی‌پاسخ ماندن پیام‌ها را بررسی کنید."
    ),
    "advice_time": (
        "زمان پاسخ {account} به‌طور میانگین {mean} است که از هدف {target} بیشتر است: "
        "نخستین پاسخ‌ها را سریع‌تر بدهید."
    ),
    "advice_reviews": (
        "{count} نظر منفی بیش از {target} منتظر پاسخ ماندند: اول به مشتریان ناراضی پاسخ دهید."
    ),
    "legend_arrivals": "مشتریانی که پیام دادند",
    "legend_missed": "بی‌پاسخ در مهلت هدف",
    "legend_short": "ساعت‌های کم‌نیرو",
    "axis_hour": "ساعت روز",
    "axis_count": "مشتریان",
    "hour_range": "{day} ساعت {start} تا {end}",
    "and_more": "و {count} مورد دیگر",
    "list_separator": "، ",
}


def _gregorian(value: dt.date) -> tuple[int, int, int]:
    return value.year, value.month, value.day


def _jalali(value: dt.date) -> tuple[int, int, int]:
    day = jdatetime.date.fromgregorian(date=value)
    return int(day.year), int(day.month), int(day.day)


@dataclass(frozen=True)
class Locale:
    """One language of the summary: its texts and how it writes numbers, durations and dates."""

    code: str
    direction: str
    font_family: str
    texts: Mapping[str, str] = field(repr=False)
    digits: str = field(repr=False)
    group_separator: str = field(repr=False)
    decimal_separator: str = field(repr=False)
    percent_pattern: str = field(repr=False)
    weekdays: tuple[str, ...] = field(repr=False)  # Monday first, as ISO and date.weekday()
    weekdays_short: tuple[str, ...] = field(repr=False)
    months: tuple[str, ...] = field(repr=False)  # of the locale's calendar, first month first
    calendar: Callable[[dt.date], tuple[int, int, int]] = field(repr=False)
    date_pattern: str = field(repr=False)
    date_short_names: bool = field(repr=False)  # "Mon", and ``months`` holds "Nov"
    date_time_pattern: str = field(repr=False)
    # Keys: "s", "min", "h", "h_min", "d", "d_h"; zero second parts are left out.
    duration_patterns: Mapping[str, str] = field(repr=False)
    pad_minutes: bool = field(repr=False)  # "3 h 05 min" lines up in an English table
    points_pattern: str = field(repr=False)
    week_pattern: str = field(repr=False)
    # Keys: "month" (same month), "year" (same year), "other"; the fields are d1, m1, y1, d2...
    range_patterns: Mapping[str, str] = field(repr=False)
    isolate: bool = field(repr=False)  # right-to-left text needs bidi isolates around LTR bits

    def text(self, key: str, **values: str) -> str:
        """The text for ``key`` with its ``{placeholders}`` filled from ``values``."""
        try:
            pattern = self.texts[key]
        except KeyError:
            raise LookupError(f"no text {key!r} in locale {self.code!r}") from None
        needed = _placeholders(pattern)
        missing = needed - values.keys()
        if missing:
            raise LookupError(f"text {key!r} needs {', '.join(sorted(missing))}")
        # As str.format does, values the text does not use are ignored.
        return pattern.format(**{name: self._embed(values[name]) for name in needed})

    def number(self, value: float, decimals: int = 0) -> str:
        """``value`` rounded half up to ``decimals`` places, grouped, in the locale's digits."""
        sign, digits = self._sign_and_digits(value, decimals)
        return self._wrap(sign + digits) if sign else digits

    def percent(self, ratio: float | None, decimals: int = 1) -> str:
        """A ratio (0.875) as a percentage ("87.5%"); None is "no data"."""
        if ratio is None:
            return self.text("no_data")
        sign, digits = self._sign_and_digits(ratio * 100, decimals)
        text = self.percent_pattern.format(sign + digits)
        return self._wrap(text) if sign else text

    def duration(self, seconds: float | None) -> str:
        """A wait in the largest two units that matter ("3 h 05 min"); None is "no data"."""
        if seconds is None:
            return self.text("no_data")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a duration must be a finite number of seconds >= 0, not {seconds}")
        return self._duration(seconds, sign="")

    def signed(self, delta: float | None, unit: str) -> str:
        """A change against last week with its sign: unit "points" or "duration"."""
        if unit not in ("points", "duration"):
            raise ValueError(f"unknown unit {unit!r} (known: points, duration)")
        if delta is None:
            return self.text("no_data")
        if not math.isfinite(delta):
            raise ValueError(f"a change must be a finite number, not {delta}")
        if unit == "points":
            sign, digits = self._sign_and_digits(delta, 1, plus=True)
            return self.points_pattern.format(self._wrap(sign + digits) if sign else digits)
        # The sign is decided on what is shown: -0.4 s shows as "0 s", without a sign.
        shown = math.floor(abs(delta))
        sign = "" if shown == 0 else ("+" if delta > 0 else _MINUS)
        return self._duration(abs(delta), sign=sign)

    def date(self, value: dt.date | dt.datetime, with_time: bool = False) -> str:
        """A day as "Mon 17 Nov 2026" (Jalali in Persian), optionally with the clock time."""
        year, month, day = self.calendar(value)
        names = self.weekdays_short if self.date_short_names else self.weekdays
        text = self.date_pattern.format(
            weekday=names[value.weekday()],
            day=self._digits(day),
            month=self.months[month - 1],
            year=self._digits(year),
        )
        if not with_time:
            return text
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{value.isoformat()} is a day: it has no time to show")
        clock = f"{self._digits(value.hour, 2)}:{self._digits(value.minute, 2)}"
        return self.date_time_pattern.format(date=text, time=clock)

    def weekday(self, index: int, short: bool = False) -> str:
        """The name of day ``index`` of the week, 0 being Monday."""
        if not 0 <= index <= 6:
            raise ValueError(f"weekday index must be 0 (Monday) to 6 (Sunday), not {index}")
        return (self.weekdays_short if short else self.weekdays)[index]

    def week_label(self, year: int, week: int, start: dt.date, end: dt.date) -> str:
        """ISO week ``week`` of ``year``, running from ``start`` to ``end`` (both included)."""
        if end < start:
            raise ValueError(f"week ends ({end}) before it starts ({start})")
        y1, m1, d1 = self.calendar(start)
        y2, m2, d2 = self.calendar(end)
        kind = "month" if (y1, m1) == (y2, m2) else "year" if y1 == y2 else "other"
        span = self.range_patterns[kind].format(
            d1=self._digits(d1),
            m1=self.months[m1 - 1],
            y1=self._digits(y1),
            d2=self._digits(d2),
            m2=self.months[m2 - 1],
            y2=self._digits(y2),
        )
        # Years and day numbers are names, not quantities: no thousands separator.
        return self.week_pattern.format(
            week=self._digits(week), year=self._digits(year), range=span
        )

    def _sign_and_digits(self, value: float, decimals: int, plus: bool = False) -> tuple[str, str]:
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} as a number")
        if decimals < 0:
            raise ValueError(f"decimals must be >= 0, not {decimals}")
        # Half up on the shortest decimal form, as people round: 2.675 -> 2.68, 0.5 -> 1.
        rounded = Decimal(repr(float(value))).quantize(
            Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP
        )
        sign = "" if rounded == 0 else _MINUS if rounded < 0 else "+" if plus else ""
        latin = f"{abs(rounded):,.{decimals}f}"
        table = str.maketrans(
            {",": self.group_separator, ".": self.decimal_separator}
            | {str(n): self.digits[n] for n in range(10)}
        )
        return sign, latin.translate(table)

    def _digits(self, value: int, width: int = 1) -> str:
        return "".join(self.digits[int(c)] for c in str(value).zfill(width))

    def _duration(self, seconds: float, sign: str) -> str:
        # Truncated, never rounded up: a customer who waited 59 min 59 s did not wait an hour.
        total = math.floor(seconds)
        minutes, hours, days = total // 60, total // 3600, total // 86400
        if total < 60:
            parts = ("s", total, 0)
        elif total < 3600:
            parts = ("min", minutes, 0)
        elif total < 86400:
            parts = ("h_min", hours, minutes % 60)
        else:
            parts = ("d_h", days, hours % 24)
        key, first, second = parts
        if key in ("h_min", "d_h") and second == 0:
            key = key.split("_")[0]
        head = sign + self._digits(first)
        tail = self._digits(second, 2 if self.pad_minutes and key == "h_min" else 1)
        return self.duration_patterns[key].format(self._wrap(head) if sign else head, tail)

    def _wrap(self, text: str) -> str:
        return f"{_LRI}{text}{_PDI}" if self.isolate else text

    def _embed(self, value: str) -> str:
        # Only values with left-to-right letters (an account like "@acme_shop") need isolating;
        # Persian words and Persian digits sit in right-to-left text as they are.
        if self.isolate and any(unicodedata.bidirectional(c) == "L" for c in value):
            return f"{_FSI}{value}{_PDI}"
        return value


def _placeholders(pattern: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(pattern) if name)


_EN = Locale(
    code="en",
    direction="ltr",
    font_family="'DejaVu Sans', Arial, Helvetica, sans-serif",
    texts=MappingProxyType(dict(_EN_TEXTS)),
    digits="0123456789",
    group_separator=",",
    decimal_separator=".",
    percent_pattern="{}%",
    weekdays=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    weekdays_short=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    months=("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    calendar=_gregorian,
    date_pattern="{weekday} {day} {month} {year}",
    date_short_names=True,
    date_time_pattern="{date} {time}",
    duration_patterns=MappingProxyType(
        {
            "s": "{} s",
            "min": "{} min",
            "h": "{} h",
            "h_min": "{} h {} min",
            "d": "{} d",
            "d_h": "{} d {} h",
        }
    ),
    pad_minutes=True,
    points_pattern="{} pts",
    week_pattern="Week {week}, {year} ({range})",
    range_patterns=MappingProxyType(
        {
            "month": "{d1}–{d2} {m1}",
            "year": "{d1} {m1} – {d2} {m2}",
            "other": "{d1} {m1} {y1} – {d2} {m2} {y2}",
        }
    ),
    isolate=False,
)

_FA = Locale(
    code="fa",
    direction="rtl",
    font_family=(
        "Vazirmatn, 'Noto Naskh Arabic', 'Noto Sans Arabic', Tahoma, 'DejaVu Sans', sans-serif"
    ),
    texts=MappingProxyType(dict(_FA_TEXTS)),
    digits="۰۱۲۳۴۵۶۷۸۹",
    group_separator="٬",
    decimal_separator="٫",
    percent_pattern="{}٪",
    # As in CLDR (what Iranian phones and browsers show); the short names are the full ones,
    # since one-letter Persian day names are ambiguous (ش is شنبه, and ی is یکشنبه).
    weekdays=("دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه", "یکشنبه"),
    weekdays_short=("دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه", "یکشنبه"),
    months=(
        "فروردین",
        "اردیبهشت",
        "خرداد",
        "تیر",
        "مرداد",
        "شهریور",
        "مهر",
        "آبان",
        "آذر",
        "دی",
        "بهمن",
        "اسفند",
    ),
    calendar=_jalali,
    date_pattern="{weekday} {day} {month} {year}",
    date_short_names=False,
    date_time_pattern="{date} ساعت {time}",
    duration_patterns=MappingProxyType(
        {
            "s": "{} ثانیه",
            "min": "{} دقیقه",
            "h": "{} ساعت",
            "h_min": "{} ساعت و {} دقیقه",
            "d": "{} روز",
            "d_h": "{} روز و {} ساعت",
        }
    ),
    pad_minutes=False,
    points_pattern="{} واحد درصد",
    # The ISO week number means nothing in the Jalali calendar: the Jalali days name the week.
    week_pattern="هفتهٔ {range}",
    range_patterns=MappingProxyType(
        {
            "month": "{d1} تا {d2} {m1} {y1}",
            "year": "{d1} {m1} تا {d2} {m2} {y1}",
            "other": "{d1} {m1} {y1} تا {d2} {m2} {y2}",
        }
    ),
    isolate=True,
)

_BY_CODE: Mapping[str, Locale] = MappingProxyType({"en": _EN, "fa": _FA})


def get_locale(code: str = "en") -> Locale:
    """The locale for ``code`` ("en" or "fa")."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(f"unknown locale {code!r} (known: {', '.join(LOCALES)})") from None
