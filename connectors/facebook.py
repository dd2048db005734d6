"""Facebook Page messages (Messenger conversations) and comments on the Page's posts."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from connectors._meta import META_WEBHOOK, MetaConnector, MetaFlavour
from connectors.platform import PlatformSpec

__all__ = ["FacebookConnector"]


class FacebookConnector(MetaConnector):
    """Polls a Facebook Page through the Graph API with a Page access token."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "facebook",
        ids=("page_id",),
        secrets=("access_token",),
        channels=("dm", "comment"),
        default_channel="dm",
        launched=date(2004, 2, 4),
        aliases=("fb",),
        webhook=META_WEBHOOK.for_account_id("page_id"),
        fake="meta",
    )
    platform: ClassVar[str] = record.name
    flavour: ClassVar[MetaFlavour] = MetaFlavour(
        platform="facebook",
        owner_key="page_id",
        messaging_platform="messenger",
        parents_edge="feed",
        parents_fields="id,created_time,permalink_url",
        comment_fields="id,created_time,from{id,name},parent{id},permalink_url",
        comment_time="created_time",
        comment_url="permalink_url",
        nested_replies=False,
    )
