"""Per-account polling policy: what to do after each poll (style rule 4, HA's coordinator).

A :class:`PollCoordinator` owns one account's connector and decides when it polls next, and
tells its host's :class:`PollScheduler` (APScheduler in one process, the shared ``poll_state``
table in a cluster) when that decision moves the next poll:

* success: the events and the new cursor are stored in one transaction; next poll after the
  account's interval (with jitter, so a thousand accounts do not poll in the same second);
* connection or response errors: retry with exponential backoff, capped;
* rate limited: wait exactly what the platform asked (at least the interval);
* auth error: pause the account and say so once, loudly, until the config is reloaded.

It logs only on transitions ("source unavailable" once, "source recovered" once) and keeps
one canonical ``poll_finished`` record per poll for metrics. Only this module catches bare
``Exception`` from a connector.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from connectors.base import Connector, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from monitor.core.polls import AccountState, PollOutcome, PollRecord

__all__ = ["PollCoordinator", "PollScheduler", "RecordedSchedule"]

log = logging.getLogger("monitor.coordinator")

_MAX_BACKOFF = timedelta(minutes=30)


class PollScheduler(Protocol):
    """Where a coordinator's decisions take effect; the scheduler keeps the regular rhythm."""

    def retry_at(self, account: str, when: datetime) -> None:
        """Poll the account next at ``when`` (a backoff or a rate-limit wait)."""

    def pause(self, account: str) -> None:
        """Poll the account no more until :meth:`resume` (its credentials were refused)."""

    def resume(self, account: str, when: datetime) -> None:
        """Poll a paused account again, first at ``when``."""


class RecordedSchedule:
    """A scheduler that moves nothing: the host reads ``next_poll_at`` from each record.

    A cluster worker writes that time with the poll's outcome, under the account's lease
    (``poll_state.finish``); the tick hands the account out again when it comes, and a refused
    token is tried again after ``poll_state.AUTH_RETRY``, each worker reading its own secrets.
    """

    def retry_at(self, account: str, when: datetime) -> None:
        """Recorded with the outcome instead."""

    def pause(self, account: str) -> None:
        """Recorded with the outcome instead."""

    def resume(self, account: str, when: datetime) -> None:
        """Nothing is paused in between."""


# (platform, account, events, cursor) -> stored count; runs the database work off the loop.
StoreFn = Callable[[FetchResult, Mapping[str, str]], Awaitable[int]]
CursorFn = Callable[[], Awaitable[Mapping[str, str]]]


