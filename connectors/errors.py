"""The one exception tree every connector raises; nothing from aiohttp leaks out.

::

    ConnectorError
    ├── ConnectorConnectionError   timeouts, DNS, resets, HTTP 5xx, platform "try again" codes
    ├── ConnectorAuthError         401/403, expired or revoked tokens (Meta code 190)
    ├── ConnectorRateLimited       429 and throttling codes; carries ``retry_after`` seconds
    └── ConnectorResponseError     malformed, truncated or unexpected payloads

Messages never contain tokens or message text: they name the platform, the account and what
went wrong, so they are safe to log.
"""

from __future__ import annotations

__all__ = [
    "ConnectorAuthError",
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorRateLimited",
    "ConnectorResponseError",
]


class ConnectorError(Exception):
    """Base class of every error a connector raises."""


class ConnectorConnectionError(ConnectorError):
    """The platform could not be reached or answered with a temporary failure."""


class ConnectorAuthError(ConnectorError):
    """The credentials were refused: the token expired, was revoked or lacks permissions."""


class ConnectorRateLimited(ConnectorError):
    """The platform throttled us; poll again no sooner than ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))


class ConnectorResponseError(ConnectorError):
    """The platform answered with a body we could not understand."""
