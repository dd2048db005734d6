"""Untrusted text made safe for each medium it leaves by; pure functions that never raise.

Account and channel names, conversation ids and thread links come from platforms and
customers, and each medium has its own metacharacters: ``<!channel>`` pings a whole Slack
channel and ``<https://evil.example|Reset your password>`` disguises a link, a line feed in
a mail Subject is a header injection (the email package refuses it with ValueError), and a
line feed in ``generatorURL`` makes Alertmanager refuse the whole batch it came in; a CSV
cell starting with ``=`` is a formula to a spreadsheet, an ESC in a name starts a terminal
sequence and a ``|`` ends a Markdown table cell. Writers apply these to text cells only, never
to the numbers they format themselves.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "FORMULA_STARTS",
    "MAX_URL",
    "TELEGRAM_LIMIT",
    "alertmanager_alert",
    "alertmanager_name",
    "csv_formula_safe",
    "csv_text_cell",
    "http_url",
    "lines",
    "mail_header",
    "markdown_cell",
    "markdown_url",
    "one_line",
    "slack_link",
    "slack_text",
    "telegram_text",
]

# Longer links are not thread links; they would also crowd Telegram's 4096-character limit.
MAX_URL = 2048
# sendMessage refuses longer texts (counted in UTF-16 code units) every time: cut instead.
TELEGRAM_LIMIT = 4096
MAIL_HEADER_LIMIT = 200
# OWASP "CSV Injection": a cell starting with one of these is a formula to Excel and
# LibreOffice (=HYPERLINK(...), +cmd|..., @SUM(...)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# DEL and C1 controls, line and paragraph separators, bidi embeddings, overrides and isolates
# (they reorder what a reader sees), lone surrogates (no UTF-8 encoder accepts them); with C0.
_OTHER_UNSAFE = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")
_UNSAFE_BUT_LF = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_UNSAFE}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# RFC 3986 sub-delims; with the unreserved characters (quote() always keeps them) and the
# delimiters each part may hold, they are all a URL part needs unencoded.
_SUB_DELIMS = "!$&'()*+,;="
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")
# host[:port] and nothing else: no credentials (https://bank.example@evil.example), and
# nothing after "]" (urlsplit quietly ignores the "x" of "[::1]x").
_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\[\]:@]+)(?::[0-9]*)?")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _cut(text: str, limit: int | None) -> str:
    if limit is None or _utf16_length(text) <= limit:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit - 1:  # room for the "…"
            return text[:index] + "…"
    return text


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line: controls, separators, bidi marks and lone surrogates as escapes.

    Escapes (``\\n``, ``\\x07``, ``\\u202e``) rather than deletion: on-call sees that a name
    held a line feed, and the same input always gives the same output (Alertmanager tells
    alerts apart by their labels). ``limit`` cuts the result (in UTF-16 units, as Telegram
    counts) and ends it with "…".
    """
    return _cut(_UNSAFE.sub(_shown, text), limit)


