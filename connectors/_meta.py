"""What the Facebook and Instagram connectors share: inbox polling over the Graph API.

Per-platform differences live in :class:`MetaFlavour` rows, not in branches.

Threads (metrics.md section 1):

* a DM conversation is thread ``dm/<customer id>`` (the PSID or IGSID), so webhook deliveries,
  which carry no conversation id, land in the same thread as polled ones;
* in a comment tree (Facebook and Instagram flatten replies to one level under a top-level
  comment T), each customer's comments form thread ``T/<customer id>``; a business reply in
  the tree answers the customer whose comment most recently precedes it; a comment without
  an author (Graph hides some) is its own thread ``T/anonymous-<comment id>``; the business's
  own top-level comments are not events.

Polling: conversations come newest first and are read until one was last updated before the
high-water mark (minus a five-minute overlap: duplicates are harmless, gaps are not). Only the
20 most recent messages of a conversation are readable; when more may have been written since
the mark, the shortfall is counted in ``FetchResult.missed``. Comments are read on the most
recent posts or media (``options.comment_posts``, default 10). The cursor holds only our own
ISO high-water marks, never Graph paging cursors (they expire).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp

from connectors._graph import GraphClient, parse_graph_time
from connectors.base import ConnectorSettings, Event, FetchResult, comment_thread, dm_thread
from connectors.errors import ConnectorResponseError
from connectors.platform import PlatformSpec, WebhookRoute

__all__ = [
    "DEFAULT_GRAPH_VERSION",
    "META_WEBHOOK",
    "MetaConnector",
    "MetaFlavour",
    "comment_thread",
    "dm_thread",
]

log = logging.getLogger("connectors.meta")

# One webhook serves both platforms (connectors/meta_webhook.py); a delivery names the Page or
# the Instagram account, each platform's record says by which id.
META_WEBHOOK = WebhookRoute("meta", "/hooks/meta", ("app_secret", "verify_token"))
DEFAULT_GRAPH_VERSION = "v21.0"
OVERLAP = timedelta(minutes=5)
MESSAGE_DETAIL_LIMIT = 20


@dataclass(frozen=True, slots=True)
class MetaFlavour:
    """How one Meta platform names its ids, edges and fields."""

    platform: str
    owner_key: str
    messaging_platform: str
    parents_edge: str
    parents_fields: str
    comment_fields: str
    comment_time: str
    comment_url: str
    nested_replies: bool


@dataclass(frozen=True, slots=True)
class _Comment:
    id: str
    author: str | None
    created: datetime
    top: str
    url: str | None


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class MetaConnector:
    """Polls one Page's or Instagram account's DMs and comments."""

    record: ClassVar[PlatformSpec]
    platform: ClassVar[str]
    flavour: ClassVar[MetaFlavour]
    default_base_url: ClassVar[str] = "https://graph.facebook.com"

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        try:
            self.owner_id = settings.ids[self.flavour.owner_key]
            token = settings.secrets["access_token"]
        except KeyError as missing:
            raise ConnectorResponseError(
                f"{self.platform}/{settings.account}: missing setting {missing.args[0]}"
            ) from None
        self.graph = GraphClient(
            base_url=settings.base_url or self._base_url(),
            version=settings.options.get("graph_version", DEFAULT_GRAPH_VERSION),
            access_token=token,
            session=session,
            platform=self.platform,
            account=settings.account,
            request_timeout=settings.request_timeout,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.settings.account!r})"

    def _base_url(self) -> str:
        return self.default_base_url

    def _conversations_path(self) -> str:
        return f"{self.owner_id}/conversations"

    async def aclose(self) -> None:
        """The HTTP session is shared and owned by the caller; nothing to release."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Everything new since ``cursor``; an empty cursor backfills to ``backfill_since``."""
        self.graph.quota_used = None
        events: list[Event] = []
        new_cursor = dict(cursor)
        missed = 0
        if "dm" in self.settings.channels:
            dm_events, mark, missed = await self._direct_messages(self._since(cursor, "dm"))
            events += dm_events
            if mark:
                new_cursor["dm"] = mark
            new_cursor.setdefault("dm", self.settings.backfill_since.isoformat())
        if "comment" in self.settings.channels:
            comment_events, mark = await self._comments(self._since(cursor, "comment"))
            events += comment_events
            if mark:
                new_cursor["comment"] = mark
            new_cursor.setdefault("comment", self.settings.backfill_since.isoformat())
        return FetchResult(tuple(events), new_cursor, missed, self.graph.quota_used)

    def _since(self, cursor: Mapping[str, str], channel: str) -> datetime:
        mark = cursor.get(channel)
        if not mark:
            return self.settings.backfill_since
        try:
            return max(parse_graph_time(mark) - OVERLAP, self.settings.backfill_since - OVERLAP)
        except ValueError:
            return self.settings.backfill_since

    async def _direct_messages(self, since: datetime) -> tuple[list[Event], str | None, int]:
        fields = (
            "id,updated_time,link,message_count,participants,"
            f"messages.limit({MESSAGE_DETAIL_LIMIT}){{id,created_time,from}}"
        )
        params = {"platform": self.flavour.messaging_platform, "fields": fields, "limit": "25"}
        events: list[Event] = []
        newest: datetime | None = None
        missed = 0
        async for page in self.graph.pages(self._conversations_path(), params):
            stop = False
            for conversation in page:
                updated = self._time(conversation.get("updated_time"), "conversation")
                if updated < since:
                    stop = True
                    break
                newest = updated if newest is None or updated > newest else newest
                found, lost = self._conversation_events(conversation, since)
                events += found
                missed += lost
            if stop:
                break
        if missed:
            log.warning(
                "%s/%s: up to %d message(s) may be missed: only the %d most recent "
                "messages of a conversation can be read",
                self.platform,
                self.settings.account,
                missed,
                MESSAGE_DETAIL_LIMIT,
                extra={
                    "event": "messages_missed",
                    "platform": self.platform,
                    "account": self.settings.account,
                    "channel": "dm",
                    "items": missed,
                },
            )
        return events, newest.isoformat() if newest else None, missed

    def _conversation_events(
        self, conversation: dict[str, Any], since: datetime
    ) -> tuple[list[Event], int]:
        # Graph leaves empty edges out: a conversation whose only message was unsent has no
        # "messages" at all. Failing on it failed every poll of the account, for good.
        box = conversation.get("messages", {"data": []})
        messages = box.get("data") if isinstance(box, dict) else None
        if not isinstance(messages, list):
            raise ConnectorResponseError(
                f"{self.platform}/{self.settings.account}: conversation without a messages list"
            )
        customer = self._customer_of(conversation, messages)
        if customer is None:
            return [], 0
        link = _text(conversation.get("link"))
        url = f"https://www.facebook.com{link}" if link and link.startswith("/") else link
        events = []
        oldest: datetime | None = None
        for message in messages:
            if not isinstance(message, dict):
                continue
            mid = _text(message.get("id"))
            sender = message.get("from")
            sender_id = _text(sender.get("id")) if isinstance(sender, dict) else None
            if mid is None:
                raise ConnectorResponseError(
                    f"{self.platform}/{self.settings.account}: message without an id"
                )
            created = self._time(message.get("created_time"), "message")
            oldest = created if oldest is None or created < oldest else oldest
            events.append(
                Event(
                    platform=self.platform,
                    account=self.settings.account,
                    channel="dm",
                    thread_id=dm_thread(customer),
                    message_id=mid,
                    author_role="business" if sender_id == self.owner_id else "customer",
                    created_at=created,
                    thread_url=url,
                )
            )
        count = conversation.get("message_count")
        lost = 0
        if (
            isinstance(count, int)
            and len(messages) >= MESSAGE_DETAIL_LIMIT
            and count > len(messages)
            and oldest is not None
            and oldest > since
        ):
            lost = count - len(messages)
        return events, lost

    def _customer_of(self, conversation: dict[str, Any], messages: list[Any]) -> str | None:
        people = conversation.get("participants")
        listed = people.get("data") if isinstance(people, dict) else None
        candidates = [p.get("id") for p in listed or [] if isinstance(p, dict)]
        candidates += [
            m["from"].get("id")
            for m in messages
            if isinstance(m, dict) and isinstance(m.get("from"), dict)
        ]
        for candidate in candidates:
            ident = _text(candidate)
            if ident and ident != self.owner_id:
                return ident
        return None

    async def _comments(self, since: datetime) -> tuple[list[Event], str | None]:
        flavour = self.flavour
        limit = self.settings.options.get("comment_posts", "10")
        parents = await self.graph.get(
            f"{self.owner_id}/{flavour.parents_edge}",
            {"fields": flavour.parents_fields, "limit": limit},
        )
        data = parents.get("data")
        if not isinstance(data, list):
            raise ConnectorResponseError(
                f"{self.platform}/{self.settings.account}: "
                f"{flavour.parents_edge} without a data list"
            )
        events: list[Event] = []
        newest: datetime | None = None
        for parent in data:
            parent_id = _text(parent.get("id")) if isinstance(parent, dict) else None
            if parent_id is None:
                continue
            comments = await self._comment_tree(parent_id)
            for event in self._comment_events(comments):
                if event.created_at >= since:
                    events.append(event)
                    if newest is None or event.created_at > newest:
                        newest = event.created_at
        return events, newest.isoformat() if newest else None

    async def _comment_tree(self, parent_id: str) -> list[_Comment]:
        flavour = self.flavour
        params = {"fields": flavour.comment_fields, "limit": "100"}
        if not flavour.nested_replies:
            params.update(filter="stream", order="chronological")
        comments: list[_Comment] = []
        async for page in self.graph.pages(f"{parent_id}/comments", params):
            for item in page:
                comments += self._flatten(item)
        return comments

    def _flatten(self, item: dict[str, Any]) -> list[_Comment]:
        flavour = self.flavour
        found = [self._comment(item, None)]
        if flavour.nested_replies:
            replies = item.get("replies")
            data = replies.get("data") if isinstance(replies, dict) else None
            for reply in data or []:
                if isinstance(reply, dict):
                    found.append(self._comment(reply, found[0].id))
        return found

    def _comment(self, item: dict[str, Any], top: str | None) -> _Comment:
        flavour = self.flavour
        ident = _text(item.get("id"))
        if ident is None:
            raise ConnectorResponseError(
                f"{self.platform}/{self.settings.account}: comment without an id"
            )
        author = item.get("from")
        parent = item.get("parent")
        parent_id = _text(parent.get("id")) if isinstance(parent, dict) else None
        parent_id = parent_id or _text(item.get("parent_id"))
        return _Comment(
            id=ident,
            author=_text(author.get("id")) if isinstance(author, dict) else None,
            created=self._time(item.get(flavour.comment_time), "comment"),
            top=top or parent_id or ident,
            url=_text(item.get(flavour.comment_url)),
        )

    def _comment_events(self, comments: list[_Comment]) -> list[Event]:
        owner = self.owner_id
        events = []
        # The customer most recently heard from in each tree, for attributing replies.
        last_customer: dict[str, str] = {}
        for comment in sorted(comments, key=lambda c: (c.created, c.id)):
            is_business = comment.author == owner
            if is_business:
                customer = last_customer.get(comment.top)
                if customer is None:
                    continue  # the business's own post comment, or a reply nobody asked for
                role = "business"
            else:
                customer = comment.author or f"anonymous-{comment.id}"
                last_customer[comment.top] = customer
                role = "customer"
            events.append(
                Event(
                    platform=self.platform,
                    account=self.settings.account,
                    channel="comment",
                    thread_id=comment_thread(comment.top, customer),
                    message_id=comment.id,
                    author_role=role,  # type: ignore[arg-type]
                    created_at=comment.created,
                    thread_url=comment.url,
                )
            )
        return events

    def _time(self, value: object, what: str) -> datetime:
        try:
            return parse_graph_time(value)
        except ValueError:
            raise ConnectorResponseError(
                f"{self.platform}/{self.settings.account}: {what} with an unreadable time"
            ) from None
