"""Instagram direct messages and comments on the account's media.

Both API flavours are supported (``options.login``): ``facebook`` (the default) reads
``graph.facebook.com/{page_id}/conversations?platform=instagram`` with a Page token;
``instagram`` reads ``graph.instagram.com/me/conversations?platform=instagram`` with an
Instagram user token. The business is told apart by ``from.id == ig_user_id`` on both.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from connectors._meta import META_WEBHOOK, MetaConnector, MetaFlavour
from connectors.platform import PlatformSpec

__all__ = ["InstagramConnector"]


class InstagramConnector(MetaConnector):
    """Polls an Instagram professional account through the Graph API."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "instagram",
        ids=("ig_user_id",),
        secrets=("access_token",),
        channels=("dm", "comment"),
        default_channel="dm",
        launched=date(2010, 10, 6),
        aliases=("ig",),
        webhook=META_WEBHOOK.for_account_id("ig_user_id"),
        fake="meta",
    )
    platform: ClassVar[str] = record.name
    flavour: ClassVar[MetaFlavour] = MetaFlavour(
        platform="instagram",
        owner_key="ig_user_id",
        messaging_platform="instagram",
        parents_edge="media",
        parents_fields="id,timestamp,permalink",
        comment_fields=(
            "id,timestamp,from{id,username},parent_id,permalink,"
            "replies{id,timestamp,from{id,username},parent_id}"
        ),
        comment_time="timestamp",
        comment_url="permalink",
        nested_replies=True,
    )

    def _instagram_login(self) -> bool:
        return self.settings.options.get("login", "facebook") == "instagram"

    def _base_url(self) -> str:
        return "https://graph.instagram.com" if self._instagram_login() else super()._base_url()

    def _conversations_path(self) -> str:
        if self._instagram_login():
            return "me/conversations"
        page = self.settings.ids.get("page_id")
        if not page:
            # Without a linked Page the Facebook-login flavour has no conversations edge.
            return f"{self.owner_id}/conversations"
        return f"{page}/conversations"
