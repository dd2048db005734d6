"""Failure switches every fake platform has: queued failures and requests that hang.

A test calls ``fail_next(kind, times, **options)``; the fake's request handler takes the next
failure with ``_take_failure()`` and answers as that failure says instead of normally. "slow"
requests wait on ``_release``, which ``release_slow()`` or the server's shutdown sets.
"""

from __future__ import annotations

import asyncio
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


class FailureSwitches:
    """The switch methods; a fake sets ``failure_kinds`` and calls ``_init_switches``."""

    failure_kinds: ClassVar[frozenset[str]] = frozenset()
    failures: deque[Failure]
    _release: asyncio.Event

    def _init_switches(self, app: web.Application) -> None:
        self.failures = deque()
        self._release = asyncio.Event()
        app.on_shutdown.append(self._on_shutdown)

    def fail_next(self, kind: str, times: int = 1, **options: Any) -> None:
        """Make the next ``times`` data requests fail as ``kind`` (see the fake's kinds)."""
        if kind not in self.failure_kinds:
            raise ValueError(f"unknown failure {kind!r}")
        self.failures.append(Failure(kind, times, options))

    def _take_failure(self) -> Failure | None:
        if not self.failures:
            return None
        failure = self.failures[0]
        failure.times -= 1
        if failure.times <= 0:
            self.failures.popleft()
        return failure

    def release_slow(self) -> None:
        """Let hanging ('slow') requests finish."""
        self._release.set()

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._release.set()
