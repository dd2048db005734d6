"""Platform connectors: one module per platform, each class carrying its platform's record.

A connector knows HTTP, authentication, pagination and the platform's payloads, and nothing
else; policy (retries, storage, scheduling) lives in `monitor/`. The registry
(`connectors.registry`) finds the platform modules in this package, so adding a platform is
adding its module (see README.md): `CONNECTORS` and `PLATFORMS` below are built from them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from connectors.base import Connector, ConnectorSettings, Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.platform import PlatformSpec, WebhookRoute

if TYPE_CHECKING:
    from connectors.registry import CONNECTORS, PLATFORM_ALIASES, PLATFORMS, canonical_platform

# The registry's names load it (and with it every platform's HTTP client) on first use only,
# so that `import connectors.base` stays free of aiohttp for monitor.core.
_REGISTRY_NAMES = frozenset({"CONNECTORS", "PLATFORMS", "PLATFORM_ALIASES", "canonical_platform"})

__all__ = [
    "CONNECTORS",
    "PLATFORMS",
    "PLATFORM_ALIASES",
    "Connector",
    "ConnectorAuthError",
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorRateLimited",
    "ConnectorResponseError",
    "ConnectorSettings",
    "Event",
    "FetchResult",
    "PlatformSpec",
    "WebhookRoute",
    "canonical_platform",
]


def __getattr__(name: str) -> Any:
    """The registry's names, loaded when first asked for."""
    if name in _REGISTRY_NAMES:
        return getattr(importlib.import_module("connectors.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
