"""The one place connectors do HTTP: send a request, read the answer, map failures.

Every client calls :func:`send` for its I/O and reads the :class:`Reply` it returns; what
differs between platforms is passed in as parameters, never copied:

* no answer within the request timeout: ``ConnectorConnectionError`` ("no answer within N s");
* ``aiohttp.ClientError`` (DNS, refused, reset, a body cut short): ``ConnectorConnectionError``
  naming only the error's class, since ``str(err)`` of some aiohttp errors holds the URL and
  so whatever token travels in it. With ``url_holds_secret`` (Telegram's token is part of the
  path) the cause is not chained either, and a URL aiohttp cannot build (``ValueError``, a token
  with characters a URL may not hold) is a connection error too;
* :meth:`Reply.json`: an empty body, a content type that is not JSON, or JSON that does not
  parse is a ``ConnectorResponseError`` saying which;
* :func:`refusal`: an HTTP refusal judged on its status alone: 429 ``ConnectorRateLimited``
  (waiting what :meth:`Reply.retry_after` reads), 401 and 403 ``ConnectorAuthError``, 5xx
  ``ConnectorConnectionError``, anything else ``ConnectorResponseError``, each in the
  platform's own words (:class:`Refusals`). A platform whose body carries its own error codes
  translates them into the status they mean first (Google's ``RESOURCE_EXHAUSTED`` is a 429).

Messages name the platform, the account and what went wrong; never a token, a URL or a body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)

__all__ = ["JSON_TYPES", "Refusals", "Reply", "http_date", "refusal", "retry_after", "send"]

# Content types taken as JSON: any that says so (application/json, problem+json, ...).
JSON_TYPES: tuple[str, ...] = ("json",)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer read in full, and ``where`` it came from (for messages)."""

    status: int
    headers: CIMultiDict[str]
    raw: bytes
    where: str

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header as sent ("" when absent)."""
        return self.headers.get("Content-Type", "")

    def decode(self, accept: tuple[str, ...] | None = JSON_TYPES) -> tuple[Any, str | None]:
        """The body as JSON, or None and why it is not (``accept`` None: any content type)."""
        if not self.raw:
            return None, "empty body"
        if accept is not None and not any(kind in self.content_type for kind in accept):
            return None, f"expected JSON, got {self.content_type.split(';')[0] or 'no type'}"
        try:
            return json.loads(self.raw), None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, f"malformed or truncated JSON ({len(self.raw)} bytes)"

    def json(self, accept: tuple[str, ...] | None = JSON_TYPES) -> Any:
        """The body as JSON; a body that is not is a ``ConnectorResponseError``."""
        body, problem = self.decode(accept)
        if problem is not None:
            raise ConnectorResponseError(f"{self.where}: {problem} (HTTP {self.status})")
        return body

    def json_or_none(self, accept: tuple[str, ...] | None = JSON_TYPES) -> Any:
        """The body as JSON, or None: for refusals, which the status judges when the body can't."""
        return self.decode(accept)[0]

    def retry_after(self, default: float, *, http_dates: bool = False) -> float:
        """Seconds to wait from ``Retry-After`` (and HTTP dates if asked), else ``default``."""
        return retry_after(self.headers, default, http_dates=http_dates)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    where: str,
    timeout: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    json_body: Mapping[str, Any] | None = None,
    allow_redirects: bool = True,
    url_holds_secret: bool = False,
) -> Reply:
    """Make one request and read its answer; transport failures become connector errors."""
    unreachable: tuple[type[Exception], ...] = (aiohttp.ClientError,)
    if url_holds_secret:
        unreachable += (ValueError,)
    try:
        async with session.request(
            method,
            url,
            params=dict(params) if params is not None else None,
            headers=dict(headers) if headers is not None else None,
            json=dict(json_body) if json_body is not None else None,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=allow_redirects,
        ) as response:
            raw = await response.read()
            return Reply(response.status, CIMultiDict(response.headers), raw, where)
    except TimeoutError as err:
        raise ConnectorConnectionError(f"{where}: no answer within {timeout:g} s") from err
    except unreachable as err:
        failure = ConnectorConnectionError(f"{where}: {type(err).__name__}")
        if url_holds_secret:
            raise failure from None
        raise failure from err


@dataclass(frozen=True, slots=True)
class Refusals:
    """A platform's words for refusals judged on their HTTP status alone."""

    rate_limited: str = "rate limit reached"
    unauthorized: str = "credentials refused"
    forbidden: str = "permission missing"
    unavailable: str = "temporary platform failure"
    not_found: str = "request refused"
    refused: str = "request refused"


DEFAULT_REFUSALS = Refusals()


def refusal(
    status: int,
    label: str,
    *,
    wait: float,
    words: Refusals = DEFAULT_REFUSALS,
    detail: str = "",
) -> ConnectorError:
    """The error a refusal with this status raises: ``"<label>: <words><detail>"``."""
    if status == 429:
        return ConnectorRateLimited(f"{label}: {words.rate_limited}{detail}", wait)
    if status == 401:
        return ConnectorAuthError(f"{label}: {words.unauthorized}{detail}")
    if status == 403:
        return ConnectorAuthError(f"{label}: {words.forbidden}{detail}")
    if status >= 500:
        return ConnectorConnectionError(f"{label}: {words.unavailable}{detail}")
    if status == 404:
        return ConnectorResponseError(f"{label}: {words.not_found}{detail}")
    return ConnectorResponseError(f"{label}: {words.refused}{detail}")


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Date``, ``Retry-After``) as an aware UTC datetime; None if unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def retry_after(headers: Mapping[str, str], default: float, *, http_dates: bool = False) -> float:
    """Seconds to wait from ``Retry-After``: a number of seconds, or (``http_dates``) a date.

    A date is measured against the server's own ``Date`` when it sends one, so a skewed local
    clock does not stretch or cut the wait.
    """
    raw = headers.get("Retry-After", "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    until = http_date(raw) if http_dates else None
    if until is None:
        return default
    now = http_date(headers.get("Date")) or datetime.now(UTC)
    return max(0.0, (until - now).total_seconds())
