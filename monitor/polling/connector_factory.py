"""Building an account's connector from the config: shared by ``run`` and ``worker``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from connectors.base import Connector, ConnectorSettings
from connectors.registry import CONNECTORS
from monitor.config.loading import AccountConfig, Config
from monitor.config.secrets import SecretError

__all__ = ["Unavailable", "build_connector", "connector_for"]

log = logging.getLogger("monitor.runtime")


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why an account cannot be polled (no connector, or its secrets cannot be read)."""

    reason: str


def build_connector(
    config: Config,
    account: AccountConfig,
    session: aiohttp.ClientSession,
    *,
    now: datetime,
    base_url: str | None,
    request_timeout: float,
) -> tuple[Connector, ConnectorSettings] | Unavailable:
    """The account's connector and its settings, or why it cannot be polled (logged)."""
    connector_class = CONNECTORS.get(account.platform)
    if connector_class is None:
        log.warning(
            "account %s: no connector for %s yet; only imported or pushed events are counted",
            account.name,
            account.platform,
        )
        return Unavailable(f"no connector for {account.platform} yet")
    try:
        secrets = config.live_secrets(account.name)
    except SecretError as err:
        log.error("account %s is not polled: %s", account.name, err)
        return Unavailable(f"credentials unavailable: {err}")
    settings = ConnectorSettings(
        account=account.name,
        ids=account.ids,
        secrets=secrets,
        channels=account.channels,
        backfill_since=now - config.backfill,
        base_url=base_url,
        options=account.options,
        request_timeout=request_timeout,
    )
    return connector_for(account.platform, settings, session), settings


def connector_for(
    platform: str, settings: ConnectorSettings, session: aiohttp.ClientSession
) -> Connector:
    """A new connector of the platform's class with these settings."""
    connector: Connector = CONNECTORS[platform](settings, session)  # type: ignore[call-arg]
    return connector
