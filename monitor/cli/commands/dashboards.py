"""``replywatch dashboards``: build the Grafana dashboards' JSON, or upload it to Grafana."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from monitor.cli.command import EXIT_OK, EXIT_PROBLEMS, Subcommands, UsageError

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``dashboards build`` and ``dashboards push`` with their options."""
    boards = commands.add_parser("dashboards", help="build or upload the Grafana dashboards")
    boards_actions = boards.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = boards_actions.add_parser("build", help="regenerate dashboards/generated/*.json")
    build.add_argument(
        "--check", action="store_true", help="only report drift (exit 1) instead of writing"
    )
    build.set_defaults(handler=_build)
    push = boards_actions.add_parser(
        "push", help="upload the dashboards to Grafana (token from $GRAFANA_TOKEN)"
    )
    push.add_argument(
        "--grafana-url", required=True, metavar="URL", help="e.g. http://grafana:3000"
    )
    push.add_argument("--folder", default="replywatch", help="folder title (default: replywatch)")
    push.set_defaults(handler=_push)


def _build(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: the Grafana SDK is only needed by this command.
    from dashboards.build import GENERATED, drifted, write_all

    if args.check:
        stale = drifted()
        for uid in stale:
            print(
                f"{GENERATED / uid}.json differs from the code: run `replywatch dashboards build`",
                file=err,
            )
        if stale:
            return EXIT_PROBLEMS
        print(f"dashboards in {GENERATED} are up to date", file=out)
        return EXIT_OK
    for path in write_all():
        print(f"wrote {path}", file=out)
    return EXIT_OK


def _push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from dashboards.build import build_all
    from dashboards.push import PushError, push_dashboards

    token = os.environ.get("GRAFANA_TOKEN", "").strip()
    if not token:
        raise UsageError("set GRAFANA_TOKEN to a Grafana service account token (Editor role)")
    try:
        results = push_dashboards(args.grafana_url, token, build_all(), args.folder)
    except PushError as error:
        raise UsageError(str(error)) from None
    for result in results:
        print(f"{result.action} {result.title} ({result.uid}) {result.url}", file=out)
    return EXIT_OK
