"""The summary in one language: every text and table cell a reader sees, whatever the format.

Built from a composed ``WeekSummary`` and a ``Locale``. The HTML templates and the Markdown
writer lay out the same ``SummaryPage``, so the mail, the PDF and the text cannot disagree on
what they say. Texts here are plain: each format escapes them for itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from monitor.core.escaping import http_url
from monitor.core.figures import Figures
from monitor.core.profiles import Targets
from monitor.summary.compose import AccountWeek, LongWait, WeekSummary
from monitor.summary.locale import Locale

__all__ = [
    "Cell",
    "Row",
    "SummaryPage",
    "Table",
    "WaitList",
    "advice_text",
    "hours_text",
    "summary_page",
]

Tone = Literal["good", "bad"]


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, and how it stands out."""

    text: str
    strong: bool = False  # an account's own row, above its channels
    tone: Tone | None = None  # a figure that met ("good") or missed ("bad") its target


@dataclass(frozen=True)
class Row:
    """One table row."""

    cells: tuple[Cell, ...]
    # The second cell reads across the rest of the row ("nobody wrote") in HTML; Markdown
    # keeps every cell so its columns stay aligned.
    spans: bool = False
    link: str | None = None  # a clean http(s) address of the thread: never javascript: or data:


@dataclass(frozen=True)
class Table:
    """A table with its column titles."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    links: bool = False  # the last column opens each row's thread


@dataclass(frozen=True)
class WaitList:
    """One list of waits: a table, or a sentence when there is none."""

    title: str
    empty: str
    table: Table | None
    more: str | None = None  # "and 12 more" under a list that was cut short


@dataclass(frozen=True)
class SummaryPage:
    """Everything the summary says, in the reader's language, in reading order."""

    code: str
    direction: str
    align: str
    font_family: str
    title: str
    week: str
    week_label: str
    generated: str
    next_title: str
    advice: str
    accounts_title: str
    empty_all: str | None
    accounts: Table
    hours_title: str
    hours_note: str
    lists: tuple[WaitList, ...]
    open_link: str


def summary_page(summary: WeekSummary, locale: Locale) -> SummaryPage:
    """The page of ``summary`` in ``locale``'s words, numbers and dates."""
    t = locale.text
    targets = _header_targets(summary)
    if summary.short_hours:
        hours_note = t("short_hours", hours=hours_text(summary.short_hours, locale))
    else:
        hours_note = t("no_short_hours")
    more = summary.waiting_now_total - len(summary.waiting_now)
    return SummaryPage(
        code=locale.code,
        direction=locale.direction,
        align="right" if locale.direction == "rtl" else "left",
        font_family=locale.font_family,
        title=t("title"),
        week=str(summary.week),
        week_label=_week_label(summary, locale),
        generated=t("generated", date=locale.date(summary.as_of, with_time=True)),
        next_title=t("section_next"),
        advice=advice_text(summary, locale),
        accounts_title=t("section_accounts"),
        empty_all=t("empty_all") if summary.empty else None,
        accounts=Table(
            tuple(_account_columns(locale, targets)),
            tuple(row for account in summary.accounts for row in _account_rows(account, locale)),
        ),
        hours_title=t("section_hours"),
        hours_note=hours_note,
        lists=(
            _wait_list(t("section_longest"), summary.longest_waits, locale, t("no_waits")),
            _wait_list(
                t("section_waiting"),
                summary.waiting_now,
                locale,
                t("no_waiting"),
                more=t("and_more", count=locale.number(more)) if more > 0 else None,
            ),
            _wait_list(
                t("section_reviews"),
                summary.negative_reviews,
                locale,
                t("no_reviews"),
                stars=True,
            ),
        ),
        open_link=t("open_link"),
    )


def advice_text(summary: WeekSummary, locale: Locale) -> str:
    """The one "what to do next" line, in the locale's words."""
    key, params = summary.advice
    values: dict[str, str] = {}
    for name, value in params.items():
        if name == "count":
            values[name] = locale.number(float(value))  # type: ignore[arg-type]
        elif name == "hours":
            values[name] = hours_text(value, locale)  # type: ignore[arg-type]
        elif name == "rate":
            values[name] = locale.percent(value)  # type: ignore[arg-type]
        elif isinstance(value, timedelta):
            values[name] = locale.duration(value.total_seconds())
        elif name == "mean":
            values[name] = locale.duration(value)  # type: ignore[arg-type]
        else:
            values[name] = str(value)
    return locale.text(key, **values)


