"""The weekly summary as HTML (for mail and browsers), PDF (WeasyPrint) and Markdown.

One page for every language (``monitor.summary.page``): the locale supplies words, numbers,
dates and the text direction. HTML comes from the Jinja templates in ``templates/``, with
autoescape on for every template, so a name or link from a platform is always text; nothing
here marks a value as safe markup. The chart is a PNG either embedded as a data URI (files,
PDF) or referenced by Content-ID (mail).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined

from monitor.core.escaping import markdown_cell, markdown_url, one_line
from monitor.summary.charts import hour_of_week_chart
from monitor.summary.compose import WeekSummary
from monitor.summary.locale import Locale
from monitor.summary.page import Table, summary_page

__all__ = [
    "CHART_CID",
    "RenderedHtml",
    "render_html",
    "render_markdown",
    "render_pdf",
]

CHART_CID = "hour-of-week"


@dataclass(frozen=True)
class RenderedHtml:
    """The HTML and the images it references by Content-ID (empty for data URIs)."""

    html: str
    images: dict[str, bytes]


@cache
def templates() -> Environment:
    """The summary's templates: HTML only, so every one of them escapes what it is given."""
    return Environment(
        loader=PackageLoader("monitor.summary", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt field fails the render, never shows as blank
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    summary: WeekSummary,
    locale: Locale,
    images: Literal["data", "cid"] = "data",
    for_print: bool = False,
) -> RenderedHtml:
    """The summary as one self-contained HTML page (or a mail body with CID images)."""
    chart = hour_of_week_chart(summary.arrivals, summary.missed, locale, summary.short_hours)
    if images == "data":
        src, attached = "data:image/png;base64," + base64.b64encode(chart).decode(), {}
    else:
        src, attached = f"cid:{CHART_CID}", {CHART_CID: chart}
    template = templates().get_template("print.html" if for_print else "summary.html")
    page = template.render(page=summary_page(summary, locale), chart_src=src)
    return RenderedHtml(page, attached)


def render_pdf(summary: WeekSummary, locale: Locale) -> bytes:
    """The same page as PDF (WeasyPrint, imported here: it is heavy and only PDF needs it)."""
    import weasyprint

    page = render_html(summary, locale, images="data", for_print=True).html
    pdf: bytes = weasyprint.HTML(string=page).write_pdf()
    return pdf


def render_markdown(summary: WeekSummary, locale: Locale) -> str:
    """A plain-text version (chat digests, terminals, version control)."""
    page = summary_page(summary, locale)
    lines = [
        f"# {page.title}",
        "",
        page.week_label,
        "",
        f"**{page.next_title}:** {one_line(page.advice)}",
        "",
        f"## {page.accounts_title}",
        "",
    ]
    if page.empty_all is not None:
        lines += [page.empty_all, ""]
    lines += _markdown_table(page.accounts, page.open_link)
    lines += ["", f"## {page.hours_title}", "", page.hours_note]
    for waits in page.lists:
        lines += ["", f"## {waits.title}", ""]
        lines += (
            [waits.empty] if waits.table is None else _markdown_table(waits.table, page.open_link)
        )
    return "\n".join(lines) + "\n"


def _markdown_table(table: Table, open_link: str) -> list[str]:
    lines = [_markdown_row(table.columns), "|" + "---|" * len(table.columns)]
    for row in table.rows:
        cells = [markdown_cell(cell.text) for cell in row.cells]
        if table.links:
            # Only a clean http(s) address is a link (page.py never keeps another).
            url = row.link
            cells.append(f"[{markdown_cell(open_link)}]({markdown_url(url)})" if url else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown_row(cells: Sequence[str]) -> str:
    # Names come from imported files: a "|" or a line break in one would split the row.
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"
