"""Failure switches every fake platform has: queued failures and requests that hang.

A test calls ``fail_next(kind, times, **options)``; the fake's request handler takes the next
failure with ``_take_failure()`` and answers as that failure says instead of normally. "slow"
requests wait on ``_release``, which ``release_slow()`` or the server's shutdown sets.

``fail_account(account, kind, times, **options)`` queues failures for one account only (a fake
that knows whose data a request asks for passes that account to ``_take_failure``); with
``times=None`` the account keeps failing until ``clear_failures`` is called, which is how a
platform outage of one account looks from the outside.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

__all__ = ["Failure", "FailureSwitches"]


@dataclass
class Failure:
    """One queued failure: what to do, how many more times, and its details."""

    kind: str
    times: int
    options: dict[str, Any]
    # True: ``times`` is ignored and the failure stays until ``clear_failures``.
    until_cleared: bool = False


class FailureSwitches:
    """The switch methods; a fake sets ``failure_kinds`` and calls ``_init_switches``."""

    failure_kinds: ClassVar[frozenset[str]] = frozenset()
    failures: deque[Failure]
    _by_account: dict[str, deque[Failure]]
    _release: asyncio.Event

    def _init_switches(self, app: web.Application) -> None:
        self.failures = deque()
        self._by_account = {}
        self._release = asyncio.Event()
        app.on_shutdown.append(self._on_shutdown)

    def _account_queues(self) -> dict[str, deque[Failure]]:
        # Made on first use: some fakes set up ``failures`` themselves, not _init_switches.
        if not hasattr(self, "_by_account"):
            self._by_account = {}
        return self._by_account

    def _checked(self, kind: str) -> None:
        if kind not in self.failure_kinds:
            raise ValueError(f"unknown failure {kind!r}")

    def fail_next(self, kind: str, times: int = 1, **options: Any) -> None:
        """Make the next ``times`` data requests fail as ``kind`` (see the fake's kinds)."""
        self._checked(kind)
        self.failures.append(Failure(kind, times, options))

    def fail_account(self, account: str, kind: str, times: int | None = 1, **options: Any) -> None:
        """Make ``account``'s next ``times`` data requests fail (``None``: until cleared)."""
        self._checked(kind)
        failure = Failure(kind, times or 0, options, until_cleared=times is None)
        self._account_queues().setdefault(account, deque()).append(failure)

    def clear_failures(self, account: str | None = None) -> None:
        """Drop the failures queued for ``account``, or every queued failure when None."""
        if account is None:
            self.failures.clear()
            self._account_queues().clear()
        else:
            self._account_queues().pop(account, None)

    def _take_failure(self, account: str | None = None) -> Failure | None:
        # The account's own failures come first: they are what a test aimed at it.
        queue = self._account_queues().get(account) if account is not None else None
        if not queue:
            queue = self.failures
        if not queue:
            return None
        failure = queue[0]
        if not failure.until_cleared:
            failure.times -= 1
            if failure.times <= 0:
                queue.popleft()
        return failure

    async def _hang(self, options: dict[str, Any]) -> None:
        # Until released, or for ``seconds`` at most: a bounded hang lets a long-running
        # fake time requests out without anyone calling release_slow().
        seconds = options.get("seconds")
        if seconds is None:
            await self._release.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), float(seconds))

    def release_slow(self) -> None:
        """Let hanging ('slow') requests finish."""
        self._release.set()

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._release.set()
