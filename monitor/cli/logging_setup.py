"""Where log records go: stderr, as text or JSON lines, at the level the user chose.

``--log-level`` (or ``REPLYWATCH_LOG_LEVEL``) sets the level, ``warning`` by default;
``-v`` is short for ``--log-level info``. ``--log-format`` (or ``REPLYWATCH_LOG_FORMAT``) is
``text`` (``LEVEL logger: message``, for a terminal) or ``json`` (one object per line, see
``monitor.core.log_format``, for a log collector). The command line wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from monitor.cli.command import UsageError
from monitor.core.log_format import JsonFormatter

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "TEXT_FORMAT",
    "LogSettings",
    "json_lines_to",
    "log_settings",
    "setup",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class LogSettings:
    """The chosen level (a ``logging`` number) and format (``text`` or ``json``)."""

    level: int
    format: str


def _choice(
    given: str | None, variable: str, environ: Mapping[str, str], allowed: tuple[str, ...]
) -> str | None:
    if given is not None:
        return given
    value = environ.get(variable, "").strip().lower()
    if not value:
        return None
    if value not in allowed:
        raise UsageError(f"{variable} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def log_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> LogSettings:
    """The level and format from the global options, then the environment, then defaults."""
    given = args.log_level or ("info" if args.verbose else None)
    level = _choice(given, "REPLYWATCH_LOG_LEVEL", environ, LOG_LEVELS) or "warning"
    chosen = _choice(args.log_format, "REPLYWATCH_LOG_FORMAT", environ, LOG_FORMATS)
    return LogSettings(logging.getLevelNamesMapping()[level.upper()], chosen or "text")


def setup(settings: LogSettings, stream: TextIO) -> None:
    """Send log records to ``stream`` in the chosen format (once per process)."""
    handler = logging.StreamHandler(stream)
    formatter = JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    # basicConfig leaves a logging setup alone when there is one already (an embedding
    # program's, or pytest's), as the command line always has.
    logging.basicConfig(level=settings.level, handlers=[handler])


@contextmanager
def json_lines_to(path: Path, logger: logging.Logger) -> Iterator[None]:
    """Append ``logger``'s records, DEBUG and up, to ``path`` as JSON lines (only there)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # Only to the file: the root's handlers would print these DEBUG records whatever the
    # chosen level (a parent's handlers do not look at the parent's level).
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()
