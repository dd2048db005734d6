"""The Telegram connector against the fake Bot API: offsets, business chats, every failure."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import ConnectorSettings, Event
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.fakes.telegram import FakeTelegram
from connectors.telegram import (
    ALLOWED_UPDATES,
    MAX_RETRY_AFTER,
    TelegramConnector,
    business_message_id,
    business_thread,
    parse_telegram_time,
    update_event,
)
from tests.connectors.conftest import NOW, fixture_json

TG_TOKEN = "7000000001:AAHtestSECRETtoken_0123456789abcdefXYZ"
OWNER = 5100000001
CUSTOMER = 6200000002
OTHER = 6200000003
Settings = Callable[..., ConnectorSettings]


def at(minutes: float) -> datetime:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


def ids(connection: str, customer: int, *numbers: int) -> list[str]:
    """The event message ids of some Telegram messages in one chat."""
    return [business_message_id(connection, str(customer), str(n)) for n in numbers]


def roles(events: tuple[Event, ...]) -> dict[str, str]:
    """message_id -> author_role."""
    return {e.message_id: e.author_role for e in events}


def get_updates_calls(fake: FakeTelegram) -> list[dict[str, Any]]:
    """The parameters of every getUpdates request the fake received."""
    return [params for method, params in fake.requests if method == "getUpdates"]


@pytest.fixture
def fake_telegram() -> FakeTelegram:
    """A fake Bot API for one bot whose clock stands at NOW."""
    fake = FakeTelegram(TG_TOKEN)
    fake.clock = lambda: NOW
    return fake


@pytest.fixture
async def telegram_url(fake_telegram: FakeTelegram) -> AsyncIterator[str]:
    """The fake Bot API served on 127.0.0.1."""
    # No access log: Bot API request lines carry the token in the path.
    server = TestServer(fake_telegram.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake_telegram.release_slow()
    await server.close()


@pytest.fixture
def tg_settings(telegram_url: str) -> Settings:
    """Build Telegram connector settings pointed at the fake."""

    def build(**overrides: Any) -> ConnectorSettings:
        values: dict[str, Any] = {
            "account": "shop",
            "ids": {},
            "secrets": {"bot_token": TG_TOKEN},
            "channels": ("dm",),
            "backfill_since": NOW - timedelta(days=7),
            "base_url": telegram_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        return ConnectorSettings(**values)

    return build


@pytest.fixture
def telegram(tg_settings: Settings, session: aiohttp.ClientSession) -> TelegramConnector:
    """A connector for the fake's bot."""
    return TelegramConnector(tg_settings(), session)


# -- happy paths ----------------------------------------------------------------------------


