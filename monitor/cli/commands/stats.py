"""``replywatch stats``: response figures per account (or channel, or tier) over a window."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TextIO

from monitor.cli.command import EXIT_OK, EXIT_PROBLEMS, Subcommands, UsageError, parse_cli_time
from monitor.cli.report_formats import render
from monitor.store.context import AppContext
from monitor.store.stats import account_stats

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``stats`` and its options."""
    stats = commands.add_parser("stats", help="print response figures per account")
    stats.add_argument(
        "--from",
        dest="start",
        type=parse_cli_time,
        metavar="TIME",
        help="window start (default: the profile's window before --to)",
    )
    stats.add_argument(
        "--to",
        dest="end",
        type=parse_cli_time,
        metavar="TIME",
        help="window end, exclusive (default: --as-of)",
    )
    stats.add_argument(
        "--as-of",
        dest="as_of",
        type=parse_cli_time,
        metavar="TIME",
        help="evaluate as if it were this time (default: now); times without an offset are UTC",
    )
    stats.add_argument("--profile", help="judge every account by this profile")
    stats.add_argument("--by", choices=("account", "channel", "tier"), default="account")
    stats.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME",
        help="only this account (repeatable)",
    )
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    stats.set_defaults(handler=_stats)


def _stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = AppContext.open(args.config, args.database)
    try:
        profile = None
        if args.profile:
            try:
                profile = context.config.profile(args.profile)
            except KeyError as error:
                raise UsageError(str(error.args[0])) from None
        as_of = args.as_of or datetime.now(UTC)
        if args.start and args.end and args.start >= args.end:
            raise UsageError("--from must be before --to")
        with context.engine.connect() as connection:
            rows = account_stats(
                connection,
                context.accounts,
                as_of=as_of,
                start=args.start,
                end=args.end,
                profile=profile,
                by=args.by,
                accounts=args.account,
            )
        missing = set(args.account) - {row.account for row in rows}
        for name in sorted(missing):
            print(f"replywatch: no account named {name!r} in the store", file=err)
        group = None if args.by == "account" else args.by
        out.write(render(rows, args.format, group))
        if args.format == "json":
            out.write("\n")
        return EXIT_PROBLEMS if missing else EXIT_OK
    finally:
        context.close()
