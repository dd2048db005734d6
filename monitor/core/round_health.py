"""How the background rounds are doing: counted, logged once per change, judged for /healthz.

A round (window figures, SLI outcomes, conversation alerts, alert delivery, the weekly summary)
either completes, possibly skipping items it could not handle (one wait whose deadline is past
year 9999), or fails as a whole (the store is unreadable). Every failure, whole or per item, is
counted in ``replywatch_round_failures_total``; a completed round sets
``replywatch_round_last_success_timestamp_seconds``. The log says when a round starts failing
or skipping and when it recovers, never at every round: at a 15 s refresh a repeated line
would bury everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

__all__ = [
    "ALERT_ROUNDS",
    "GRACE_INTERVALS",
    "ItemFailure",
    "RoundHealth",
    "RoundMetrics",
]

# The rounds are figures, outcomes, alerts, delivery and summary; these make up the alert
# round (monitor.notify.alert_cycle).
ALERT_ROUNDS = ("outcomes", "alerts", "delivery")
# /healthz turns unhealthy when a round has failed and not succeeded for this many intervals:
# one failed round is a blip (a locked database, a restarting PostgreSQL), three are not.
GRACE_INTERVALS = 3
_SHOWN_ITEMS = 3


class _Family(Protocol):
    def labels(self, *values: str) -> Any: ...


class RoundMetrics(Protocol):
    """The three round families of the process registry (monitor.export.metrics.Metrics)."""

    @property
    def round_failures(self) -> _Family:
        """``replywatch_round_failures_total{round}``."""

    @property
    def round_interval(self) -> _Family:
        """``replywatch_round_interval_seconds{round}``."""

    @property
    def round_last_success(self) -> _Family:
        """``replywatch_round_last_success_timestamp_seconds{round}``."""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item a round skipped so that the others still got done."""

    item: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.item}: {type(self.error).__name__}: {self.error}"


@dataclass
class _State:
    last_success: datetime
    failing_since: datetime | None = None
    failures: int = 0
    last_error: str | None = None
    skipping: bool = False


@dataclass
class RoundHealth:
    """The state of each round this process runs, with its metrics and log lines."""

    log: logging.Logger = field(default_factory=lambda: logging.getLogger("monitor.rounds"))
    metrics: RoundMetrics | None = None
    _states: dict[str, _State] = field(default_factory=dict, init=False)
    _intervals: dict[str, float] = field(default_factory=dict, init=False)

    def start(self, rounds: Iterable[str], now: datetime, interval: float) -> None:
        """Begin watching rounds that run every ``interval`` seconds (at process start)."""
        for name in rounds:
            self._state(name, now)
            self._intervals[name] = interval
            if self.metrics is not None:
                self.metrics.round_failures.labels(name)
                self.metrics.round_interval.labels(name).set(interval)

    def succeeded(self, name: str, now: datetime, skipped: Sequence[ItemFailure] = ()) -> None:
        """The round completed; ``skipped`` lists the items it could not handle."""
        state = self._state(name, now)
        if state.failing_since is not None:
            self.log.warning(
                "%s round recovered after %d failed round(s) since %s",
                name,
                state.failures,
                state.failing_since.isoformat(),
            )
        state.last_success, state.failing_since, state.failures = now, None, 0
        state.last_error = None
        if self.metrics is not None:
            self.metrics.round_last_success.labels(name).set(now.timestamp())
        self._skipped(name, skipped)

    def failed(
        self, rounds: Sequence[str], now: datetime, error: BaseException, message: str
    ) -> None:
        """The rounds failed as a whole; logs ``message`` (with the error) only on a change."""
        changed = False
        for name in rounds:
            state = self._state(name, now)
            if state.failing_since is None:
                state.failing_since, changed = now, True
            state.failures += 1
            state.last_error = f"{type(error).__name__}: {_first_line(error)}"
            self._count(name, 1)
        if changed:
            # The traceback once, when the round starts failing; the recovery is logged too.
            self.log.error(message, exc_info=error)

    def unhealthy(self, rounds: Iterable[str], now: datetime) -> list[str]:
        """Why the rounds are not healthy: each one failing past its grace (empty: healthy)."""
        reasons = []
        for name in rounds:
            state = self._states.get(name)
            if state is None or state.failing_since is None:
                continue
            grace = timedelta(seconds=GRACE_INTERVALS * self._intervals.get(name, 0.0))
            if now - state.last_success > grace:
                reasons.append(
                    f"the {name} round has not succeeded since "
                    f"{state.last_success.isoformat()} ({state.failures} failed round(s)): "
                    f"{state.last_error}"
                )
        return reasons

    def describe(self) -> dict[str, Any]:
        """Each round's state, for /healthz."""
        return {
            name: {
                "last_success": state.last_success.isoformat(),
                "failing_since": None
                if state.failing_since is None
                else state.failing_since.isoformat(),
                "failed_rounds": state.failures,
                "last_error": state.last_error,
                "skipping_items": state.skipping,
            }
            for name, state in sorted(self._states.items())
        }

    def _skipped(self, name: str, skipped: Sequence[ItemFailure]) -> None:
        state = self._states[name]
        self._count(name, len(skipped))
        if skipped and not state.skipping:
            shown = "; ".join(str(item) for item in skipped[:_SHOWN_ITEMS])
            more = len(skipped) - _SHOWN_ITEMS
            self.log.error(
                "%s round skipped %d item(s) it cannot handle and did the rest "
                "(logged again only after it recovers): %s%s",
                name,
                len(skipped),
                shown,
                f"; and {more} more" if more > 0 else "",
            )
        elif not skipped and state.skipping:
            self.log.warning("%s round handles every item again", name)
        state.skipping = bool(skipped)

    def _state(self, name: str, now: datetime) -> _State:
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = _State(last_success=now)
            if self.metrics is not None:
                self.metrics.round_last_success.labels(name).set(now.timestamp())
        return state

    def _count(self, name: str, count: int) -> None:
        if self.metrics is not None and count:
            self.metrics.round_failures.labels(name).inc(count)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
