"""``replywatch run``: poll every configured account until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TextIO

from monitor.core.polls import PollOutcome, PollRecord
from monitor.service.runtime import Runtime
from monitor.store.cursors import has_cursor

__all__ = ["BackfillProgress", "run_until_stopped", "stop_on_signals"]

log = logging.getLogger("monitor.run")
# The path each configured webhook is served on.
_HOOK_PATHS = {
    "meta": "/hooks/meta",
    "events": "/hooks/events",
    "telegram": "/hooks/telegram/<account>",
}


class BackfillProgress:
    """Reports how many accounts finished their first poll (the backfill) since start."""

    def __init__(self, pending: set[str], say: Callable[[str], None]) -> None:
        self.pending = set(pending)
        self.total = len(pending)
        self.say = say
        self.done = asyncio.Event()
        if not pending:
            self.done.set()

    def __call__(self, record: PollRecord) -> None:
        """Observe one finished poll."""
        if record.account not in self.pending:
            return
        self.pending.discard(record.account)
        finished = self.total - len(self.pending)
        status = "done" if record.outcome is PollOutcome.SUCCESS else record.outcome.value
        self.say(
            f"backfill {finished}/{self.total}: {record.platform}/{record.account} {status}, "
            f"{record.stored} event(s) stored"
        )
        if not self.pending:
            self.done.set()
            self.say("backfill finished; figures are live")


def stop_on_signals(stop: asyncio.Event) -> None:
    """Make SIGINT and SIGTERM end the run cleanly."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


async def run_until_stopped(runtime: Runtime, out: TextIO, stop: asyncio.Event) -> None:
    """Start the runtime, report the backfill, and stop when ``stop`` is set."""
    pending = {
        name
        for name in runtime.context.config.accounts
        if not has_cursor(runtime.context.engine, name)
    }

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    progress = BackfillProgress(pending, say)
    runtime.observers.append(progress)
    await runtime.start()
    polled = len(runtime.coordinators)
    progress.pending &= set(runtime.coordinators)
    progress.total = len(progress.pending)
    if not progress.pending:
        progress.done.set()
    paths = [
        "/healthz",
        "/metrics",
        *(_HOOK_PATHS.get(h, f"/hooks/{h}") for h in runtime.context.config.webhooks),
    ]
    say(
        f"replywatch is watching {polled} account(s); serving {runtime.address} "
        f"({', '.join(paths)})"
    )
    for name, reason in runtime.unavailable.items():
        say(f"  {name}: not polled: {reason}")
    if progress.total:
        say(
            f"backfilling {progress.total} account(s) from "
            f"{runtime.context.config.backfill} ago ..."
        )
    try:
        await stop.wait()
    finally:
        say("stopping ...")
        await runtime.stop()