def lines(text: str, limit: int | None = None) -> str:
    """Like :func:`one_line` but keeping line feeds (CR LF and a lone CR become LF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _cut(_UNSAFE_BUT_LF.sub(_shown, text), limit)


def http_url(url: str | None) -> str | None:
    """``url`` as a clean absolute http(s) URL, or None when it is not one.

    Refused: other schemes (``javascript:``, ``data:``), whitespace or control characters
    anywhere, credentials, a missing or malformed host or port, more than MAX_URL characters.
    Characters RFC 3986 does not allow (``<>|"{}``, non-ASCII, ``%`` without two hex digits)
    are percent-encoded and a non-ASCII host is written in IDNA form, so the result is plain
    ASCII that no medium reads as markup and Alertmanager accepts as ``generatorURL``.
    """
    if not url or len(url) > MAX_URL or _UNSAFE.search(url):
        return None
    if any(char.isspace() for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed IPv6 literal or port
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not _NETLOC.fullmatch(parts.netloc):
        return None
    host = _host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    if host is None:
        return None
    return urlunsplit(
        (
            scheme,
            host if port is None else f"{host}:{port}",
            # "/" at least: without it a "#" would end the host for Go's URL parser.
            _quoted(parts.path, "/:@") or "/",
            _quoted(parts.query, "/?:@"),
            _quoted(parts.fragment, "/?:@"),
        )
    )


def _host(host: str, bracketed: bool) -> str | None:
    if bracketed:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:  # also refuses zone ids ("fe80::1%eth0")
            return None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:  # an empty or over-long label
        return None
    return ascii_host if _HOST.fullmatch(ascii_host) else None


def _quoted(part: str, delimiters: str) -> str:
    return quote(_LONE_PERCENT.sub("%25", part), safe=_SUB_DELIMS + delimiters + "%")


def slack_text(text: str) -> str:
    """Plain text for Slack mrkdwn: ``&``, ``<``, ``>`` as entities, so none of it is markup."""
    return lines(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str | None, label: str | None = None) -> str:
    """A Slack link to ``url`` when it is a usable http(s) URL (see :func:`http_url`), else ''.

    Without a label Slack shows the address itself, so a reader sees where it leads.
    """
    target = http_url(url)
    if target is None:
        return ""
    # http_url leaves no "<", ">" or "|" in the address; "&" is Slack's escape character.
    target = target.replace("&", "&amp;")
    return f"<{target}|{slack_text(one_line(label))}>" if label else f"<{target}>"


def telegram_text(text: str) -> str:
    """Text for sendMessage without ``parse_mode`` (so none of it is markup), cut to fit."""
    return lines(text, TELEGRAM_LIMIT)


def mail_header(text: str, limit: int = MAIL_HEADER_LIMIT) -> str:
    """A mail header value (Subject): one line, so nothing in it can start another header."""
    return one_line(text, limit)


def alertmanager_name(name: str) -> str:
    """A label or annotation name Alertmanager accepts (``[a-zA-Z_][a-zA-Z0-9_]*``)."""
    cleaned = _NOT_NAME.sub("_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else "_" + cleaned


def alertmanager_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    starts_at: datetime,
    ends_at: datetime,
    link: str | None = None,
) -> dict[str, Any]:
    """One alert for ``POST /api/v2/alerts`` that Alertmanager accepts whatever the inputs hold.

    Names are made valid, label values put on one line, annotation values cleaned, times
    given a zone and put in order ("start time must be before end time" is a refusal), and
    ``link`` becomes ``generatorURL`` only when it is a usable http(s) URL; otherwise the
    annotation ``link_problem`` says it was left out (one bad ``generatorURL`` makes
    Alertmanager refuse the whole batch with HTTP 422).
    """
    clean_labels = {
        alertmanager_name(name): one_line(value) for name, value in labels.items() if value
    }
    clean_annotations = {
        alertmanager_name(name): lines(value) for name, value in annotations.items()
    }
    starts, ends = _aware(starts_at), _aware(ends_at)
    alert: dict[str, Any] = {
        # Alertmanager drops empty label values and refuses an alert left with no label.
        "labels": clean_labels or {"alertname": "unnamed"},
        "annotations": clean_annotations,
        "startsAt": min(starts, ends).isoformat(),
        "endsAt": ends.isoformat(),
    }
    target = http_url(link)
    if target is not None:
        alert["generatorURL"] = target
        clean_annotations["link"] = target
    elif link:
        clean_annotations["link_problem"] = (
            "the platform's link to this conversation is not a usable http(s) URL; left out"
        )
    return alert


def _aware(moment: datetime) -> datetime:
    # A time without a zone is written without an offset, which Alertmanager cannot parse.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def csv_formula_safe(text: str) -> str:
    """A text cell a spreadsheet reads as text: a formula start gets a leading quote (OWASP)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text_cell(text: str) -> str:
    """A text cell for CSV output: controls made visible, then formula starts neutralised."""
    return csv_formula_safe(one_line(text))


def markdown_cell(text: str) -> str:
    """Text for one Markdown table cell: controls visible, backslashes and pipes escaped."""
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|")


def markdown_url(url: str) -> str:
    """A link target for a Markdown table: spaces, brackets, pipes, controls percent-encoded."""
    return quote(url, safe="!#$%&'*+,/:;=?@[]~")
