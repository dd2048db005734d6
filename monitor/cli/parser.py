"""The ``replywatch`` argument parser: the global options, then each command's own."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from monitor.cli.commands import (
    check_config,
    dashboards,
    db,
    demo,
    import_events,
    run,
    serve,
    stats,
    summary,
    worker,
)
from monitor.cli.logging_setup import LOG_FORMATS, LOG_LEVELS

__all__ = ["build_parser"]

# In the order `replywatch --help` lists them.
_COMMANDS = (check_config, import_events, stats, run, worker, serve, demo, db, summary, dashboards)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each parsed command carries its ``handler``."""
    parser = argparse.ArgumentParser(
        prog="replywatch",
        description="Watch how fast a business answers its customers on social media.",
    )
    parser.add_argument(
        "--version", action="version", version=f"replywatch {_version()}", help="print the version"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config (default: $REPLYWATCH_CONFIG; none: "
        "built-in profiles, accounts created on import)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="store URL: sqlite:///file.db or postgresql://... "
        "(default: $REPLYWATCH_DATABASE_URL, the config's database, then sqlite:///replywatch.db)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (--log-level info)")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="show log records from this level up: debug, info, warning or error "
        "(default: $REPLYWATCH_LOG_LEVEL, then warning)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        metavar="FORMAT",
        help="text, or json for one JSON object per line (for a log collector) "
        "(default: $REPLYWATCH_LOG_FORMAT, then text)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.register(commands)
    return parser


def _version() -> str:
    """The installed package's version ("unknown" when run from a bare checkout)."""
    try:
        return version("replywatch")
    except PackageNotFoundError:
        return "unknown"
