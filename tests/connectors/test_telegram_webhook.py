"""Telegram webhooks: the secret header, documented and recorded updates, malformed bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import ConnectorSettings
from connectors.fakes.telegram import FakeTelegram
from connectors.telegram import TelegramConnector
from connectors.telegram_webhook import (
    SECRET_HEADER,
    TelegramPayloadError,
    connection_owners,
    parse_update,
    verify_secret,
)
from tests.connectors.conftest import NOW, fixture_bytes, fixture_json

BC = "DOC-EXAMPLE-CONNECTION-1"
OWNERS = {BC: "5100000001"}
SECRET = "hook_SECRET-0123456789"
TG_TOKEN = "7000000001:AAHtestSECRETtoken_0123456789abcdefXYZ"


def test_secret_must_match_exactly() -> None:
    """Right secret passes; wrong, missing, empty or differently cased ones fail."""
    assert verify_secret(SECRET, SECRET)
    assert not verify_secret("hook_SECRET-0123456788", SECRET)
    assert not verify_secret(SECRET.lower(), SECRET)
    assert not verify_secret(None, SECRET)
    assert not verify_secret("", SECRET)
    assert not verify_secret("", "")  # no secret configured: nothing is trusted
    assert not verify_secret(SECRET + "x", SECRET)


@pytest.mark.parametrize("owners", [OWNERS, {}])
def test_documented_business_updates_parse(owners: dict[str, str]) -> None:
    """Customer, owner, away, bot-sent and edited messages; the chat decides without owners."""
    got = []
    for name in (
        "doc-business-message-customer.json",
        "doc-business-message-owner-reply.json",
        "doc-business-message-away.json",
        "doc-business-message-via-bot.json",
        "doc-edited-business-message.json",
    ):
        [event] = parse_update(fixture_bytes("telegram", name), "shop", owners)
        got.append((event.message_id, event.author_role, event.created_at))
    sara, reza = f"{BC}/6200000002", f"{BC}/6200000003"
    replied = datetime.fromtimestamp(1763626500, tz=UTC)
    assert got == [
        (f"{sara}:311", "customer", datetime.fromtimestamp(1763626200, tz=UTC)),
        (f"{sara}:312", "business", replied),
        (f"{reza}:313", "automated", datetime.fromtimestamp(1763626800, tz=UTC)),
        (f"{reza}:314", "business", datetime.fromtimestamp(1763626900, tz=UTC)),
        (f"{sara}:312", "business", replied),  # the edit keeps the first time
    ]


def test_automated_bots_are_honoured() -> None:
    """A bot listed as automated sends automated messages, not answers."""
    body = fixture_bytes("telegram", "doc-business-message-via-bot.json")
    [event] = parse_update(body, "shop", OWNERS, automated_bots={"7300000009"})
    assert event.author_role == "automated"


def test_owner_map_decides_over_the_chat() -> None:
    """With a known owner, a third party in the chat is a customer, not the business."""
    update = fixture_json("telegram", "doc-business-message-customer.json")
    update["business_message"]["from"]["id"] = 9999
    [with_owner] = parse_update(json.dumps(update).encode(), "shop", OWNERS)
    [without] = parse_update(json.dumps(update).encode(), "shop", {})
    assert (with_owner.author_role, without.author_role) == ("customer", "business")


def test_connection_updates_give_owners_not_events() -> None:
    """A business_connection delivery teaches the owner map and is no event."""
    body = fixture_bytes("telegram", "doc-business-connection.json")
    assert parse_update(body, "shop", {}) == []
    assert connection_owners(body) == OWNERS
    assert connection_owners(fixture_bytes("telegram", "doc-business-message-customer.json")) == {}


@pytest.mark.parametrize(
    "name",
    [
        "update-private-text-message.json",
        "update-supergroup-reply-command.json",
        "update-private-message-link-preview.json",
    ],
)
def test_recorded_messages_to_the_bot_are_not_events(name: str) -> None:
    """Real plain `message` updates are valid Updates but not business conversations."""
    assert parse_update(fixture_bytes("telegram", name), "shop", OWNERS) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a JSON object"),
        (fixture_bytes("telegram", "getupdates-envelope-poll-answer.json"), "update_id"),
        (b'{"update_id": "7", "business_message": {}}', "update_id"),
        (b'{"update_id": 7, "business_message": []}', "not an object"),
        (
            b'{"update_id": 7, "business_message": {"business_connection_id": "b",'
            b' "message_id": 1, "from": {"id": 2}, "date": 1, "text": "secret words"}}',
            "'chat'",
        ),
        (
            b'{"update_id": 7, "business_message": {"business_connection_id": "b",'
            b' "message_id": 1, "from": {"id": 2}, "chat": {"id": 2}, "date": "1",'
            b' "text": "secret words"}}',
            "Unix seconds",
        ),
        (b'{"update_id": 7, "business_connection": {"id": "b"}}', "'user'"),
    ],
)
def test_malformed_bodies_raise_a_value_error(body: bytes, words: str) -> None:
    """Malformed bodies raise TelegramPayloadError (a ValueError) without quoting them."""
    with pytest.raises(TelegramPayloadError) as caught:
        parse_update(body, "shop", OWNERS)
    assert isinstance(caught.value, ValueError)
    assert words in str(caught.value)
    assert "secret words" not in str(caught.value)


@pytest.fixture
async def fake_with_webhook() -> AsyncIterator[tuple[FakeTelegram, str]]:
    """A fake Bot API on 127.0.0.1 and its URL."""
    fake = FakeTelegram(TG_TOKEN)
    fake.clock = lambda: NOW
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield fake, str(server.make_url("/")).rstrip("/")
    await server.close()


async def test_fake_delivery_matches_the_poller(
    fake_with_webhook: tuple[FakeTelegram, str], session: aiohttp.ClientSession
) -> None:
    """A webhook delivery carries the set secret and gives the events a poll gives."""
    fake, url = fake_with_webhook
    bc = fake.add_business_connection(5100000001, NOW - timedelta(hours=1))
    fake.customer_message(bc, 6200000002, NOW - timedelta(minutes=9))
    fake.business_reply(bc, 6200000002, NOW - timedelta(minutes=3))
    settings = ConnectorSettings(
        account="shop",
        ids={},
        secrets={"bot_token": TG_TOKEN},
        channels=("dm",),
        backfill_since=NOW - timedelta(days=1),
        base_url=url,
    )
    polled = await TelegramConnector(settings, session).fetch_since({})
    hook = {"url": "https://example.org/hooks/telegram/shop", "secret_token": SECRET}
    async with session.post(f"{url}/bot{TG_TOKEN}/setWebhook", json=hook) as response:
        assert (await response.json())["result"] is True
    owners: dict[str, str] = {}
    delivered = []
    for update in fake.pending_updates():
        body, headers = fake.webhook_delivery(update["update_id"])
        assert verify_secret(headers.get(SECRET_HEADER), SECRET)
        assert not verify_secret(headers.get(SECRET_HEADER), "another-secret")
        owners.update(connection_owners(body))
        delivered += parse_update(body, "shop", owners)
    assert owners == {bc: "5100000001"}
    assert tuple(delivered) == polled.events


async def test_fake_refuses_a_bad_secret_token(
    fake_with_webhook: tuple[FakeTelegram, str], session: aiohttp.ClientSession
) -> None:
    """setWebhook refuses secrets outside 1-256 characters of A-Z a-z 0-9 _ -."""
    fake, url = fake_with_webhook
    hook = {"url": "https://example.org/hooks/telegram/shop", "secret_token": "has space"}
    async with session.post(f"{url}/bot{TG_TOKEN}/setWebhook", json=hook) as response:
        body = await response.json()
    assert response.status == 400 and body["ok"] is False
    assert fake.webhook_url == "" and fake.webhook_secret is None
