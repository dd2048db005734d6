"""Facebook Page messages (Messenger conversations) and comments on the Page's posts."""

from __future__ import annotations

from typing import ClassVar

from connectors._meta import MetaConnector, MetaFlavour

__all__ = ["FacebookConnector"]


class FacebookConnector(MetaConnector):
    """Polls a Facebook Page through the Graph API with a Page access token."""

    platform: ClassVar[str] = "facebook"
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
