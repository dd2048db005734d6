"""``replywatch summary``: one week's summary as HTML, PDF or Markdown (``monitor.summary``)."""

from __future__ import annotations

import argparse
from typing import TextIO

from monitor.cli.command import Subcommands, UsageError, parse_cli_time
from monitor.store.context import AppContext
from monitor.summary.command import SummaryUsageError, add_arguments, run_summary

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``summary`` and its options."""
    summary = commands.add_parser("summary", help="render a week's summary (html, pdf, md)")
    add_arguments(summary)
    summary.set_defaults(handler=_summary)


def _summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    as_of = parse_cli_time(args.as_of) if args.as_of else None
    context = AppContext.open(args.config, args.database)
    try:
        return run_summary(context, args, out, as_of)
    except SummaryUsageError as error:
        raise UsageError(str(error)) from None
    finally:
        context.close()
