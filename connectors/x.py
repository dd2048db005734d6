"""X (Twitter) API v2: public mentions of the business and its direct messages.

Channels and endpoints (platform-apis.md section 3):

* ``mention``: ``GET /2/users/:id/mentions`` for what customers write to the business, and
  ``GET /2/users/:id/tweets`` (retweets excluded) for the business's replies, since replies do
  not mention their author and so never appear among the mentions;
* ``dm``: ``GET /2/dm_events`` (``MessageCreate`` events), which needs a user-context token.

Threads (metrics.md section 1), using the same names as the Meta connectors:

* a customer's posts in one conversation (``conversation_id``, the id of its root post) form
  thread ``<conversation_id>/<customer id>``; a business post that replies to a customer
  (``in_reply_to_user_id``) lands in ``<conversation_id>/<that customer>``. Business posts that
  reply to nobody or to the business itself (a thread of its own) are not events, nor are
  retweets;
* a one-to-one DM conversation (``<smaller id>-<larger id>``) is thread ``dm/<customer id>``;
  a group conversation is one thread ``dm/group-<conversation id>``.

Polling: posts are read newer than the highest post id seen (``since_id``, exact and cheap:
X bills every post a response returns, so no overlap is re-read); the first poll reads from
``backfill_since`` (``start_time``). DM events come newest first without ``since_id``, so
they are read until an event at or below the last id seen. The cursor holds only those ids.

Every request carries ``Authorization: Bearer``; the token appears in no URL, message, repr or
log line. Failures map onto ``connectors.errors``: 429 (both body styles) becomes
``ConnectorRateLimited`` until ``x-rate-limit-reset``, a usage-cap 429 waits an hour, 401 and
403 become ``ConnectorAuthError``, 5xx, timeouts and resets ``ConnectorConnectionError``, and
anything else ``ConnectorResponseError``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import aiohttp

from connectors._http import Refusals, refusal, retry_after, send
from connectors.base import ConnectorSettings, Event, FetchResult, comment_thread, dm_thread
from connectors.errors import ConnectorAuthError, ConnectorRateLimited, ConnectorResponseError
from connectors.platform import PlatformSpec

__all__ = ["DEFAULT_BASE_URL", "XConnector", "parse_x_time", "post_url"]

DEFAULT_BASE_URL = "https://api.x.com"
POST_FIELDS = "id,text,author_id,created_at,conversation_id,in_reply_to_user_id,referenced_tweets"
DM_FIELDS = "id,event_type,text,sender_id,created_at,dm_conversation_id"
PAGE_SIZE = "100"
# X rejects start_time before this day.
EARLIEST_START = datetime(2010, 11, 6, tzinfo=UTC)
# Most X rate-limit windows are 15 minutes; used when a 429 names no reset time.
WINDOW_SECONDS = 900.0
# A spent usage cap lasts until the plan's period ends, which no header tells: retry hourly.
USAGE_CAP_WAIT = 3600.0
EXCERPT = 140
# What X will show at all (platform-apis.md 3.2, 3.3): the newest 800 mentions, and direct
# messages of the last 30 days. Reaching either is logged and counted as missed.
MENTION_REACH = 800
DM_REACH = timedelta(days=30)

log = logging.getLogger("connectors.x")
REFUSALS = Refusals(
    rate_limited="rate limited", unauthorized="token refused (wrong, expired or revoked)"
)
# Why X refused, by the last segment of the problem ``type`` URL.
PROBLEM_HINTS = {
    "unsupported-authentication": (
        "this endpoint needs a user-context token; an app-only bearer token cannot read "
        "direct messages"
    ),
    "client-forbidden": "the app is not attached to a Project with access to this endpoint",
    "not-authorized-for-resource": "the token's user may not read this resource",
}


def parse_x_time(value: object) -> datetime:
    """Parse X's ``created_at`` (``2021-02-24T02:13:43.000Z``) into an aware UTC time.

    The v1.1 form (``Wed Jan 06 18:40:40 +0000 2021``), which X's current reference pages
    show in their examples, is accepted too.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("not a time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no offset")
    return parsed.astimezone(UTC)


def post_url(post_id: str) -> str:
    """A link to a post that works without knowing its author's handle."""
    return f"https://x.com/i/web/status/{post_id}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mark(newest: int) -> str | None:
    return str(newest) if newest else None


