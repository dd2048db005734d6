"""``replywatch run``: poll every configured account and serve /metrics until stopped."""

from __future__ import annotations

import argparse
import asyncio
from typing import TextIO

from monitor.cli.command import EXIT_OK, Subcommands, UsageError
from monitor.cli.opening import listen_address, require_config
from monitor.cli.run_report import BackfillProgress, accounts_to_backfill, started_lines
from monitor.cli.signals import stop_on_signals
from monitor.store.context import AppContext
from monitor.store.engine import MONITOR_CACHE_MIB
from monitor.store.instance_lock import InstanceLockError

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``run`` and its options."""
    run = commands.add_parser("run", help="poll every configured account until stopped")
    run.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve /healthz, /metrics and /hooks/* here (default: the config's "
        "listen, then 127.0.0.1:9874)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    require_config(args, "run")
    # A long-running process: small per-connection caches (monitor.store.engine).
    context = AppContext.open(args.config, args.database, sqlite_cache_mib=MONITOR_CACHE_MIB)
    host, port = listen_address(args.listen, context)
    try:
        asyncio.run(_watch(context, host, port, out))
    except InstanceLockError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        context.close()
    return EXIT_OK


async def _watch(context: AppContext, host: str, port: int, out: TextIO) -> None:
    """Run one runtime (polling, alerting, HTTP) until SIGINT or SIGTERM, telling the backfill."""
    # Imported here: the scheduler, aiohttp and every connector are only needed by `run`.
    from monitor.service.runtime import Runtime

    stop = asyncio.Event()
    stop_on_signals(stop)
    runtime = Runtime(context, host=host, port=port)

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    progress = BackfillProgress(accounts_to_backfill(context), say)
    runtime.observers.append(progress)
    await runtime.start()
    progress.narrow_to(runtime.coordinators)
    for line in started_lines(
        polled=len(runtime.coordinators),
        address=runtime.address,
        webhooks=context.config.webhooks,
        unavailable=runtime.unavailable,
        backfilling=progress.total,
        backfill=context.config.backfill,
    ):
        say(line)
    try:
        await stop.wait()
    finally:
        say("stopping ...")
        await runtime.stop()
