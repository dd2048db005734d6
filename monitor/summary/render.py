"""The weekly summary as HTML (for mail and browsers), PDF (WeasyPrint) and Markdown.

One layout for every language: the locale supplies words, numbers, dates and the text
direction. Styles are inline (mail clients drop style sheets); the chart is a PNG either
embedded as a data URI (files, PDF) or referenced by Content-ID (mail).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from monitor.core.escaping import http_url, markdown_cell, markdown_url, one_line
from monitor.core.figures import Figures
from monitor.core.profiles import Targets
from monitor.summary.charts import hour_of_week_chart
from monitor.summary.data import AccountWeek, LongWait, WeekSummary
from monitor.summary.locale import Locale

__all__ = [
    "CHART_CID",
    "RenderedHtml",
    "advice_text",
    "render_html",
    "render_markdown",
    "render_pdf",
]

CHART_CID = "hour-of-week"
_SCREEN_FRAME = {
    "body": "padding:16px;background:#f5f6f8;",
    "page": "max-width:920px;padding:24px;border-radius:8px",
}
_PRINT_FRAME = {"body": "padding:0;", "page": "padding:0"}
_BAD, _GOOD, _MUTED = "#b42318", "#067647", "#667085"


@dataclass(frozen=True)
class RenderedHtml:
    """The HTML and the images it references by Content-ID (empty for data URIs)."""

    html: str
    images: dict[str, bytes]


def render_html(
    summary: WeekSummary,
    locale: Locale,
    images: Literal["data", "cid"] = "data",
    for_print: bool = False,
) -> RenderedHtml:
    """The summary as one self-contained HTML page (or a mail body with CID images)."""
    t, e = locale.text, html.escape
    chart = hour_of_week_chart(summary.arrivals, summary.missed, locale, summary.short_hours)
    if images == "data":
        src, attached = "data:image/png;base64," + base64.b64encode(chart).decode(), {}
    else:
        src, attached = f"cid:{CHART_CID}", {CHART_CID: chart}
    targets = _header_targets(summary)
    align = "right" if locale.direction == "rtl" else "left"
    # On screen and in mail a white card on grey; on paper the page margins are the frame.
    frame = _PRINT_FRAME if for_print else _SCREEN_FRAME
    parts = [
        f'<!DOCTYPE html><html lang="{locale.code}" dir="{locale.direction}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{e(t('title'))} {e(str(summary.week))}</title>"
        "<style>@page { size: A4 landscape; margin: 10mm 10mm; }</style></head>"
        f'<body dir="{locale.direction}" style="margin:0;{frame["body"]}'
        f"font-family:{e(locale.font_family)};color:#101828;font-size:14px;"
        f'line-height:1.5;text-align:{align}">'
        f'<div style="margin:0 auto;background:#ffffff;{frame["page"]}">',
        f'<h1 style="font-size:22px;margin:0 0 4px">{e(t("title"))}</h1>',
        f'<p style="margin:0;color:{_MUTED}">{e(_week_label(summary, locale))}'
        f" · {e(t('generated', date=locale.date(summary.as_of, with_time=True)))}</p>",
        _box(t("section_next"), e(advice_text(summary, locale))),
    ]
    parts.append(_h2(t("section_accounts")))
    if summary.empty:
        parts.append(_p(t("empty_all")))
    parts.append(_accounts_table(summary.accounts, locale, targets))
    parts.append(_h2(t("section_hours")))
    parts.append(
        f'<img src="{src}" alt="{e(t("section_hours"))}" width="860" '
        'style="width:100%;max-width:860px;height:auto;display:block">'
    )
    if summary.short_hours:
        parts.append(_p(t("short_hours", hours=hours_text(summary.short_hours, locale))))
    else:
        parts.append(_p(t("no_short_hours")))
    parts.append(_h2(t("section_longest")))
    parts.append(_waits_table(summary.longest_waits, locale, t("no_waits")))
    parts.append(_h2(t("section_waiting")))
    waiting = _waits_table(summary.waiting_now, locale, t("no_waiting"))
    more = summary.waiting_now_total - len(summary.waiting_now)
    parts.append(waiting + (_p(t("and_more", count=locale.number(more))) if more > 0 else ""))
    parts.append(_h2(t("section_reviews")))
    parts.append(_waits_table(summary.negative_reviews, locale, t("no_reviews"), stars=True))
    parts.append("</div></body></html>")
    return RenderedHtml("".join(parts), attached)


def render_pdf(summary: WeekSummary, locale: Locale) -> bytes:
    """The same page as PDF (WeasyPrint, imported here: it is heavy and only PDF needs it)."""
    import weasyprint

    page = render_html(summary, locale, images="data", for_print=True).html
    pdf: bytes = weasyprint.HTML(string=_classes_for_print(page)).write_pdf()
    return pdf


def _classes_for_print(page: str) -> str:
    """Move the cells' inline styles into one style sheet (WeasyPrint parses each attribute).

    At 1,000 accounts this halves the PDF time. ``<bdi>`` becomes ``unicode-bidi: isolate`` on
    the cell, which WeasyPrint honours and which lays out faster.
    """
    styles: dict[str, str] = {}

    def to_class(match: re.Match[str]) -> str:
        name = styles.setdefault(match.group(2), f"c{len(styles)}")
        return f'<{match.group(1)} class="{name}"'

    page = re.sub(r'<(td|th) style="([^"]*)"', to_class, page)
    page = page.replace("<bdi>", "").replace("</bdi>", "")
    sheet = "td{unicode-bidi:isolate}" + "".join(f".{n}{{{s}}}" for s, n in styles.items())
    return page.replace("</style>", sheet + "</style>", 1)


def render_markdown(summary: WeekSummary, locale: Locale) -> str:
    """A plain-text version (chat digests, terminals, version control)."""
    t = locale.text
    lines = [
        f"# {t('title')}",
        "",
        _week_label(summary, locale),
        "",
        f"**{t('section_next')}:** {one_line(advice_text(summary, locale))}",
        "",
        f"## {t('section_accounts')}",
        "",
    ]
    if summary.empty:
        lines += [t("empty_all"), ""]
    targets = _header_targets(summary)
    header = _account_columns(locale, targets)
    lines += [_markdown_row(header), "|" + "---|" * len(header)]
    for account in summary.accounts:
        for label, cells in _account_rows(account, locale):
            lines.append(_markdown_row([label, *cells]))
    lines += ["", f"## {t('section_hours')}", ""]
    lines.append(
        t("short_hours", hours=hours_text(summary.short_hours, locale))
        if summary.short_hours
        else t("no_short_hours")
    )
    for title, waits, empty, stars in (
        (t("section_longest"), summary.longest_waits, t("no_waits"), False),
        (t("section_waiting"), summary.waiting_now, t("no_waiting"), False),
        (t("section_reviews"), summary.negative_reviews, t("no_reviews"), True),
    ):
        lines += ["", f"## {title}", ""]
        if not waits:
            lines.append(empty)
            continue
        columns = _wait_columns(locale, stars)
        lines += [_markdown_row(columns), "|" + "---|" * len(columns)]
        for wait in waits:
            cells = [markdown_cell(cell) for cell in _wait_cells(wait, locale, stars)]
            # Only a clean http(s) address becomes a link: never javascript: or data:.
            url = http_url(wait.link) if wait.link else None
            if url:
                cells.append(f"[{markdown_cell(t('open_link'))}]({markdown_url(url)})")
            else:
                cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown_row(cells: Sequence[str]) -> str:
    # Names come from imported files: a "|" or a line break in one would split the row.
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"


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


def _account_rows(account: AccountWeek, locale: Locale) -> list[tuple[str, list[str]]]:
    t = locale.text
    cells = [
        *_figure_cells(account.this_week, locale),
        _badge(account.this_week, locale),
        _change(account, locale),
        locale.percent(account.budget_used),
    ]
    rows = [(f"{account.account} ({account.platform})", cells)]
    if account.this_week.waits == 0:
        rows[0][1][:] = [t("empty_week", account=account.account)] + [""] * 8
    # One channel: its row would repeat the account's.
    if len(account.channels) > 1:
        for channel, figures in account.channels:
            rows.append((f"· {channel}", [*_figure_cells(figures, locale), "", "", ""]))
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


def _accounts_table(accounts: Sequence[AccountWeek], locale: Locale, targets: Targets) -> str:
    head = "".join(_th(c) for c in _account_columns(locale, targets))
    body = []
    for account in accounts:
        for index, (label, cells) in enumerate(_account_rows(account, locale)):
            weight = "600" if index == 0 else "400"
            colours = _cell_colours(account, index == 0)
            tds = [_td(label, weight=weight)]
            if account.this_week.waits == 0:
                # "Nobody wrote" reads across the row, not squeezed into one column.
                span = len(cells)
                tds.append(_td(cells[0]).replace("<td ", f'<td colspan="{span}" ', 1))
            else:
                tds += [_td(cell, colour=colours.get(i)) for i, cell in enumerate(cells)]
            body.append("<tr>" + "".join(tds) + "</tr>")
    return _table(head, body)


def _cell_colours(account: AccountWeek, top: bool) -> dict[int, str]:
    if not top or account.this_week.waits == 0:
        return {}
    figures, targets = account.this_week, account.targets
    colours: dict[int, str] = {}
    if figures.response_rate is not None:
        colours[1] = _GOOD if figures.response_rate >= targets.rate_target else _BAD
    if figures.mean_response_seconds is not None:
        ok = figures.mean_response_seconds <= targets.response_target.total_seconds()
        colours[3] = _GOOD if ok else _BAD
    if figures.target_met is not None:
        colours[6] = _GOOD if figures.target_met else _BAD
    return colours


def _waits_table(waits: Sequence[LongWait], locale: Locale, empty: str, stars: bool = False) -> str:
    if not waits:
        return _p(empty)
    head = "".join(_th(c) for c in _wait_columns(locale, stars))
    body = []
    for wait in waits:
        cells = [_td(c) for c in _wait_cells(wait, locale, stars)]
        url = http_url(wait.link) if wait.link else None
        link = (
            (
                f'<a href="{html.escape(url)}" style="color:#175cd3">'
                f"{html.escape(locale.text('open_link'))}</a>"
            )
            if url
            else ""
        )
        body.append("<tr>" + "".join(cells) + _td_raw(link) + "</tr>")
    return _table(head, body)


def _table(head: str, rows: list[str]) -> str:
    return (
        '<table role="presentation" cellspacing="0" cellpadding="0" style="border-collapse:'
        'collapse;width:100%;font-size:12px;margin:4px 0 12px">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _th(text: str) -> str:
    return (
        '<th style="padding:5px 6px;border-bottom:2px solid #d0d5dd;text-align:start;'
        f'color:#344054;font-weight:600">{html.escape(text)}</th>'
    )


def _td(text: str, weight: str = "400", colour: str | None = None) -> str:
    # Figures stay on one line ("14 h 24 min" broken over three lines is unreadable).
    wrap = "normal" if len(text) > 24 else "nowrap"
    style = (
        f"padding:5px 6px;border-bottom:1px solid #eaecf0;font-weight:{weight};white-space:{wrap}"
    )
    if colour:
        style += f";color:{colour}"
    # Names and numbers keep their own direction inside right-to-left text.
    return f'<td style="{style}"><bdi>{html.escape(text)}</bdi></td>'


def _td_raw(content: str) -> str:
    return f'<td style="padding:6px 8px;border-bottom:1px solid #eaecf0">{content}</td>'


def _h2(text: str) -> str:
    return f'<h2 style="font-size:17px;margin:22px 0 6px">{html.escape(text)}</h2>'


def _p(text: str) -> str:
    return f'<p style="margin:4px 0 10px">{html.escape(text)}</p>'


def _box(title: str, body_html: str) -> str:
    return (
        '<div style="margin:16px 0;padding:12px 14px;background:#eff8ff;border-radius:6px;'
        f'border-inline-start:4px solid #175cd3"><strong>{html.escape(title)}:</strong> '
        f"{body_html}</div>"
    )
