"""A fake Alertmanager API v2 that refuses what Alertmanager 0.25 refuses, the way it does.

Found by posting to the real one (tests/reliability/test_hostile_delivery.py keeps checking
that the two agree when Alertmanager is installed):

* HTTP 422, nothing kept: the request fails the API schema. ``generatorURL`` must pass Go's
  ``url.ParseRequestURI`` (ported below): no control byte, an absolute URI or an absolute
  path, well-formed ``%`` escapes and host. A line feed or a tab is refused; a space in the
  path or ``javascript:alert(1)`` is not.
* HTTP 400, nothing kept: a time that does not parse.
* HTTP 400, the valid alerts kept: an alert whose label or annotation name is not
  ``[a-zA-Z_][a-zA-Z0-9_]*``, that has no label left once empty values are dropped, or
  whose end is before its start.

Stricter than the real one in one point: a lone surrogate in a value is refused (Go's JSON
decoder quietly makes it U+FFFD), since replywatch promises valid UTF-8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SCHEME_FIRST = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SCHEME_REST = frozenset(b"0123456789+-.")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_USERINFO = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:~!$&'()*+,;=%@"
)
# Characters Go's shouldEscape lets through in a host (besides letters, digits, and >= 0x80).
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"-_.~")


class Refused(Exception):
    """Why a request or an alert is refused, with the HTTP status Alertmanager answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def go_request_uri_ok(text: str) -> bool:
    """Whether Go's ``url.ParseRequestURI`` (Go 1.19/1.20) accepts ``text``."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return False  # Go never sees a lone surrogate; replywatch must not send one
    if any(b < 0x20 or b == 0x7F for b in raw) or not raw:
        return False
    if raw == b"*":
        return True
    scheme, rest = _scheme(raw)
    if scheme is None:
        return False
    rest = rest.split(b"?", 1)[0]  # Go does not check the query
    if not rest.startswith(b"/"):
        return bool(scheme)  # "javascript:alert(1)" is an opaque URI: accepted
    if scheme and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        if not _authority_ok(authority):
            return False
    return _escapes_ok(rest, host=False)


def _scheme(raw: bytes) -> tuple[bytes | None, bytes]:
    for i, byte in enumerate(raw):
        if byte in _SCHEME_FIRST:
            continue
        if byte in _SCHEME_REST:
            if i == 0:
                return b"", raw
            continue
        if byte == ord(":"):
            return (None, b"") if i == 0 else (raw[:i], raw[i + 1 :])
        return b"", raw
    return b"", raw


def _authority_ok(authority: bytes) -> bool:
    at = authority.rfind(b"@")
    host = authority if at < 0 else authority[at + 1 :]
    if at >= 0:
        userinfo = authority[:at]
        if any(b not in _USERINFO for b in userinfo) or not _escapes_ok(userinfo, host=False):
            return False
    if host.startswith(b"["):
        close = host.rfind(b"]")
        if close < 0 or not _port_ok(host[close + 1 :]):
            return False
    elif (colon := host.rfind(b":")) != -1 and not _port_ok(host[colon:]):
        return False
    return _escapes_ok(host, host=True)


def _port_ok(port: bytes) -> bool:
    return port == b"" or (port[:1] == b":" and all(48 <= b <= 57 for b in port[1:]))


def _escapes_ok(part: bytes, host: bool) -> bool:
    i = 0
    while i < len(part):
        byte = part[i]
        if byte == ord("%"):
            if i + 2 >= len(part) or part[i + 1] not in _HEX or part[i + 2] not in _HEX:
                return False
            if host and int(chr(part[i + 1]), 16) < 8 and part[i : i + 3] != b"%25":
                return False
            i += 3
            continue
        if host and byte < 0x80 and not (chr(byte).isalnum() or byte in _HOST_OK):
            return False
        i += 1
    return True


def _valid_value(value: object) -> bool:
    return isinstance(value, str) and not re.search("[\ud800-\udfff]", value)


def _time(alert: dict[str, Any], key: str) -> datetime | None:
    value = alert.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise Refused(422, f"{key} in body must be of type date-time")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(400, f"parsing time {value!r}") from None


def check_schema(body: object) -> list[dict[str, Any]]:
    """The request's alerts, or Refused (422/400) when the whole request is refused."""
    if not isinstance(body, list):
        raise Refused(400, "body must be a list of alerts")
    for index, alert in enumerate(body):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise Refused(422, f"{index}.labels in body is required")
        for part in ("labels", "annotations"):
            values = alert.get(part) or {}
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise Refused(422, f"{index}.{part} in body must be a map of strings")
        url = alert.get("generatorURL")
        if url not in (None, "") and not (isinstance(url, str) and go_request_uri_ok(url)):
            raise Refused(422, f"{index}.generatorURL in body must be of type uri: {url!r}")
        _time(alert, "startsAt")
        _time(alert, "endsAt")
    return body


def check_alert(alert: dict[str, Any]) -> None:
    """Refused (400) when Alertmanager's model validation refuses this one alert."""
    labels = {k: v for k, v in alert["labels"].items() if v != ""}
    starts, ends = _time(alert, "startsAt"), _time(alert, "endsAt")
    if starts is not None and ends is not None and ends < starts:
        raise Refused(400, "start time must be before end time")
    for part, pairs in (("label set", labels), ("annotations", alert.get("annotations") or {})):
        for name, value in pairs.items():
            if not NAME.fullmatch(name):
                raise Refused(400, f"invalid {part}: invalid name {name!r}")
            if not _valid_value(value):
                raise Refused(400, f"invalid {part}: invalid value {value!r}")
    if not labels:
        raise Refused(400, "at least one label pair required")


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's identity of an alert: its label set."""
    return json.dumps({k: v for k, v in labels.items() if v != ""}, sort_keys=True)


def validate(body: object) -> tuple[int, list[dict[str, Any]], str]:
    """(status, alerts kept, message) for one POST, as Alertmanager 0.25 answers it."""
    try:
        alerts = check_schema(body)
    except Refused as refused:
        return refused.status, [], str(refused)
    kept, problems = [], []
    for alert in alerts:
        try:
            check_alert(alert)
        except Refused as refused:
            problems.append(str(refused))
            continue
        kept.append(alert)
    return (400 if problems else 200), kept, "; ".join(problems)


@dataclass
class FakeAlertmanager:
    """The API v2 alerts endpoint: validates, keeps accepted alerts by label set, counts posts.

    ``poison`` refuses any alert it matches on top of the real rules, a stand-in for a
    refusal replywatch cannot foresee (a newer Alertmanager, a proxy): with 422 the whole
    request is refused, with 400 the other alerts are kept.
    """

    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    refused: list[str] = field(default_factory=list)
    poison: Callable[[dict[str, Any]], bool] = lambda _alert: False
    poison_status: int = 422

    def app(self) -> web.Application:
        """The aiohttp application serving ``/api/v2/alerts``."""

        async def post(request: web.Request) -> web.Response:
            self.posts += 1
            status, kept, message = validate(json.loads(await request.text()))
            good = [a for a in kept if not self.poison(a)]
            if len(good) < len(kept):
                status, message = self.poison_status, "poisoned alert"
                if status == 422:
                    good = []
            for alert in good:
                self.alerts[fingerprint(alert["labels"])] = alert
            if status != 200:
                self.refused.append(message)
                return web.json_response(message, status=status)
            return web.Response()

        async def get(_request: web.Request) -> web.Response:
            return web.json_response(list(self.alerts.values()))

        app = web.Application()
        app.router.add_post("/api/v2/alerts", post)
        app.router.add_get("/api/v2/alerts", get)
        return app
