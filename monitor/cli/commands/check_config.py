"""``replywatch check-config``: validate the config (and its secret references) and exit."""

from __future__ import annotations

import argparse
from typing import TextIO

from monitor.cli.command import EXIT_OK, EXIT_USAGE, Subcommands, UsageError
from monitor.config.loading import default_config_path, load_config

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``check-config`` and its options."""
    check = commands.add_parser("check-config", help="validate the config and exit")
    check.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not check that env:/file: secret references resolve",
    )
    check.set_defaults(handler=_check_config)


def _check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = args.config or default_config_path()
    if path is None:
        raise UsageError("no config given: use --config FILE or set REPLYWATCH_CONFIG")
    config = load_config(path)
    problems = [] if args.no_secrets else config.secret_problems()
    for problem in problems:
        print(problem, file=err)
    if problems:
        return EXIT_USAGE
    print(
        f"{path}: OK: {len(config.accounts)} account(s), {len(config.profiles)} profile(s)",
        file=out,
    )
    return EXIT_OK
