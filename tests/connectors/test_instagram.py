"""The Instagram connector: both login flavours, nested reply trees, recorded media comments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import aiohttp

from connectors._graph import parse_graph_time
from connectors.base import ConnectorSettings
from connectors.fakes.meta import FakeMeta
from connectors.instagram import InstagramConnector
from tests.connectors.conftest import NOW, fixture_json

Settings = Callable[..., ConnectorSettings]


def at(minutes: float) -> object:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


async def test_dms_on_both_hosts_tell_the_business_by_id(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """Facebook login reads /{page}/conversations, Instagram login /me/conversations."""
    m1 = fake_meta.customer_message("178", "igsid1", at(9))
    m2 = fake_meta.business_reply("178", "igsid1", at(4))
    via_page = InstagramConnector(
        settings_for({"ig_user_id": "178", "page_id": "900"}, channels=("dm",)), session
    )
    via_me = InstagramConnector(
        settings_for({"ig_user_id": "178"}, channels=("dm",), options={"login": "instagram"}),
        session,
    )
    for connector in (via_page, via_me):
        result = await connector.fetch_since({})
        roles = {(e.message_id, e.author_role, e.thread_id) for e in result.events}
        assert roles == {(m1, "customer", "dm/igsid1"), (m2, "business", "dm/igsid1")}
    assert any("/900/conversations" in path for path in fake_meta.requests)
    assert any("/me/conversations" in path for path in fake_meta.requests)


async def test_nested_reply_trees_become_per_customer_threads(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """Two customers in one media's tree, the business answering each, one anonymous."""
    fake_meta.add_post("178", at(500))
    top = fake_meta.customer_comment("178", "a", at(50))
    other = fake_meta.customer_comment("178", "b", at(45), reply_to=top)
    reply_b = fake_meta.business_comment_reply("178", other, at(40))
    again_a = fake_meta.customer_comment("178", "a", at(35), reply_to=top)
    reply_a = fake_meta.business_comment_reply("178", top, at(30))
    hidden = fake_meta.customer_comment("178", None, at(20))
    connector = InstagramConnector(
        settings_for({"ig_user_id": "178"}, channels=("comment",)), session
    )
    result = await connector.fetch_since({})
    got = {(e.message_id, e.thread_id, e.author_role) for e in result.events}
    assert got == {
        (top, f"{top}/a", "customer"),
        (other, f"{top}/b", "customer"),
        (reply_b, f"{top}/b", "business"),
        (again_a, f"{top}/a", "customer"),
        (reply_a, f"{top}/a", "business"),
        (hidden, f"{hidden}/anonymous-{hidden}", "customer"),
    }


async def test_recorded_media_comments(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """The recorded IG comments page (no authors requested) parses into customer events."""
    media = fake_meta.add_post("178", at(100))
    recorded = fixture_json("instagram", "graph-media-comments.json")
    recorded["paging"].pop("next")
    fake_meta.fail_next("recorded", body={"data": [{"id": media}]})
    fake_meta.fail_next("recorded", body=recorded)
    connector = InstagramConnector(
        settings_for(
            {"ig_user_id": "178"},
            channels=("comment",),
            backfill_since=parse_graph_time("2020-01-01T00:00:00+0000"),
        ),
        session,
    )
    result = await connector.fetch_since({})
    assert sorted(e.message_id for e in result.events) == sorted(c["id"] for c in recorded["data"])
    assert {e.created_at.isoformat() for e in result.events} == {
        "2020-06-01T10:56:52+00:00",
        "2020-06-01T10:16:39+00:00",
    }


async def test_conversation_whose_messages_were_all_unsent_is_read_as_empty(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """An Instagram conversation emptied by "unsend" has no messages edge; the poll succeeds."""
    gone = fake_meta.customer_message("178", "igsid1", at(20))
    fake_meta.unsend("178", gone, at(5))
    kept = fake_meta.customer_message("178", "igsid2", at(30))
    connector = InstagramConnector(
        settings_for({"ig_user_id": "178", "page_id": "900"}, channels=("dm",)), session
    )
    result = await connector.fetch_since({})
    assert [e.message_id for e in result.events] == [kept]
    assert parse_graph_time(result.cursor["dm"]) == at(5)
