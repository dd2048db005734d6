"""``replywatch worker``: poll a share of the accounts, beside other workers on PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import logging
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from monitor.cli.command import EXIT_OK, Subcommands, UsageError
from monitor.cli.logging_setup import json_lines_to
from monitor.cli.opening import open_cluster_context
from monitor.cli.signals import stop_on_signals
from monitor.store.context import AppContext
from monitor.store.engine import open_engine

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``worker`` and its options."""
    worker = commands.add_parser(
        "worker",
        help="poll a share of the accounts, beside other workers on one PostgreSQL database",
    )
    worker.add_argument(
        "--concurrency", type=int, default=50, help="polls this worker runs at once (50)"
    )
    worker.add_argument(
        "--tick",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often due accounts "
        "are handed out (2; every worker of a cluster should use the same)",
    )
    worker.add_argument(
        "--stalled-after",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a worker silent this long is taken for dead and its polls go to others (30)",
    )
    worker.add_argument(
        "--heartbeat", type=float, default=5.0, metavar="SECONDS", help="heartbeat interval (5)"
    )
    worker.add_argument(
        "--hold",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a handed-out account waits for its poll before it is handed out again (60)",
    )
    worker.add_argument(
        "--poll-log", metavar="FILE", help="append one JSON line per poll job to FILE"
    )
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: procrastinate is only needed by the worker.
    from monitor.polling.cluster.fencing import APPLICATION_NAME

    for option in ("concurrency", "tick", "stalled_after", "heartbeat", "hold"):
        if getattr(args, option) <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be above zero")
    if args.stalled_after <= args.heartbeat:
        raise UsageError("--stalled-after must be longer than --heartbeat")
    context = open_cluster_context(args, "worker")
    # Writes of a worker that froze mid-transaction must not block the others for long.
    context.engine.dispose()
    context.engine = open_engine(
        context.engine.url.render_as_string(hide_password=False),
        migrate=False,
        idle_transaction_seconds=args.stalled_after,
        application_name=APPLICATION_NAME,
    )
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # procrastinate logs every job at INFO: thousands a minute.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    try:
        _work_until_stopped(context, args, out)
    finally:
        context.close()
    return EXIT_OK


def _work_until_stopped(context: AppContext, args: argparse.Namespace, out: TextIO) -> None:
    """Run one cluster worker, with the options' settings, until SIGINT or SIGTERM."""
    from monitor.polling.cluster.worker import WorkerSettings, poll_log
    from monitor.service.worker import build_worker

    settings = WorkerSettings(
        concurrency=args.concurrency,
        tick_seconds=args.tick,
        stalled_after=args.stalled_after,
        heartbeat_seconds=args.heartbeat,
        hold=timedelta(seconds=args.hold),
    )
    worker = build_worker(context, settings)

    async def main_loop() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        print(
            f"replywatch worker {worker.name}: sharing {len(context.config.accounts)} "
            "account(s) with the other workers on this database",
            file=out,
            flush=True,
        )
        await worker.run(stop)
        print("worker stopped", file=out, flush=True)

    with json_lines_to(Path(args.poll_log), poll_log) if args.poll_log else nullcontext():
        asyncio.run(main_loop())
