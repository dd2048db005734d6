"""What ``replywatch run`` prints: what it watches and serves, then each account's backfill."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from monitor.core.polls import PollOutcome, PollRecord
from monitor.service.hooks import hook_paths
from monitor.store.context import AppContext
from monitor.store.cursors import has_cursor

__all__ = ["BackfillProgress", "accounts_to_backfill", "started_lines"]


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

    def narrow_to(self, polled: Iterable[str]) -> None:
        """Count only the accounts that are polled: the others cannot backfill."""
        self.pending &= set(polled)
        self.total = len(self.pending)
        if not self.pending:
            self.done.set()


def accounts_to_backfill(context: AppContext) -> set[str]:
    """The configured accounts that were never polled: no cursor stored yet."""
    return {name for name in context.config.accounts if not has_cursor(context.engine, name)}


def started_lines(
    *,
    polled: int,
    address: str,
    webhooks: Iterable[str],
    unavailable: Mapping[str, str],
    backfilling: int,
    backfill: timedelta,
) -> list[str]:
    """The lines that say the run has started: what is watched, served and backfilled."""
    served = hook_paths()
    paths = ["/healthz", "/metrics", *(served.get(h, f"/hooks/{h}") for h in webhooks)]
    lines = [f"replywatch is watching {polled} account(s); serving {address} ({', '.join(paths)})"]
    lines += [f"  {name}: not polled: {reason}" for name, reason in unavailable.items()]
    if backfilling:
        lines.append(f"backfilling {backfilling} account(s) from {backfill} ago ...")
    return lines