async def test_backfill_reads_business_chats_with_roles(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """Customer, owner, away and bot-sent messages get their roles, threads and times."""
    bc = fake_telegram.add_business_connection(OWNER, at(600))
    m1 = fake_telegram.customer_message(bc, CUSTOMER, at(30), username="sara")
    m2 = fake_telegram.business_reply(bc, CUSTOMER, at(20))
    m3 = fake_telegram.customer_message(bc, OTHER, at(15))
    m4 = fake_telegram.away_message(bc, OTHER, at(15))
    m5 = fake_telegram.business_reply(bc, OTHER, at(5), via_bot=7300000009)
    result = await telegram.fetch_since({})
    [c1, r1] = ids(bc, CUSTOMER, m1, m2)
    [c2, away, r2] = ids(bc, OTHER, m3, m4, m5)
    assert roles(result.events) == {
        c1: "customer",
        r1: "business",
        c2: "customer",
        away: "automated",
        r2: "business",
    }
    by_id = {e.message_id: e for e in result.events}
    assert by_id[c1].thread_id == by_id[r1].thread_id == business_thread(bc, str(CUSTOMER))
    assert by_id[c1].created_at == at(30) and by_id[r2].created_at == at(5)
    assert by_id[c1].thread_url == "https://t.me/sara" and by_id[c2].thread_url is None
    assert {(e.platform, e.account, e.channel) for e in result.events} == {
        ("telegram", "shop", "dm")
    }
    last = fake_telegram.pending_updates()[-1]["update_id"]
    assert result.cursor["offset"] == str(last + 1)
    assert json.loads(result.cursor["connections"]) == {bc: str(OWNER)}
    assert result.cursor["last_update_at"] == at(5).isoformat()


async def test_polls_send_the_offset_and_what_they_need(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """A short poll asking for business updates; the stored offset is what confirms a batch."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    fake_telegram.customer_message(bc, CUSTOMER, at(30))
    first = await telegram.fetch_since({})
    # Fetching confirmed nothing: the batch waits at Telegram until the next poll.
    assert len(fake_telegram.pending_updates()) == 2
    m2 = fake_telegram.business_reply(bc, CUSTOMER, at(10))
    second = await telegram.fetch_since(first.cursor)
    assert [e.message_id for e in second.events] == ids(bc, CUSTOMER, m2)
    calls = get_updates_calls(fake_telegram)
    assert len(calls) == 2 and "offset" not in calls[0]
    assert calls[1]["offset"] == int(first.cursor["offset"])
    assert calls[0]["timeout"] == 0
    assert set(calls[0]["allowed_updates"]) >= {
        "business_message",
        "edited_business_message",
        "business_connection",
        "message",
    }
    assert [u["update_id"] for u in fake_telegram.pending_updates()] == [
        int(second.cursor["offset"]) - 1
    ]


async def test_crash_between_fetch_and_store_loses_nothing(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """Unconfirmed updates come again: a second fetch from the old cursor is the same batch."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    fake_telegram.customer_message(bc, CUSTOMER, at(30))
    stored = await telegram.fetch_since({})
    fake_telegram.business_reply(bc, CUSTOMER, at(20))
    fake_telegram.customer_message(bc, CUSTOMER, at(10))
    lost = await telegram.fetch_since(stored.cursor)  # the monitor crashes before storing
    again = await telegram.fetch_since(stored.cursor)
    assert len(lost.events) == 2
    assert again.events == lost.events and again.cursor == lost.cursor
    after = await telegram.fetch_since(again.cursor)
    assert after.events == () and after.cursor["offset"] == again.cursor["offset"]


async def test_one_getupdates_per_poll_and_at_most_100(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """150 waiting updates take two polls; the second one is never sent ahead of the first."""
    bc = fake_telegram.add_business_connection(OWNER, at(600))
    for i in range(149):
        fake_telegram.customer_message(bc, CUSTOMER + i, at(300 - i))
    first = await telegram.fetch_since({})
    assert len(get_updates_calls(fake_telegram)) == 1
    assert len(first.events) == 99  # the connection update is the 100th
    second = await telegram.fetch_since(first.cursor)
    assert len(second.events) == 50
    assert not {e.message_id for e in first.events} & {e.message_id for e in second.events}


async def test_backfill_since_bounds_only_the_first_poll(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Messages older than backfill_since are confirmed but not returned on the first poll."""
    connector = TelegramConnector(tg_settings(backfill_since=at(60)), session)
    bc = fake_telegram.add_business_connection(OWNER, at(600))
    old = fake_telegram.customer_message(bc, CUSTOMER, at(120))
    new = fake_telegram.customer_message(bc, CUSTOMER, at(30))
    first = await connector.fetch_since({})
    assert [e.message_id for e in first.events] == ids(bc, CUSTOMER, new)
    fake_telegram.edit_message(bc, CUSTOMER, old, at(1))
    second = await connector.fetch_since(first.cursor)
    # Later polls keep everything, even an edit of a message from before the bound.
    assert [e.message_id for e in second.events] == ids(bc, CUSTOMER, old)


async def test_edit_keeps_the_first_time(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """An edited business message is the same message at its original time."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    reply = fake_telegram.business_reply(bc, CUSTOMER, at(30))
    fake_telegram.edit_message(bc, CUSTOMER, reply, at(2))
    result = await telegram.fetch_since({})
    [original, edit] = result.events
    assert original.message_id == edit.message_id == ids(bc, CUSTOMER, reply)[0]
    assert original.created_at == edit.created_at == at(30)
    assert edit.author_role == "business"
    assert result.cursor["last_update_at"] == at(2).isoformat()


async def test_last_update_at_never_goes_back(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """An empty poll keeps the mark, and an older update does not move it back."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    fake_telegram.customer_message(bc, CUSTOMER, at(10))
    first = await telegram.fetch_since({})
    empty = await telegram.fetch_since(first.cursor)
    assert empty.cursor == first.cursor
    fake_telegram.customer_message(bc, OTHER, at(40))  # delivered late
    late = await telegram.fetch_since(empty.cursor)
    assert late.cursor["last_update_at"] == at(10).isoformat()


async def test_unknown_connection_is_resolved_once_and_kept(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A connection first seen in a message is asked for, cached, and known after a restart."""
    bc = fake_telegram.add_business_connection(OWNER, at(900), announce=False)
    m1 = fake_telegram.customer_message(bc, CUSTOMER, at(30))
    m2 = fake_telegram.business_reply(bc, CUSTOMER, at(20))
    m3 = fake_telegram.business_reply(bc, OTHER, at(19))
    first = await TelegramConnector(tg_settings(), session).fetch_since({})
    [c1, r1] = ids(bc, CUSTOMER, m1, m2)
    [r2] = ids(bc, OTHER, m3)
    # The reply to OTHER comes first in its chat, so only the owner map makes it "business".
    assert roles(first.events) == {c1: "customer", r1: "business", r2: "business"}
    lookups = [p for m, p in fake_telegram.requests if m == "getBusinessConnection"]
    assert lookups == [{"business_connection_id": bc}]
    assert json.loads(first.cursor["connections"]) == {bc: str(OWNER)}
    fake_telegram.customer_message(bc, CUSTOMER, at(5))
    restarted = TelegramConnector(tg_settings(), session)
    second = await restarted.fetch_since(first.cursor)
    assert len(second.events) == 1
    assert [m for m, _ in fake_telegram.requests].count("getBusinessConnection") == 1


async def test_unresolvable_connection_is_classified_by_chat(
    fake_telegram: FakeTelegram, telegram: TelegramConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection Telegram no longer knows does not block the batch: the chat id decides."""
    bc = fake_telegram.add_business_connection(OWNER, at(900), announce=False)
    m1 = fake_telegram.customer_message(bc, CUSTOMER, at(30))
    m2 = fake_telegram.business_reply(bc, CUSTOMER, at(20))
    fake_telegram.forget_connection(bc)
    with caplog.at_level(logging.DEBUG):
        result = await telegram.fetch_since({})
        again = await telegram.fetch_since({})
    [c1, r1] = ids(bc, CUSTOMER, m1, m2)
    assert roles(result.events) == {c1: "customer", r1: "business"}
    assert "connections" not in result.cursor and "offset" in result.cursor
    assert again.events == result.events
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "could not be resolved" in warnings[0].getMessage()
    assert [m for m, _ in fake_telegram.requests].count("getBusinessConnection") == 1


async def test_automated_bots_option_marks_their_messages(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Messages a listed chatbot sends for the business are automated, not answers."""
    connector = TelegramConnector(
        tg_settings(options={"automated_bots": " 7300000009 , 1"}), session
    )
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    listed = fake_telegram.business_reply(bc, CUSTOMER, at(20), via_bot=7300000009)
    other = fake_telegram.business_reply(bc, CUSTOMER, at(10), via_bot=7300000010)
    result = await connector.fetch_since({})
    assert roles(result.events) == dict(
        zip(ids(bc, CUSTOMER, listed, other), ["automated", "business"], strict=True)
    )


async def test_other_updates_are_confirmed_without_events(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """Messages to the bot itself, deletions and disconnections make no events but move on."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    fake_telegram.bot_message(CUSTOMER, at(30))
    fake_telegram.allowed = None  # deletions were asked for before this poller started
    fake_telegram.delete_messages(bc, CUSTOMER, [1], at(20))
    fake_telegram.disable_connection(bc, at(10))
    result = await telegram.fetch_since({})
    assert result.events == ()
    assert result.cursor["offset"] == str(fake_telegram.pending_updates()[-1]["update_id"] + 1)
    # A disconnection carries the connection's own date; the bot message is the newest time.
    assert result.cursor["last_update_at"] == at(30).isoformat()
    # The poller's allowed_updates now keep deletions from being queued at all.
    fake_telegram.delete_messages(bc, CUSTOMER, [2], at(5))
    after = await telegram.fetch_since(result.cursor)
    assert after.events == () and fake_telegram.pending_updates() == []


async def test_long_poll_option_waits_for_the_next_update(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """With long_poll_seconds the request waits at Telegram and returns when a message comes."""
    connector = TelegramConnector(tg_settings(options={"long_poll_seconds": "30"}), session)
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    first = await connector.fetch_since({})
    polling = asyncio.create_task(connector.fetch_since(first.cursor))
    await asyncio.wait_for(fake_telegram.waiting.wait(), 5)
    m1 = fake_telegram.customer_message(bc, CUSTOMER, at(1))
    result = await asyncio.wait_for(polling, 5)
    assert [e.message_id for e in result.events] == ids(bc, CUSTOMER, m1)
    assert get_updates_calls(fake_telegram)[-1]["timeout"] == 30


async def test_a_second_poller_is_a_conflict(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Another getUpdates on the same token ends ours with 409, reported with the fix."""
    connector = TelegramConnector(tg_settings(options={"long_poll_seconds": "30"}), session)
    polling = asyncio.create_task(connector.fetch_since({}))
    await asyncio.wait_for(fake_telegram.waiting.wait(), 5)
    other = TelegramConnector(tg_settings(), session)
    assert (await other.fetch_since({})).events == ()
    with pytest.raises(ConnectorResponseError, match="another program is polling"):
        await asyncio.wait_for(polling, 5)


async def test_an_active_webhook_is_a_conflict(
    fake_telegram: FakeTelegram,
    telegram: TelegramConnector,
    telegram_url: str,
    session: aiohttp.ClientSession,
) -> None:
    """While a webhook is set Telegram refuses getUpdates; the error says deleteWebhook."""
    hook = f"{telegram_url}/bot{TG_TOKEN}/setWebhook"
    async with session.post(hook, json={"url": "https://example.org/hooks/telegram/shop"}) as r:
        assert (await r.json())["ok"] is True
    with pytest.raises(ConnectorResponseError, match="deleteWebhook") as caught:
        await telegram.fetch_since({})
    assert "409" in str(caught.value) and TG_TOKEN not in str(caught.value)


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("server_error", {"status": 500}, ConnectorConnectionError, "temporary platform failure"),
        ("server_error", {"status": 502, "html": True}, ConnectorConnectionError, "HTTP 502"),
        ("reset", {}, ConnectorConnectionError, "ClientOSError"),
        ("expired_token", {}, ConnectorAuthError, "refused"),
        ("invalid_token", {}, ConnectorAuthError, "names no bot"),
        ("conflict", {"reason": "other"}, ConnectorResponseError, "another program is polling"),
        ("conflict", {"reason": "webhook"}, ConnectorResponseError, "deleteWebhook"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("missing_fields", {"field": "result"}, ConnectorResponseError, "ok without a result"),
        ("missing_fields", {"field": "update_id"}, ConnectorResponseError, "'update_id'"),
        ("missing_fields", {"field": "chat"}, ConnectorResponseError, "no 'chat' object"),
        ("missing_fields", {"field": "date"}, ConnectorResponseError, "not Unix seconds"),
        ("missing_fields", {"field": "from"}, ConnectorResponseError, "no 'from' object"),
    ],
)
async def test_every_failure_maps_to_the_exception_tree(
    fake_telegram: FakeTelegram,
    telegram: TelegramConnector,
    kind: str,
    options: dict[str, object],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception, naming what went wrong."""
    bc = fake_telegram.add_business_connection(OWNER, at(60), announce=False)
    fake_telegram.customer_message(bc, CUSTOMER, at(5))
    fake_telegram.fail_next(kind, **options)
    with pytest.raises(error) as caught:
        await telegram.fetch_since({})
    assert words in str(caught.value)
    assert TG_TOKEN not in str(caught.value) and TG_TOKEN not in repr(caught.value)
    assert "(simulated)" not in str(caught.value)
    # Nothing was confirmed: the next poll returns the message.
    assert len((await telegram.fetch_since({})).events) == 1


async def test_flood_control_honours_retry_after(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """HTTP 429 with parameters.retry_after becomes ConnectorRateLimited with that wait."""
    fake_telegram.fail_next("rate_limited", retry_after=7)
    with pytest.raises(ConnectorRateLimited, match="flood control") as caught:
        await telegram.fetch_since({})
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("hours", [24, 34, 10**6])
async def test_a_flood_wait_past_what_telegram_keeps_is_capped_and_logged_once(
    fake_telegram: FakeTelegram,
    telegram: TelegramConnector,
    caplog: pytest.LogCaptureFixture,
    hours: int,
) -> None:
    """Updates live 24 h: a longer wait loses them for sure, so it is capped, said once."""
    bc = fake_telegram.add_business_connection(OWNER, at(60), announce=False)
    fake_telegram.customer_message(bc, CUSTOMER, at(5))
    fake_telegram.fail_next("rate_limited", times=2, retry_after=hours * 3600)
    with caplog.at_level(logging.WARNING, logger="connectors.telegram"):
        for _ in range(2):
            with pytest.raises(ConnectorRateLimited) as caught:
                await telegram.fetch_since({})
            assert caught.value.retry_after == MAX_RETRY_AFTER < 24 * 3600
            assert f"asked {hours * 3600} s" in str(caught.value)
        capped = [r for r in caplog.records if "waiting 3600 s instead" in r.getMessage()]
        assert len(capped) == 1
        assert len((await telegram.fetch_since({})).events) == 1  # nothing was confirmed
        # After a poll that worked, the next capped wait is said again.
        fake_telegram.fail_next("rate_limited", retry_after=hours * 3600)
        with pytest.raises(ConnectorRateLimited):
            await telegram.fetch_since({})
    assert len([r for r in caplog.records if "instead" in r.getMessage()]) == 2


async def test_an_unreadable_flood_wait_is_capped_not_a_crash(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """A retry_after past float's range is a long wait like any other, not an OverflowError."""
    body = FakeTelegram.error_body(429, "Too Many Requests", retry_after=10**400)
    fake_telegram.fail_next("recorded", body=body, status=429)
    with pytest.raises(ConnectorRateLimited) as caught:
        await telegram.fetch_since({})
    assert caught.value.retry_after == MAX_RETRY_AFTER


async def test_timeout_and_refused_connection(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A response slower than the timeout, and a closed port, are connection errors."""
    slow = TelegramConnector(tg_settings(request_timeout=0.05), session)
    fake_telegram.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within") as caught:
        await slow.fetch_since({})
    assert TG_TOKEN not in str(caught.value)
    closed = TelegramConnector(tg_settings(base_url="http://127.0.0.1:9"), session)
    with pytest.raises(ConnectorConnectionError) as refused:
        await closed.fetch_since({})
    assert TG_TOKEN not in str(refused.value)


async def test_lookup_failure_fails_the_poll_and_confirms_nothing(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """A 5xx from getBusinessConnection fails the whole poll; the retry gets everything."""
    bc = fake_telegram.add_business_connection(OWNER, at(900), announce=False)
    fake_telegram.customer_message(bc, CUSTOMER, at(30))
    fake_telegram.fail_next("server_error", method="getBusinessConnection")
    with pytest.raises(ConnectorConnectionError, match="getBusinessConnection"):
        await telegram.fetch_since({})
    result = await telegram.fetch_since({})
    assert len(result.events) == 1 and bc in json.loads(result.cursor["connections"])


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("7000000001:AAHwrongWRONGtoken_0123456789abcdefXYZ", "refused"),
        ("not-a-bot-token", "names no bot"),
    ],
)
async def test_wrong_tokens_are_auth_errors_and_never_leak(
    tg_settings: Settings,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    token: str,
    words: str,
) -> None:
    """A revoked token (401) and a malformed one (404) are auth errors; no token anywhere."""
    connector = TelegramConnector(tg_settings(secrets={"bot_token": token}), session)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert words in str(caught.value)
    assert token not in str(caught.value) and token not in repr(connector)
    assert all(token not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("options", "secrets"),
    [
        ({"long_poll_seconds": "soon"}, {"bot_token": TG_TOKEN}),
        ({"limit": "500"}, {"bot_token": TG_TOKEN}),
        ({}, {}),
    ],
)
async def test_bad_settings_are_refused(
    tg_settings: Settings,
    session: aiohttp.ClientSession,
    options: dict[str, str],
    secrets: dict[str, str],
) -> None:
    """A missing token or an out-of-range option is named when the connector is built."""
    with pytest.raises(ConnectorResponseError, match=r"option|bot_token"):
        TelegramConnector(tg_settings(options=options, secrets=secrets), session)


@pytest.mark.parametrize("mark", ["yesterday", "2099-01-01T00:00:00"])
async def test_damaged_cursor_reads_unconfirmed_updates_again(
    fake_telegram: FakeTelegram, telegram: TelegramConnector, mark: str
) -> None:
    """A damaged offset, connection map or time mark costs duplicates, never a gap."""
    bc = fake_telegram.add_business_connection(OWNER, at(60))
    fake_telegram.customer_message(bc, CUSTOMER, at(5))
    damaged = {"offset": "x1", "connections": "{not json", "last_update_at": mark}
    result = await telegram.fetch_since(damaged)
    assert len(result.events) == 1
    assert json.loads(result.cursor["connections"]) == {bc: str(OWNER)}
    assert result.cursor["last_update_at"] == at(5).isoformat()


# -- recorded and documented payloads ---------------------------------------------------------


async def test_recorded_errors_map(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """The recorded 409 and retry_after bodies raise a conflict and a rate limit."""
    conflict = fixture_json("telegram", "error-409-getupdates-conflict.json")
    fake_telegram.fail_next("recorded", body=conflict, status=409)
    with pytest.raises(ConnectorResponseError, match="only one poller per token"):
        await telegram.fetch_since({})
    retry = fixture_json("telegram", "error-retry-after-shape.json")
    fake_telegram.fail_next("recorded", body=retry, status=429)
    with pytest.raises(ConnectorRateLimited) as caught:
        await telegram.fetch_since({})
    # The recorded hint is 123,456 s (34 h): past Telegram's 24 h it is capped.
    assert retry["parameters"]["retry_after"] > MAX_RETRY_AFTER
    assert caught.value.retry_after == MAX_RETRY_AFTER


async def test_recorded_envelope_and_messages_are_read(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """Recorded updates to the bot itself are confirmed and dropped; update_id 0 counts."""
    envelope = fixture_json("telegram", "getupdates-envelope-poll-answer.json")
    fake_telegram.fail_next("recorded", body=envelope)
    first = await telegram.fetch_since({})
    assert first.events == () and first.cursor["offset"] == "1"
    for name in (
        "update-private-text-message.json",
        "update-supergroup-reply-command.json",
        "update-private-message-link-preview.json",
    ):
        fake_telegram.add_update(fixture_json("telegram", name), at=at(5))
    result = await telegram.fetch_since(first.cursor)
    assert result.events == ()
    assert result.cursor["offset"] == "892252935"  # the newest recorded update_id + 1
    assert result.cursor["last_update_at"] == "2024-07-21T20:09:40+00:00"


@pytest.mark.parametrize(
    "name",
    [
        "update-private-text-message.json",
        "update-supergroup-reply-command.json",
        "update-private-message-link-preview.json",
    ],
)
def test_recorded_messages_parse_as_business_messages(name: str) -> None:
    """Real Message objects (entities, replies, stories, previews) parse when under business."""
    update = fixture_json("telegram", name)
    assert update_event(update, "shop", {}) is None  # a chat with the bot itself
    message = {**update["message"], "business_connection_id": "BC1"}
    event = update_event({"update_id": 1, "business_message": message}, "shop", {})
    assert event is not None
    chat = str(message["chat"]["id"])
    assert event.thread_id == f"BC1/{chat}"
    assert event.message_id == f"BC1/{chat}:{message['message_id']}"
    assert event.created_at == parse_telegram_time(message["date"])
    # Owner unknown: the sender is the customer exactly when the chat is theirs.
    expected = "customer" if message["from"]["id"] == message["chat"]["id"] else "business"
    assert event.author_role == expected
    assert event.text_excerpt is None


async def test_documented_business_updates_through_the_fake(
    fake_telegram: FakeTelegram, tg_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """The documentation-shaped business updates give the roles section 8 describes."""
    since = parse_telegram_time(1735689600)  # 2025-01-01: the examples are dated 2025
    telegram = TelegramConnector(tg_settings(backfill_since=since), session)
    for name in (
        "doc-business-connection.json",
        "doc-business-message-customer.json",
        "doc-business-message-owner-reply.json",
        "doc-business-message-away.json",
        "doc-business-message-via-bot.json",
        "doc-edited-business-message.json",
    ):
        fake_telegram.add_update(fixture_json("telegram", name), at=at(5))
    result = await telegram.fetch_since({})
    bc = "DOC-EXAMPLE-CONNECTION-1"
    assert [(e.message_id, e.author_role) for e in result.events] == [
        (ids(bc, CUSTOMER, 311)[0], "customer"),
        (ids(bc, CUSTOMER, 312)[0], "business"),
        (ids(bc, OTHER, 313)[0], "automated"),
        (ids(bc, OTHER, 314)[0], "business"),
        (ids(bc, CUSTOMER, 312)[0], "business"),
    ]
    assert result.events[1].created_at == result.events[4].created_at
    assert result.events[0].thread_url == "https://t.me/sara_customer"
    assert json.loads(result.cursor["connections"]) == {bc: str(OWNER)}
    assert result.cursor["offset"] == "862000107"
    assert [m for m, _ in fake_telegram.requests] == ["getUpdates"]


def test_all_four_update_types_are_requested() -> None:
    """The poller asks for the update types the issue lists."""
    assert set(ALLOWED_UPDATES) == {
        "message",
        "business_connection",
        "business_message",
        "edited_business_message",
    }


async def test_fake_forgets_updates_after_a_day(
    fake_telegram: FakeTelegram, telegram: TelegramConnector
) -> None:
    """Telegram keeps undelivered updates for 24 hours: a longer stop loses them."""
    bc = fake_telegram.add_business_connection(OWNER, at(60 * 30))
    kept = fake_telegram.customer_message(bc, CUSTOMER, at(60 * 23))
    fake_telegram.customer_message(bc, OTHER, at(60 * 25))
    result = await telegram.fetch_since({})
    assert [e.message_id for e in result.events] == ids(bc, CUSTOMER, kept)
