"""``replywatch serve``: /metrics and the webhooks for a cluster of workers (replicable)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TextIO

from monitor.cli.command import EXIT_OK, Subcommands, UsageError
from monitor.cli.opening import listen_address, open_cluster_context
from monitor.cli.signals import stop_on_signals
from monitor.store.context import AppContext

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``serve`` and its options."""
    serve = commands.add_parser(
        "serve", help="serve /metrics and the webhooks for a cluster of workers (replicable)"
    )
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default: the config's listen, then 127.0.0.1:9874)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = open_cluster_context(args, "serve")
    host, port = listen_address(args.listen, context)
    try:
        _serve_until_stopped(context, host, port, out)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        context.close()
    return EXIT_OK


def _serve_until_stopped(context: AppContext, host: str, port: int, out: TextIO) -> None:
    """Run one serving runtime (HTTP and figures, no polling) until SIGINT or SIGTERM."""
    # Imported here: aiohttp and the exporters are only needed by the commands that serve.
    from monitor.service.runtime import Runtime

    runtime = Runtime(context, host=host, port=port, serve_only=True)

    async def main_loop() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await runtime.start()
        print(
            f"replywatch serve: {runtime.address} (/healthz, /metrics, /hooks/*)",
            file=out,
            flush=True,
        )
        try:
            await runtime.figures_ready.wait()
            print("figures ready", file=out, flush=True)
            await stop.wait()
        finally:
            await runtime.stop()

    asyncio.run(main_loop())