def _since(mark: str | None) -> int | None:
    return int(mark) if mark and mark.isdigit() else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class XConnector:
    """Polls one X account's mentions, its replies to them, and its direct messages."""

    # DMs need a user-context token; an app's bearer token reads mentions only, so mentions
    # are the default and DMs are asked for with channels = ["mention", "dm"].
    record: ClassVar[PlatformSpec] = PlatformSpec(
        "x",
        ids=("user_id",),
        secrets=("bearer_token",),
        channels=("mention", "dm"),
        default_channel="mention",
        default_channels=("mention",),
        launched=date(2006, 3, 21),
        aliases=("twitter",),
    )
    platform: ClassVar[str] = record.name

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        try:
            self.user_id = settings.ids["user_id"]
            self._token = settings.secrets["bearer_token"]
        except KeyError as missing:
            raise ConnectorResponseError(
                f"x/{settings.account}: missing setting {missing.args[0]}"
            ) from None
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.quota_used: float | None = None
        # Only to tell whether a backfill reaches further back than X keeps direct messages.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        # X's history limits are logged when they start and stop mattering, not at every poll
        # (a poll that fails after the check would otherwise repeat it until one succeeds).
        self._at_mention_reach = False
        self._told_dm_reach = False

    def __repr__(self) -> str:
        return f"XConnector(account={self.settings.account!r})"

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Everything new since ``cursor``; an empty cursor backfills to ``backfill_since``."""
        self.quota_used = None
        events: dict[str, Event] = {}
        new_cursor = dict(cursor)
        reads: list[tuple[str, str, dict[str, str]]] = []
        if "mention" in self.settings.channels:
            reads.append(("mention", f"users/{self.user_id}/mentions", {}))
            reads.append(("own_post", f"users/{self.user_id}/tweets", {"exclude": "retweets"}))
        missed = 0
        for key, path, extra in reads:
            found, mark, read = await self._posts(path, extra, cursor.get(key))
            events.update((event.message_id, event) for event in found)
            if mark:
                new_cursor[key] = mark
            if key == "mention":
                if read >= MENTION_REACH:
                    missed += 1  # counted at every poll: each may have lost mentions
                self._note_mention_reach(read)
        if "dm" in self.settings.channels and "dm_reach_checked" not in cursor:
            new_cursor["dm_reach_checked"] = "1"  # counted once per account, not every poll
            reach = self.clock() - DM_REACH
            if self.settings.backfill_since < reach:
                missed += 1
                self._note_dm_reach(reach)
        if "dm" in self.settings.channels:
            found, mark = await self._direct_messages(cursor.get("dm"))
            events.update((event.message_id, event) for event in found)
            if mark:
                new_cursor["dm"] = mark
        return FetchResult(tuple(events.values()), new_cursor, missed, self.quota_used)

    def _note_mention_reach(self, read: int) -> None:
        """Log when polls start or stop reaching X's 800-mention limit."""
        reached = read >= MENTION_REACH
        if reached == self._at_mention_reach:
            return
        self._at_mention_reach = reached
        fields = {"platform": "x", "account": self.settings.account, "channel": "mention"}
        if reached:
            log.warning(
                "x/%s: %d mentions read, X's limit: older mentions in this window cannot "
                "be read and may be missing from the figures",
                self.settings.account,
                read,
                extra={"event": "history_limit_reached", "items": read, **fields},
            )
        else:
            log.info(
                "x/%s: mentions are within X's limit again (%d read)",
                self.settings.account,
                read,
                extra={"event": "history_limit_cleared", "items": read, **fields},
            )

    def _note_dm_reach(self, reach: datetime) -> None:
        """Log once that a backfill asks for direct messages older than X keeps."""
        if self._told_dm_reach:
            return
        self._told_dm_reach = True
        log.warning(
            "x/%s: direct messages older than 30 days cannot be read; the backfill starts at %s",
            self.settings.account,
            reach.date().isoformat(),
            extra={
                "event": "backfill_truncated",
                "platform": "x",
                "account": self.settings.account,
                "channel": "dm",
            },
        )

    # -- posts ---------------------------------------------------------------------------

    async def _posts(
        self, path: str, extra: dict[str, str], since_id: str | None
    ) -> tuple[list[Event], str | None, int]:
        params = {"tweet.fields": POST_FIELDS, "max_results": PAGE_SIZE, **extra}
        seen = _since(since_id)
        if seen is not None:
            params["since_id"] = str(seen)
        else:
            start = max(self.settings.backfill_since.astimezone(UTC), EARLIEST_START)
            params["start_time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        events: list[Event] = []
        newest = seen or 0
        read = 0
        async for page in self._pages(path, params):
            read += len(page)
            for post in page:
                ident = self._id(post, "post")
                newest = max(newest, int(ident))
                event = self._post_event(post, ident)
                if event is not None:
                    events.append(event)
        return events, _mark(newest), read

    def _post_event(self, post: dict[str, Any], ident: str) -> Event | None:
        references: dict[str, str] = {}
        for reference in post.get("referenced_tweets") or []:
            if isinstance(reference, dict):
                kind, target = _text(reference.get("type")), _text(reference.get("id"))
                if kind and target:
                    references[kind] = target
        if "retweeted" in references:
            return None
        replied_to = references.get("replied_to")
        # Without conversation_id (only when X leaves it out) the replied-to post stands in.
        root = _text(post.get("conversation_id")) or replied_to or ident
        author = _text(post.get("author_id"))
        if author == self.user_id:
            customer = _text(post.get("in_reply_to_user_id"))
            if replied_to is None or customer is None or customer == self.user_id:
                return None  # an announcement, a quote, or the business continuing its thread
            role, url = "business", post_url(replied_to)
        else:
            customer = author or f"anonymous-{ident}"
            role, url = "customer", post_url(ident)
        text = _text(post.get("text"))
        return Event(
            platform=self.platform,
            account=self.settings.account,
            channel="mention",
            thread_id=comment_thread(root, customer),
            message_id=ident,
            author_role=role,  # type: ignore[arg-type]
            created_at=self._time(post.get("created_at"), "post"),
            text_excerpt=text[:EXCERPT] if text else None,
            thread_url=url,
        )

    # -- direct messages -----------------------------------------------------------------

    async def _direct_messages(self, mark: str | None) -> tuple[list[Event], str | None]:
        params = {
            "dm_event.fields": DM_FIELDS,
            "event_types": "MessageCreate",
            "max_results": PAGE_SIZE,
        }
        seen = _since(mark)
        newest = seen or 0
        events: list[Event] = []
        async for page in self._pages("dm_events", params):
            for item in page:
                ident = self._id(item, "direct message")
                created = self._time(item.get("created_at"), "direct message")
                known = seen is not None and int(ident) <= seen
                if known or (seen is None and created < self.settings.backfill_since):
                    return events, _mark(newest)  # newest first: the rest was read before
                newest = max(newest, int(ident))
                if item.get("event_type", "MessageCreate") == "MessageCreate":
                    events.append(self._dm_event(item, ident, created))
        return events, _mark(newest)

    def _dm_event(self, item: dict[str, Any], ident: str, created: datetime) -> Event:
        sender = _text(item.get("sender_id"))
        if sender is None:
            raise ConnectorResponseError(
                f"x/{self.settings.account}: direct message without sender_id"
            )
        conversation = _text(item.get("dm_conversation_id"))
        members = conversation.split("-") if conversation else []
        if len(members) == 2 and self.user_id in members:
            customer = members[1] if members[0] == self.user_id else members[0]
            thread = dm_thread(customer)
        elif conversation:
            thread = dm_thread(f"group-{conversation}")
        elif sender != self.user_id:
            thread = dm_thread(sender)
        else:
            raise ConnectorResponseError(
                f"x/{self.settings.account}: business message without dm_conversation_id"
            )
        text = _text(item.get("text"))
        return Event(
            platform=self.platform,
            account=self.settings.account,
            channel="dm",
            thread_id=thread,
            message_id=ident,
            author_role="business" if sender == self.user_id else "customer",
            created_at=created,
            text_excerpt=text[:EXCERPT] if text else None,
        )

    # -- parsing helpers -----------------------------------------------------------------

    def _id(self, item: dict[str, Any], what: str) -> str:
        ident = _text(item.get("id"))
        if ident is None or not ident.isdigit():
            raise ConnectorResponseError(f"x/{self.settings.account}: {what} without an id")
        return ident

    def _time(self, value: object, what: str) -> datetime:
        try:
            return parse_x_time(value)
        except ValueError:
            raise ConnectorResponseError(
                f"x/{self.settings.account}: {what} without a readable created_at"
            ) from None

    # -- HTTP ----------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: Mapping[str, str]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's ``data`` list, following ``meta.next_token`` until it ends."""
        query = dict(params)
        while True:
            body = await self._request(path, query)
            data = body.get("data", [])
            if not isinstance(data, list):
                raise ConnectorResponseError(f"x/{self.settings.account} {path}: data is no list")
            yield [item for item in data if isinstance(item, dict)]
            meta = body.get("meta")
            following = _text(meta.get("next_token")) if isinstance(meta, dict) else None
            if following is None:
                return
            query = {**params, "pagination_token": following}

    async def _request(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET ``/2/<path>`` and translate its failures (X sends ``problem+json`` errors)."""
        reply = await send(
            self.session,
            "GET",
            f"{self.base_url}/2/{path}",
            where=f"x/{self.settings.account} {path}",
            timeout=self.settings.request_timeout,
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        self._note_quota(reply.headers)
        if reply.status >= 400:
            refused = reply.json_or_none()
            raise _error(
                reply.status,
                refused if isinstance(refused, dict) else {},
                reply.headers,
                reply.where,
            )
        body = reply.json()
        if not isinstance(body, dict):
            raise ConnectorResponseError(f"{reply.where}: expected a JSON object")
        if "data" not in body and "meta" not in body:
            # A 200 holding only errors[], e.g. a user id that does not exist.
            raise ConnectorResponseError(
                f"{reply.where}: {_describe(body) or 'neither data nor meta'}"
            )
        return body

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        limit = _number(headers.get("x-rate-limit-limit"))
        remaining = _number(headers.get("x-rate-limit-remaining"))
        if limit and remaining is not None and limit > 0:
            used = min(1.0, max(0.0, 1.0 - remaining / limit))
            self.quota_used = max(self.quota_used or 0.0, used)


def _problem_kind(body: Mapping[str, Any]) -> str:
    kind = _text(body.get("type")) or ""
    return kind.rstrip("/").rsplit("/", 1)[-1]


def _v1_codes(body: Mapping[str, Any]) -> set[int]:
    """Codes of the v1.1-style ``{"errors": [{"code": 88, ...}]}`` body."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), int)}


def _describe(body: Mapping[str, Any]) -> str:
    """The problem's title and detail (or the first error's), short; never message text."""
    title, detail = _text(body.get("title")), _text(body.get("detail"))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        title = title or _text(first.get("title"))
        detail = detail or _text(first.get("detail")) or _text(first.get("message"))
    words = ": ".join(part for part in (title, detail) if part)
    return words[:200]


def _error(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str], where: str
) -> Exception:
    kind = _problem_kind(body)
    codes = _v1_codes(body)
    described = _describe(body)
    label = f"{where}: HTTP {status}" + (f" {described}" if described else "")
    if kind == "usage-capped" or body.get("title") == "UsageCapExceeded":
        period = _text(body.get("period")) or "plan"
        return ConnectorRateLimited(
            f"{where}: HTTP {status} usage cap reached ({period.lower()} cap)", USAGE_CAP_WAIT
        )
    if status == 403 and not codes & {32, 88, 89}:
        hint = PROBLEM_HINTS.get(kind, "permission missing")
        return ConnectorAuthError(f"{where}: HTTP 403 {body.get('title') or 'Forbidden'}: {hint}")
    return refusal(_meant_status(status, codes), label, wait=_wait(headers), words=REFUSALS)


def _meant_status(status: int, codes: set[int]) -> int:
    """The HTTP status X's v1.1-style codes mean: 88 is a rate limit, 32 and 89 bad tokens."""
    if status == 429 or 88 in codes:
        return 429
    if status == 401 or codes & {32, 89}:
        return 401
    return status


def _wait(headers: Mapping[str, str]) -> float:
    """Seconds to wait: ``Retry-After``, else until ``x-rate-limit-reset`` on the server's clock."""
    return retry_after(headers, _until_reset(headers))


def _until_reset(headers: Mapping[str, str]) -> float:
    reset = _number(headers.get("x-rate-limit-reset"))
    if reset is None:
        return WINDOW_SECONDS
    now = time.time()
    date = headers.get("Date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            now = parsedate_to_datetime(date).timestamp()
    return max(1.0, reset - now)
