"""``replywatch summary``: render one week's summary to a file or the terminal."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from monitor.config.loading import Config
from monitor.store.context import AppContext
from monitor.summary.compose import IsoWeek, WeekSummary
from monitor.summary.data import summarise_week
from monitor.summary.locale import get_locale

__all__ = [
    "FORMATS",
    "SummaryUsageError",
    "add_arguments",
    "parse_week",
    "render",
    "run_summary",
    "select_accounts",
]

FORMATS = ("html", "pdf", "md")


class SummaryUsageError(ValueError):
    """A summary option that cannot be honoured (the message says which)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``replywatch summary``."""
    parser.add_argument("--week", default="last", help="ISO week, e.g. 2026-W47 (default: last)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME",
        help="only this account (repeatable)",
    )
    which.add_argument("--group", metavar="NAME", help="the accounts of this config group")
    parser.add_argument("--format", choices=FORMATS, help="default: from --out, else md")
    parser.add_argument("--out", metavar="FILE", help="write here (default: the terminal)")
    parser.add_argument("--locale", choices=("en", "fa"), help="default: [summary] locale")
    parser.add_argument(
        "--as-of", dest="as_of", metavar="TIME", help="judge as if it were this time (default: now)"
    )


def parse_week(text: str, zone: str) -> IsoWeek:
    """``2026-W47`` (or ``last`` for the last complete week) in the given time zone."""
    if text == "last":
        today = datetime.now(ZoneInfo(zone)).date()
        year, week, _ = (today - timedelta(days=7)).isocalendar()
        return IsoWeek(year, week, zone)
    match = re.fullmatch(r"(\d{4})-W(\d{2})", text.strip())
    if match is None:
        raise ValueError(f"--week {text!r} is not an ISO week like 2026-W47 (or 'last')")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"--week {text!r}: {year} has no week {week}") from None
    return IsoWeek(year, week, zone)


def select_accounts(config: Config, accounts: Sequence[str], group: str | None) -> list[str]:
    """Account names for --account/--group (empty: every account in the store)."""
    if group is not None:
        members = [a.name for a in config.accounts.values() if a.group == group]
        if not members:
            groups = sorted({a.group for a in config.accounts.values() if a.group})
            raise SummaryUsageError(
                f"no accounts in group {group!r} (groups: {', '.join(groups) or 'none'})"
            )
        return members
    return list(accounts)


def render(summary: WeekSummary, fmt: str, locale_code: str) -> bytes:
    """The summary in one format, as bytes ready to write or attach."""
    # Imported here: matplotlib and WeasyPrint take half a second, and every other command
    # (and every restart of `run`) would pay for it.
    from monitor.summary.render import render_html, render_markdown, render_pdf

    locale = get_locale(locale_code)
    if fmt == "pdf":
        return render_pdf(summary, locale)
    if fmt == "html":
        return render_html(summary, locale).html.encode()
    return render_markdown(summary, locale).encode()


def run_summary(
    context: AppContext, args: argparse.Namespace, out: TextIO, as_of: datetime | None
) -> int:
    """Render the summary the options ask for."""
    config = context.config
    zone = config.summary.timezone or config.default_timezone
    try:
        week = parse_week(args.week, zone)
    except ValueError as error:
        raise SummaryUsageError(str(error)) from None
    fmt = args.format or _format_of(args.out)
    if fmt == "pdf" and not args.out:
        raise SummaryUsageError("--format pdf needs --out FILE")
    names = select_accounts(config, args.account, args.group)
    moment = as_of or datetime.now(UTC)
    with context.engine.connect() as connection:
        summary = summarise_week(connection, context.accounts, week, moment, names)
    if args.account and not summary.accounts:
        raise SummaryUsageError(f"no such account in the store: {', '.join(args.account)}")
    body = render(summary, fmt, args.locale or config.summary.locale)
    if args.out:
        Path(args.out).write_bytes(body)
        print(
            f"wrote {args.out}: summary of {week} for {len(summary.accounts)} account(s)", file=out
        )
    else:
        out.write(body.decode())
    return 0


def _format_of(path: str | None) -> str:
    if path is None:
        return "md"
    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "md"
    known = {"html": "html", "htm": "html", "pdf": "pdf", "md": "md", "markdown": "md"}
    if suffix not in known:
        # A file named .docx holding Markdown would open as garbage: refuse, name the choices.
        raise SummaryUsageError(
            f"cannot tell the format from {Path(path).name!r}: name it .md, .html or .pdf, "
            "or pass --format"
        )
    return known[suffix]
