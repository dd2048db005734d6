"""The ``replywatch`` command line: parse, set up logging, run the command, map errors.

Exit codes: 0 success; 1 the command ran but found problems (bad rows skipped); 2 unusable
input (config, arguments, database). Errors are one line each, never a traceback. Each
command is a module of ``monitor.cli.commands``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from monitor.cli import logging_setup
from monitor.cli.command import EXIT_USAGE, UsageError
from monitor.cli.parser import build_parser
from monitor.config.loading import ConfigError, default_config_path, load_config
from monitor.config.secrets import SecretError
from monitor.store.engine import StoreError, choose_database, database_errors, database_failure

__all__ = ["main"]


def _database_of(args: argparse.Namespace) -> str:
    # The store the command used, found again for an error message (the config loaded before).
    try:
        configured = load_config(args.config or default_config_path()).database
    except ConfigError:
        configured = None
    return choose_database(args.database, configured)


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        # An argument's type can refuse a value (a time that is not ISO 8601).
        args = build_parser().parse_args(argv)
        logging_setup.setup(logging_setup.log_settings(args, os.environ), err)
    except UsageError as error:
        print(f"replywatch: {error}", file=err)
        return EXIT_USAGE
    try:
        code: int = args.handler(args, out, err)
        return code
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=err)
        return EXIT_USAGE
    except (UsageError, StoreError, SecretError) as error:
        print(f"replywatch: {error}", file=err)
        return EXIT_USAGE
    except database_errors() as error:
        # The store failed after it opened (a damaged page is found when it is read): one
        # line naming the database and what to do, not a traceback.
        print(f"replywatch: {database_failure(_database_of(args), error, 'use')}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("replywatch: interrupted", file=err)
        return 130
    except BrokenPipeError:
        # The reader went away (`replywatch stats | head`): stop quietly, as other command-line
        # tools do. Output still buffered would fail again at exit, so it goes nowhere.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
