"""One JSON object per log record, for log collectors (``--log-format json``).

Each line holds, in this order:

- ``time``: when the record was made, RFC 3339 in UTC with milliseconds
  (``2026-11-16T09:00:00.123Z``);
- ``level``: ``debug``, ``info``, ``warning``, ``error`` or ``critical``;
- ``logger``: the logger's name (``monitor.alerts``);
- ``event``: the stable name the call gave through ``extra={"event": ...}``
  (``alert_sent``); a call that gave none (a library's, or a detail line) gets the last part
  of its logger's name followed by ``_log`` (``alembic.runtime.migration`` ->
  ``migration_log``), so every line can be filtered on ``event``;
- ``message``: the message exactly as text mode prints it;
- every other ``extra`` field the call gave (``platform``, ``account``, ...); one whose name
  is taken by the keys above is written as ``extra_<name>``;
- ``exc_info`` (and ``stack_info``): the traceback as text, when the record has one.

Dates and times are written in ISO 8601; other values that are not JSON types as their
``str()``. Non-ASCII characters and
control characters are escaped, so a record is always exactly one line.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["JsonFormatter", "event_of"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_OWN_KEYS = ("time", "level", "logger", "event", "message", "exc_info", "stack_info")
_NOT_A_NAME_CHARACTER = re.compile(r"[^a-z0-9]+")


def event_of(record: logging.LogRecord) -> str:
    """The record's event name: its ``event`` extra, else ``<last part of logger>_log``."""
    given = record.__dict__.get("event")
    if isinstance(given, str) and given:
        return given
    last = record.name.rsplit(".", 1)[-1].lower()
    return f"{_NOT_A_NAME_CHARACTER.sub('_', last).strip('_') or 'root'}_log"


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: object) -> str:
    # json.dumps calls this for what it cannot write itself.
    return value.isoformat() if isinstance(value, date) else str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (the keys are listed in the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event_of(record),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key == "event":
                continue
            entry[f"extra_{key}" if key in _OWN_KEYS else key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=_plain)
