"""The one polling lifecycle: connectors built from the config, polled, stored, recorded.

``replywatch run`` and ``replywatch worker`` host polls the same way and differ only in two
parts they plug in: *when* a poll runs (a :class:`PollScheduler`: APScheduler in one process,
procrastinate jobs over the shared ``poll_state`` table in a cluster) and *how* a poll reaches
the store (a :class:`PollWriter`: group commit with in-memory cursors for the store's single
writer, a lease-fenced transaction per poll for cluster workers). Everything else, from
building connectors to resuming an account whose token was replaced, lives here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from connectors.base import ConnectorSettings, FetchResult
from monitor.config.loading import AccountConfig, Config
from monitor.config.secrets import LiveSecrets
from monitor.core.polls import PollOutcome, PollRecord
from monitor.polling.connector_factory import Unavailable, build_connector, connector_for
from monitor.polling.coordinator import PollCoordinator, PollScheduler

__all__ = ["PollWriter", "PollingHost"]

log = logging.getLogger("monitor.runtime")


class PollWriter(Protocol):
    """How a host's polls reach the store."""

    async def load_cursor(self, account: str) -> Mapping[str, str]:
        """The cursor the account's next poll starts from."""

    async def store(
        self, platform: str, account: str, result: FetchResult, cursor: Mapping[str, str]
    ) -> int:
        """Store one poll's events and its new cursor together; how many events were new."""

    async def drain(self) -> None:
        """Wait until every poll handed over is stored (at shutdown)."""


@dataclass
class PollingHost:
    """The coordinators of every polled account, with what they poll through and into."""

    config: Config
    writer: PollWriter
    scheduler: PollScheduler
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    base_url_for: Callable[[AccountConfig], str | None] = lambda account: account.base_url
    request_timeout: float = 30.0

    coordinators: dict[str, PollCoordinator] = field(default_factory=dict)
    # account -> why it is not polled (no connector, unreadable secrets)
    unavailable: dict[str, str] = field(default_factory=dict)
    # Called with every finished poll (metrics, the backfill report, tests).
    observers: list[Callable[[PollRecord], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._settings: dict[str, ConnectorSettings] = {}
        # account -> fingerprint of the secrets that were refused
        self._refused: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None

    def open(self, session: aiohttp.ClientSession, now: datetime) -> None:
        """Build a connector and a coordinator for every account the config polls."""
        self._session = session
        for account in self.config.accounts.values():
            if account.source == "poll":
                self._add(account, now)

    def _add(self, account: AccountConfig, now: datetime) -> None:
        assert self._session is not None
        built = build_connector(
            self.config,
            account,
            self._session,
            now=now,
            base_url=self.base_url_for(account),
            request_timeout=self.request_timeout,
        )
        if isinstance(built, Unavailable):
            self.unavailable[account.name] = built.reason
            return
        connector, settings = built
        self._settings[account.name] = settings
        name, platform, writer = account.name, account.platform, self.writer

        async def load_cursor() -> Mapping[str, str]:
            return await writer.load_cursor(name)

        async def store(result: FetchResult, cursor: Mapping[str, str]) -> int:
            return await writer.store(platform, name, result, cursor)

        self.coordinators[name] = PollCoordinator(
            platform=platform,
            account=name,
            connector=connector,
            interval=account.poll_interval,
            load_cursor=load_cursor,
            store=store,
            clock=self.clock,
            on_record=self._on_record,
            scheduler=self.scheduler,
        )

    async def poll(self, account: str) -> PollRecord:
        """Poll one account now (its coordinator never runs two polls at once)."""
        return await self.coordinators[account].poll()

    def _on_record(self, record: PollRecord) -> None:
        if record.outcome is PollOutcome.AUTH:
            secrets = self._settings[record.account].secrets
            if isinstance(secrets, LiveSecrets):
                self._refused[record.account] = secrets.fingerprint()
        for observer in self.observers:
            observer(record)

    async def resume_refreshed_credentials(self) -> list[str]:
        """Resume the paused accounts whose token was replaced (file or env); their names."""
        resumed = []
        for name, refused in list(self._refused.items()):
            coordinator = self.coordinators[name]
            settings = self._settings[name]
            if not coordinator.paused or not isinstance(settings.secrets, LiveSecrets):
                continue
            if settings.secrets.fingerprint() == refused:
                continue
            del self._refused[name]
            assert self._session is not None
            # A fresh connector takes the new token (some connectors keep it from the start).
            await coordinator.replace_connector(
                connector_for(coordinator.platform, settings, self._session)
            )
            log.info(
                "credentials of %s/%s changed: polling resumes",
                coordinator.platform,
                name,
                extra={
                    "event": "credentials_replaced",
                    "platform": coordinator.platform,
                    "account": name,
                },
            )
            resumed.append(name)
        return resumed

    def describe(self) -> dict[str, Any]:
        """Each account's polling state, for /healthz."""
        accounts: dict[str, Any] = {
            name: coordinator.describe() for name, coordinator in self.coordinators.items()
        }
        for name, reason in self.unavailable.items():
            accounts[name] = {"state": "unavailable", "last_error": reason}
        return accounts

    async def close(self) -> None:
        """Let running polls finish and store, then close every connector."""
        for coordinator in self.coordinators.values():
            async with coordinator.idle():
                await coordinator.connector.aclose()
        await self.writer.drain()