def hours_text(hours: Iterable[int], locale: Locale) -> str:
    """Hours of the week as "Mon 18:00-19:00, Tue 09:00-10:00" (runs merged)."""
    ranges: list[tuple[int, int]] = []
    for hour in sorted(hours):
        if ranges and ranges[-1][1] == hour and hour % 24:
            ranges[-1] = (ranges[-1][0], hour + 1)
        else:
            ranges.append((hour, hour + 1))
    texts = [
        locale.text(
            "hour_range",
            day=locale.weekday(start // 24, short=True),
            start=_clock(start % 24, locale),
            end=_clock((end - 1) % 24 + 1, locale),
        )
        for start, end in ranges
    ]
    return locale.text("list_separator").join(texts)


def _week_label(summary: WeekSummary, locale: Locale) -> str:
    week = summary.week
    return locale.week_label(
        week.year, week.week, week.first_day, week.first_day + timedelta(days=6)
    )


def _clock(hour: int, locale: Locale) -> str:
    digits = locale.number(hour)
    pad = locale.number(0) if hour < 10 else ""
    return f"{pad}{digits}:{locale.number(0)}{locale.number(0)}"


def _header_targets(summary: WeekSummary) -> Targets:
    # Column headers name the targets; accounts on other profiles show theirs in their cells.
    return summary.accounts[0].targets if summary.accounts else Targets()


def _account_columns(locale: Locale, targets: Targets) -> list[str]:
    t = locale.text
    return [
        t("col_account"),
        t("col_waits"),
        t("col_rate", deadline=locale.duration(targets.reply_deadline.total_seconds())),
        t("col_within", target=locale.duration(targets.response_target.total_seconds())),
        t("col_mean"),
        t("col_median"),
        t("col_p90"),
        t("col_badge"),
        t("col_change"),
        t("col_budget"),
    ]


def _account_rows(account: AccountWeek, locale: Locale) -> list[Row]:
    quiet = account.this_week.waits == 0
    if quiet:
        # "Nobody wrote" reads across the row, not squeezed into one column.
        top = [locale.text("empty_week", account=account.account)] + [""] * 8
    else:
        top = [
            *_figure_cells(account.this_week, locale),
            _badge(account.this_week, locale),
            _change(account, locale),
            locale.percent(account.budget_used),
        ]
    tones = {} if quiet else _tones(account)
    label = f"{account.account} ({account.platform})"
    rows = [
        Row(
            (
                Cell(label, strong=True),
                *(Cell(text, tone=tones.get(i)) for i, text in enumerate(top)),
            ),
            spans=quiet,
        )
    ]
    # One channel: its row would repeat the account's.
    if len(account.channels) > 1:
        for channel, figures in account.channels:
            cells = [f"· {channel}", *_figure_cells(figures, locale), "", "", ""]
            # As ever, a quiet account's rows all read across (its channels show their count).
            rows.append(Row(tuple(Cell(text) for text in cells), spans=quiet))
    return rows


def _figure_cells(figures: Figures, locale: Locale) -> list[str]:
    return [
        locale.number(figures.waits),
        locale.percent(figures.response_rate),
        locale.percent(figures.within_target_share),
        locale.duration(figures.mean_response_seconds),
        locale.duration(figures.median_response_seconds),
        locale.duration(figures.p90_response_seconds),
    ]


def _badge(figures: Figures, locale: Locale) -> str:
    if figures.target_met is None:
        return locale.text("badge_unknown")
    return locale.text("badge_held" if figures.target_met else "badge_lost")


def _change(account: AccountWeek, locale: Locale) -> str:
    last, now = account.last_week, account.this_week
    if last is None:
        return locale.text("new_account")
    rate = None
    if now.response_rate is not None and last.response_rate is not None:
        rate = (now.response_rate - last.response_rate) * 100
    mean = None
    if now.mean_response_seconds is not None and last.mean_response_seconds is not None:
        mean = now.mean_response_seconds - last.mean_response_seconds
    return f"{locale.signed(rate, 'points')} / {locale.signed(mean, 'duration')}"


def _tones(account: AccountWeek) -> dict[int, Tone]:
    # Keyed by the index of the figure cell: 1 is the response rate, 3 the mean, 6 the badge.
    figures, targets = account.this_week, account.targets
    tones: dict[int, Tone] = {}
    if figures.response_rate is not None:
        tones[1] = "good" if figures.response_rate >= targets.rate_target else "bad"
    if figures.mean_response_seconds is not None:
        ok = figures.mean_response_seconds <= targets.response_target.total_seconds()
        tones[3] = "good" if ok else "bad"
    if figures.target_met is not None:
        tones[6] = "good" if figures.target_met else "bad"
    return tones


def _wait_list(
    title: str,
    waits: Sequence[LongWait],
    locale: Locale,
    empty: str,
    stars: bool = False,
    more: str | None = None,
) -> WaitList:
    if not waits:
        return WaitList(title, empty, None, more)
    rows = tuple(
        Row(
            tuple(Cell(text) for text in _wait_cells(wait, locale, stars)),
            # Only a clean http(s) address becomes a link: never javascript: or data:.
            link=http_url(wait.link) if wait.link else None,
        )
        for wait in waits
    )
    return WaitList(title, empty, Table(tuple(_wait_columns(locale, stars)), rows, True), more)


def _wait_columns(locale: Locale, stars: bool) -> list[str]:
    t = locale.text
    first = [t("col_rating")] if stars else []
    return [
        *first,
        t("col_account"),
        t("col_channel"),
        t("col_opened"),
        t("col_answered_in") if stars else t("col_waited"),
        t("col_status"),
        "",
    ]


def _wait_cells(wait: LongWait, locale: Locale, stars: bool) -> list[str]:
    t = locale.text
    first = [locale.number(wait.rating or 0)] if stars else []
    taken = locale.duration(wait.waited_seconds)
    if stars and not wait.answered:
        taken = t("not_answered")
    status = t("status_answered" if wait.answered else "status_waiting")
    return [
        *first,
        wait.account,
        wait.channel,
        locale.date(wait.opened_at, with_time=True),
        taken,
        status,
    ]
