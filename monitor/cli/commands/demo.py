"""``replywatch demo``: the whole product against simulated platforms (``monitor.cli.demo``)."""

from __future__ import annotations

import argparse
from typing import TextIO

from monitor.cli.command import Subcommands

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``demo`` and its options."""
    demo = commands.add_parser("demo", help="run the product against simulated platforms")
    demo.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9874")
    demo.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--plain", action="store_true", help="print progress lines instead of the live table"
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: the fakes, the runtime and rich's live table are only needed by the demo.
    from monitor.cli.demo.demo import run_demo

    return run_demo(args.listen, out, seconds=args.seconds, plain=args.plain or not out.isatty())
