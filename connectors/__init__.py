"""Platform connectors: one module and one class per platform, registered here explicitly.

A connector knows HTTP, authentication, pagination and the platform's payloads, and nothing
else; policy (retries, storage, scheduling) lives in `monitor/`.
"""

from __future__ import annotations

from connectors.app_store import AppStoreConnector
from connectors.base import Connector, ConnectorSettings, Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.facebook import FacebookConnector
from connectors.google_business import GoogleBusinessConnector
from connectors.google_play import GooglePlayConnector
from connectors.instagram import InstagramConnector
from connectors.telegram import TelegramConnector
from connectors.trustpilot import TrustpilotConnector
from connectors.x import XConnector

__all__ = [
    "CONNECTORS",
    "AppStoreConnector",
    "Connector",
    "ConnectorAuthError",
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorRateLimited",
    "ConnectorResponseError",
    "ConnectorSettings",
    "Event",
    "FacebookConnector",
    "FetchResult",
    "GoogleBusinessConnector",
    "GooglePlayConnector",
    "InstagramConnector",
    "TelegramConnector",
    "TrustpilotConnector",
    "XConnector",
]

# platform name -> connector class; filled in as connectors land (style.md rule 6).
CONNECTORS: dict[str, type[Connector]] = {
    "app_store": AppStoreConnector,
    "facebook": FacebookConnector,
    "google_business": GoogleBusinessConnector,
    "google_play": GooglePlayConnector,
    "instagram": InstagramConnector,
    "telegram": TelegramConnector,
    "trustpilot": TrustpilotConnector,
    "x": XConnector,
}