@dataclass
class PollCoordinator:
    """Polls one account and decides, from the outcome, when to poll it next."""

    platform: str
    account: str
    connector: Connector
    interval: timedelta
    load_cursor: CursorFn
    store: StoreFn
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random)
    on_record: Callable[[PollRecord], None] = lambda _record: None
    scheduler: PollScheduler = field(default_factory=RecordedSchedule)

    state: AccountState = AccountState.STARTING
    last_success: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    next_poll_at: datetime | None = None
    polls: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def paused(self) -> bool:
        """An account whose token was refused is not polled until it is fixed."""
        return self.state is AccountState.AUTH_FAILED

    async def poll(self) -> PollRecord:
        """Run one poll now (never two at once for this account) and plan the next."""
        async with self._lock:
            return await self._poll()

    async def _poll(self) -> PollRecord:
        started = self.clock()
        loop = asyncio.get_running_loop()
        timer = loop.time()
        items = stored = missed = 0
        quota = None
        try:
            cursor = await self.load_cursor()
            result = await self.connector.fetch_since(cursor)
            items, missed, quota = len(result.events), result.missed, result.quota_used
            try:
                stored = await self.store(result, result.cursor)
            except Exception as err:
                raise _StoreFailed(str(err)) from err
        except ConnectorRateLimited as err:
            outcome = PollOutcome.RATE_LIMITED
            delay = max(timedelta(seconds=err.retry_after), self.interval)
            self._fail(AccountState.RATE_LIMITED, str(err))
        except ConnectorAuthError as err:
            outcome, delay = PollOutcome.AUTH, None
            self._fail(AccountState.AUTH_FAILED, str(err))
        except (ConnectorConnectionError, ConnectorResponseError, ConnectorError) as err:
            outcome = (
                PollOutcome.RESPONSE
                if isinstance(err, ConnectorResponseError)
                else PollOutcome.CONNECTION
            )
            self._fail(AccountState.FAILING, str(err))
            delay = self._backoff()
        except _StoreFailed as err:
            outcome = PollOutcome.STORE
            self._fail(AccountState.FAILING, f"could not store the poll: {err}")
            delay = self._backoff()
        except Exception as err:
            # A bug in a connector must not stop the other accounts: log it with the
            # traceback, back off, and try again.
            log.exception("poll of %s/%s crashed", self.platform, self.account)
            outcome = PollOutcome.CRASH
            self._fail(AccountState.FAILING, f"{type(err).__name__}: {err}")
            delay = self._backoff()
        else:
            outcome = PollOutcome.SUCCESS
            self._succeed()
            delay = self._jittered(self.interval)
        self.polls += 1
        self.next_poll_at = None if delay is None else started + delay
        record = PollRecord(
            platform=self.platform,
            account=self.account,
            outcome=outcome,
            started_at=started,
            duration_s=loop.time() - timer,
            items=items,
            stored=stored,
            missed=missed,
            quota_used=quota,
            next_poll_at=self.next_poll_at,
            state=self.state,
        )
        self.on_record(record)
        if outcome is not PollOutcome.SUCCESS:
            # Success keeps the scheduler's rhythm; anything else moves or pauses the next poll.
            if self.next_poll_at is None:
                self.scheduler.pause(self.account)
            else:
                self.scheduler.retry_at(self.account, self.next_poll_at)
        return record

    def restore(self, state: AccountState, failures: int, last_success: datetime | None) -> None:
        """Take up the polling state another process left (a cluster worker's claim)."""
        self.state = state
        self.failures = failures
        self.last_success = last_success

    async def replace_connector(self, connector: Connector) -> None:
        """Swap in a connector built with new credentials, between polls, and poll again."""
        async with self._lock:
            await self.connector.aclose()
            self.connector = connector
        self.scheduler.resume(self.account, self.clock())

    def idle(self) -> asyncio.Lock:
        """Hold this to wait until no poll of the account is running, and keep it so."""
        return self._lock

    def _succeed(self) -> None:
        if self.state in (AccountState.FAILING, AccountState.RATE_LIMITED):
            log.info("source recovered: %s/%s polls again", self.platform, self.account)
        self.state = AccountState.OK
        self.failures = 0
        self.last_error = None
        self.last_success = self.clock()

    def _fail(self, state: AccountState, reason: str) -> None:
        previous = self.state
        self.failures += 1
        self.last_error = reason
        self.state = state
        if state is AccountState.AUTH_FAILED and previous is not state:
            log.error(
                "credentials refused for %s/%s: %s; polling is paused until the token is "
                "replaced (the new one is picked up within a minute)",
                self.platform,
                self.account,
                reason,
            )
        elif previous in (AccountState.OK, AccountState.STARTING):
            log.warning("source unavailable: %s/%s: %s", self.platform, self.account, reason)

    def _backoff(self) -> timedelta:
        # interval, 2x, 4x, ... capped; the cap never undercuts the account's own interval.
        factor = 2 ** min(self.failures - 1, 10)
        cap = max(_MAX_BACKOFF, self.interval)
        return self._jittered(min(self.interval * factor, cap))

    def _jittered(self, delay: timedelta) -> timedelta:
        spread = delay.total_seconds() * self.jitter
        return delay + timedelta(seconds=self.rng.uniform(-spread, spread))

    def describe(self) -> dict[str, object]:
        """The account's polling state for /healthz."""
        return {
            "platform": self.platform,
            "state": self.state.value,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "failures": self.failures,
            "next_poll_at": self.next_poll_at.isoformat() if self.next_poll_at else None,
        }


class _StoreFailed(Exception):
    """The store refused a poll's events; nothing of the poll was kept."""
