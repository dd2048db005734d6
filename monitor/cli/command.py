"""What every command shares: its handler's shape, the exit codes, and refusing a value.

Exit codes: 0 success; 1 the command ran but found problems (bad rows skipped); 2 unusable
input (config, arguments, database).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import TextIO, TypeAlias

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "Handler",
    "Subcommands",
    "UsageError",
    "parse_cli_time",
]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

# A command's body: the parsed arguments, stdout, stderr; returns the exit code.
Handler: TypeAlias = Callable[[argparse.Namespace, TextIO, TextIO], int]
# What each command module registers its subparser on.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """A command-line value that cannot be used."""


def parse_cli_time(text: str) -> datetime:
    """A command-line time: ISO 8601, a bare date (midnight) or ``now``; UTC unless it says."""
    value = text.strip()
    if value.lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO 8601 date or time") from None
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time(0))
    # Command-line times without an offset are UTC, as the help says.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
