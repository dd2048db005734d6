"""The summary's HTML templates: escaping always on, and the paper page says what the mail says."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import monitor.summary
from monitor.summary.compose import WeekSummary
from monitor.summary.locale import get_locale
from monitor.summary.render import render_html, render_markdown, templates
from tests.monitor.test_output_escaping import FIGURES, hostile_summary

SUMMARY = Path(monitor.summary.__file__).parent
HOSTILE = '<img src=x onerror="alert(1)">'


class Outline(HTMLParser):
    """Tags (without style, class or <bdi>) and whitespace-normalised texts, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, ...]] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        if tag != "bdi":
            kept = sorted(f"{k}={v}" for k, v in attrs if k not in ("style", "class"))
            self.items.append((tag, *kept))

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        if tag != "bdi":
            self.items.append(("/" + tag,))

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self.in_style:
            self.items.append(("text", text))


def outline(page: str) -> list[tuple[str, ...]]:
    """The page's outline (see ``Outline``)."""
    parser = Outline()
    parser.feed(page)
    parser.close()
    return parser.items


def week(names: list[str]) -> WeekSummary:
    """A week with these accounts, one of them quiet (nobody wrote)."""
    summary = hostile_summary(names, "https://shop.example/t/1")
    quiet = dataclasses.replace(FIGURES, waits=0)
    accounts = (
        *summary.accounts,
        dataclasses.replace(summary.accounts[0], account="quiet", this_week=quiet),
    )
    return dataclasses.replace(summary, accounts=accounts)


def test_every_template_escapes_and_none_switches_it_off() -> None:
    """Autoescape is on, and no template or module marks a value as safe markup."""
    names = sorted(path.name for path in (SUMMARY / "templates").iterdir())
    assert names == ["layout.html", "parts.html", "print.html", "summary.html"]
    for name in names:
        template = templates().get_template(name)
        assert template.environment.autoescape is True
        text = (SUMMARY / "templates" / name).read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape" not in text
    for module in SUMMARY.glob("*.py"):
        assert "Markup" not in module.read_text(), module.name


def test_a_name_with_markup_is_text_in_mail_and_on_paper() -> None:
    """A name that is HTML shows as its characters, in the mail page and the print page."""
    locale = get_locale("en")
    for page in (
        render_html(week([HOSTILE]), locale).html,
        render_html(week([HOSTILE]), locale, for_print=True).html,
    ):
        assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
        assert ("text", f"{HOSTILE} (facebook)") in outline(page)


def test_the_print_page_says_what_the_mail_says() -> None:
    """Same tags and texts in both languages; on paper cells use the sheet and carry no <bdi>."""
    for code in ("en", "fa"):
        locale = get_locale(code)
        summary = week(["shop", "@acme_shop"])
        mail = render_html(summary, locale).html
        paper = render_html(summary, locale, for_print=True).html
        assert outline(mail) == outline(paper)
        assert "<bdi>" in mail and 'class="' not in mail
        assert "<bdi>" not in paper and "<td style=" not in paper and "<th style=" not in paper
        sheet = paper[paper.index("<style>") : paper.index("</style>")]
        used = set(" ".join(re.findall(r'class="([^"]*)"', paper)).split())
        assert used and all(f".{name} " in sheet for name in used)


def test_a_quiet_account_reads_across_its_row_in_html_only() -> None:
    """In HTML "nobody wrote" spans the figure columns; Markdown keeps every column."""
    locale = get_locale("en")
    summary = week(["shop"])
    page = render_html(summary, locale).html
    assert re.search(r'<td colspan="9" [^>]*><bdi>No customer wrote to quiet this week\.', page)
    row = next(
        line for line in render_markdown(summary, locale).splitlines() if line.startswith("| quiet")
    )
    assert row.count("|") == 11  # ten cells, as in the header
