"""The X connector against the fake X API: threads, cursors, recorded payloads, every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import Channel, ConnectorSettings
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.fakes.x import FakeX
from connectors.x import XConnector, parse_x_time, post_url
from tests.connectors.conftest import NOW, fixture_json

SHOP = "1500000001"
USER_TOKEN = "x-user-context-TEST-TOKEN-5678"
APP_TOKEN = "x-app-only-TEST-TOKEN-1234"
Settings = Callable[..., ConnectorSettings]


def at(minutes: float) -> datetime:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def fake_x() -> FakeX:
    """A fake X API whose clock stands at NOW, with the shop's user and an app-only token."""
    fake = FakeX(app_token=APP_TOKEN, clock=NOW.timestamp)
    fake.add_user(SHOP, "shop", token=USER_TOKEN)
    return fake


@pytest.fixture
async def x_url(fake_x: FakeX) -> AsyncIterator[str]:
    """The fake X API served on 127.0.0.1."""
    server = TestServer(fake_x.app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/")).rstrip("/")
    fake_x.release_slow()
    await server.close()


@pytest.fixture
def x_settings(x_url: str) -> Settings:
    """Build settings for the shop's account, pointed at the fake."""

    def build(
        channels: tuple[Channel, ...] = ("mention", "dm"), **overrides: Any
    ) -> ConnectorSettings:
        values: dict[str, Any] = {
            "account": "shop-x",
            "ids": {"user_id": SHOP},
            "secrets": {"bearer_token": USER_TOKEN},
            "channels": channels,
            "backfill_since": NOW - timedelta(days=7),
            "base_url": x_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        return ConnectorSettings(**values)

    return build


@pytest.fixture
def shop(x_settings: Settings, session: aiohttp.ClientSession) -> XConnector:
    """The shop's connector with a user-context token, reading mentions and DMs."""
    return XConnector(x_settings(), session)


def triples(result: Any) -> set[tuple[str, str, str]]:
    """(message id, thread, role) of each event."""
    return {(e.message_id, e.thread_id, e.author_role) for e in result.events}


async def test_mentions_and_replies_thread_by_conversation_and_customer(
    fake_x: FakeX, shop: XConnector
) -> None:
    """Two customers in one conversation, each answered; noise around them is no event."""
    ask = fake_x.customer_mention(SHOP, "7", at(50))
    other = fake_x.customer_mention(SHOP, "8", at(45), reply_to=ask)
    answer_8 = fake_x.business_reply(SHOP, other, at(40))
    again_7 = fake_x.customer_mention(SHOP, "7", at(35), reply_to=answer_8)
    answer_7 = fake_x.business_reply(SHOP, ask, at(30))
    fake_x.post(SHOP, at(25))  # an announcement answers nobody
    fake_x.business_reply(SHOP, answer_7, at(24))  # the shop continuing its own thread
    fake_x.post("9", at(20), retweet_of=ask)  # a retweet mentions the shop but asks nothing
    fake_x.post("9", at(100))  # a stranger's post that does not concern the shop
    result = await shop.fetch_since({})
    assert triples(result) == {
        (ask, f"{ask}/7", "customer"),
        (other, f"{ask}/8", "customer"),
        (answer_8, f"{ask}/8", "business"),
        (again_7, f"{ask}/7", "customer"),
        (answer_7, f"{ask}/7", "business"),
    }
    by_id = {e.message_id: e for e in result.events}
    assert by_id[ask].created_at == at(50) and by_id[ask].channel == "mention"
    assert by_id[ask].thread_url == post_url(ask)
    assert by_id[answer_7].thread_url == post_url(ask)  # the post it answers
    assert by_id[ask].text_excerpt == "(simulated)"
    assert 0 < (result.quota_used or 0) < 0.01


async def test_cursor_holds_the_newest_ids_and_polls_read_only_what_is_new(
    fake_x: FakeX, shop: XConnector
) -> None:
    """since_id on both post reads, the DM mark stops the DM read; no overlap re-read."""
    ask = fake_x.customer_mention(SHOP, "7", at(30))
    reply = fake_x.business_reply(SHOP, ask, at(20))
    dm = fake_x.direct_message("7", SHOP, at(10))
    first = await shop.fetch_since({})
    assert first.cursor == {"mention": ask, "own_post": reply, "dm": dm, "dm_reach_checked": "1"}
    assert all("start_time=" in path for path in fake_x.requests if "/users/" in path)
    fake_x.requests.clear()
    assert (await shop.fetch_since(first.cursor)).events == ()
    assert any(f"since_id={ask}" in path for path in fake_x.requests)
    assert any(f"since_id={reply}" in path for path in fake_x.requests)
    new_ask = fake_x.customer_mention(SHOP, "8", at(5))
    new_dm = fake_x.direct_message(SHOP, "7", at(4))
    third = await shop.fetch_since(first.cursor)
    assert {e.message_id for e in third.events} == {new_ask, new_dm}
    assert third.cursor == {
        "mention": new_ask,
        "own_post": reply,
        "dm": new_dm,
        "dm_reach_checked": "1",
    }


async def test_backfill_starts_at_backfill_since(fake_x: FakeX, shop: XConnector) -> None:
    """Posts and DMs older than backfill_since are not read on the first poll."""
    old_ask = fake_x.customer_mention(SHOP, "7", NOW - timedelta(days=8))
    old_dm = fake_x.direct_message("7", SHOP, NOW - timedelta(days=8))
    ask = fake_x.customer_mention(SHOP, "7", at(3))
    dm = fake_x.direct_message("7", SHOP, at(2))
    result = await shop.fetch_since({})
    assert {e.message_id for e in result.events} == {ask, dm}
    assert old_ask not in result.cursor.values() and old_dm not in result.cursor.values()


async def test_many_pages_and_an_empty_page_with_next_token(
    fake_x: FakeX, shop: XConnector
) -> None:
    """250 mentions take three pages; an empty page that names a next page is followed."""
    asks = {fake_x.customer_mention(SHOP, str(100 + i), at(300 - i)) for i in range(250)}
    fake_x.fail_next("empty_page_with_next")
    result = await shop.fetch_since({})
    assert {e.message_id for e in result.events} == asks
    mention_reads = [p for p in fake_x.requests if "/mentions" in p]
    assert len(mention_reads) == 4
    assert all("max_results=100" in p for p in mention_reads)


async def test_direct_messages_thread_by_customer_and_groups_by_conversation(
    fake_x: FakeX, shop: XConnector
) -> None:
    """1:1 conversations are dm/<customer> both ways; a group is one thread."""
    asked = fake_x.direct_message("42", SHOP, at(20))
    answered = fake_x.direct_message(SHOP, "42", at(15))
    other = fake_x.direct_message("3", SHOP, at(14))  # the smaller id comes first
    group = fake_x.group_message("1585094756761149440", (SHOP, "42", "43"), "43", at(10))
    reply = fake_x.group_message("1585094756761149440", (SHOP, "42", "43"), SHOP, at(5))
    elsewhere = fake_x.direct_message("42", "43", at(4))  # not the shop's conversation
    result = await shop.fetch_since({})
    assert triples(result) == {
        (asked, "dm/42", "customer"),
        (answered, "dm/42", "business"),
        (other, "dm/3", "customer"),
        (group, "dm/group-1585094756761149440", "customer"),
        (reply, "dm/group-1585094756761149440", "business"),
    }
    assert elsewhere not in {e.message_id for e in result.events}
    assert all(e.channel == "dm" and e.thread_url is None for e in result.events)


async def test_app_only_token_reads_mentions_but_not_direct_messages(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Mentions work with an app-only token; DMs refuse it with a clear auth error."""
    ask = fake_x.customer_mention(SHOP, "7", at(5))
    mentions_only = XConnector(
        x_settings(("mention",), secrets={"bearer_token": APP_TOKEN}), session
    )
    assert {e.message_id for e in (await mentions_only.fetch_since({})).events} == {ask}
    with_dms = XConnector(x_settings(secrets={"bearer_token": APP_TOKEN}), session)
    with pytest.raises(ConnectorAuthError, match="user-context token") as caught:
        await with_dms.fetch_since({})
    assert "Unsupported Authentication" in str(caught.value)


async def test_exhausted_window_is_rate_limited_until_its_reset(
    fake_x: FakeX, shop: XConnector
) -> None:
    """Two mention reads per window: the third gets 429 and waits for the reset, then works."""
    fake_x.limits["mentions"] = 2
    assert (await shop.fetch_since({})).quota_used == 0.5
    assert (await shop.fetch_since({})).quota_used == 1.0
    fake_x.clock = lambda: NOW.timestamp() + 300  # five minutes into the window
    with pytest.raises(ConnectorRateLimited, match="HTTP 429 Too Many Requests") as caught:
        await shop.fetch_since({})
    assert caught.value.retry_after == 600.0  # measured on the server's Date, not ours
    fake_x.clock = lambda: NOW.timestamp() + 900
    assert (await shop.fetch_since({})).quota_used == 0.5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"reset_in": 420}, 420.0),
        ({"reset_in": 420, "style": "v1"}, 420.0),
        ({"reset_in": 0}, 1.0),
    ],
)
async def test_429_in_both_body_styles(
    fake_x: FakeX, shop: XConnector, options: dict[str, Any], expected: float
) -> None:
    """The problem body and the v1.1 code-88 body both become a wait until the reset."""
    fake_x.fail_next("http_429", **options)
    with pytest.raises(ConnectorRateLimited) as caught:
        await shop.fetch_since({})
    assert caught.value.retry_after == expected


async def test_usage_cap_waits_an_hour_though_the_window_has_room(
    fake_x: FakeX, shop: XConnector
) -> None:
    """The monthly cap is not the 15-minute window: its reset header does not apply."""
    fake_x.fail_next("usage_cap")
    with pytest.raises(ConnectorRateLimited, match="usage cap reached \\(monthly cap\\)") as caught:
        await shop.fetch_since({})
    assert caught.value.retry_after == 3600.0


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("unauthorized", {}, ConnectorAuthError, "token refused"),
        ("forbidden", {}, ConnectorAuthError, "not attached to a Project"),
        ("server_error", {}, ConnectorConnectionError, "HTTP 503 Service Unavailable"),
        ("server_error", {"status": 500, "html": True}, ConnectorConnectionError, "HTTP 500"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("html", {}, ConnectorResponseError, "expected JSON, got text/html"),
        ("invalid_request", {}, ConnectorResponseError, "HTTP 400 Invalid Request"),
        ("recorded", {"body": {"data": {"id": "1"}}}, ConnectorResponseError, "data is no list"),
        ("recorded", {"body": {}}, ConnectorResponseError, "neither data nor meta"),
    ],
)
async def test_every_failure_maps_to_the_exception_tree(
    fake_x: FakeX,
    shop: XConnector,
    kind: str,
    options: dict[str, Any],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception with a useful message."""
    fake_x.customer_mention(SHOP, "7", at(5))
    fake_x.fail_next(kind, **options)
    with pytest.raises(error) as caught:
        await shop.fetch_since({})
    assert words in str(caught.value)
    assert USER_TOKEN not in str(caught.value) and USER_TOKEN not in repr(caught.value)


async def test_unknown_user_id_is_a_response_error(
    x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """X answers 200 with only errors[] for a user that does not exist."""
    connector = XConnector(x_settings(("mention",), ids={"user_id": "404404"}), session)
    with pytest.raises(ConnectorResponseError, match="Could not find user with id"):
        await connector.fetch_since({})


async def test_failure_on_a_later_page_returns_nothing(fake_x: FakeX, shop: XConnector) -> None:
    """A failure after page one raises: no partial result, so no cursor moves past a gap."""
    for i in range(120):
        fake_x.customer_mention(SHOP, str(100 + i), at(200 - i))
    fake_x.fail_next("recorded", body=fixture_json("x", "users-mentions-with-fields.json"))
    fake_x.fail_next("server_error")
    with pytest.raises(ConnectorConnectionError):
        await shop.fetch_since({})
    assert len(fake_x.requests) == 2


async def test_timeout_and_refused_connection(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A response slower than the timeout, and a closed port, are connection errors."""
    slow = XConnector(x_settings(request_timeout=0.05), session)
    fake_x.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await slow.fetch_since({})
    closed = XConnector(x_settings(base_url="http://127.0.0.1:9"), session)
    with pytest.raises(ConnectorConnectionError):
        await closed.fetch_since({})


async def test_wrong_token_is_an_auth_error_and_no_token_leaks(
    fake_x: FakeX,
    x_settings: Settings,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The token travels only in the Authorization header; no URL, message or log shows it."""
    wrong = "x-TEST-WRONG-TOKEN-9999"
    connector = XConnector(x_settings(secrets={"bearer_token": wrong}), session)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert "HTTP 401 Unauthorized" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(connector)
    assert all(wrong not in r.getMessage() for r in caplog.records)
    assert all(wrong not in path and USER_TOKEN not in path for path in fake_x.requests)


def test_missing_settings_are_named() -> None:
    """A config without user_id or bearer_token fails with the missing key's name."""
    settings = ConnectorSettings(
        account="shop-x",
        ids={},
        secrets={"bearer_token": USER_TOKEN},
        channels=("mention",),
        backfill_since=NOW,
    )
    with pytest.raises(ConnectorResponseError, match="missing setting user_id"):
        XConnector(settings, None)  # type: ignore[arg-type]


# -- recorded payloads -------------------------------------------------------------------


async def test_recorded_mentions_without_requested_fields_are_refused(
    fake_x: FakeX, shop: XConnector
) -> None:
    """tweepy's capture has default fields only: no created_at, so no event can be timed."""
    recorded = fixture_json("x", "users-mentions.json")
    recorded["meta"].pop("next_token")
    fake_x.fail_next("recorded", body=recorded)
    with pytest.raises(ConnectorResponseError, match="post without a readable created_at"):
        await shop.fetch_since({})


async def test_recorded_mentions_with_times_but_no_authors(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """sns-sdks' capture has created_at but no author_id: each is an anonymous customer."""
    recorded = fixture_json("x", "users-mentions-with-fields.json")
    recorded["meta"].pop("next_token")
    fake_x.fail_next("recorded", body=recorded)
    connector = XConnector(x_settings(("mention",)), session)
    result = await connector.fetch_since({})
    assert len(result.events) == 5 and all(e.author_role == "customer" for e in result.events)
    assert all(e.thread_id == f"{e.message_id}/anonymous-{e.message_id}" for e in result.events)
    newest = max(result.events, key=lambda e: e.created_at)
    assert newest.created_at.isoformat() == "2021-02-24T02:13:43+00:00"
    assert result.cursor["mention"] == recorded["meta"]["newest_id"]


async def test_recorded_conversation_tells_the_business_from_its_customers(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """X's documentation example, seen as @snowman (17200003): replies to it and by it."""
    recorded = fixture_json("x", "search-recent-with-includes.json")
    fake_x.add_user("17200003", "snowman", token="snowman-token")
    fake_x.fail_next("recorded", body=recorded)
    connector = XConnector(
        x_settings(
            ("mention",),
            ids={"user_id": "17200003"},
            secrets={"bearer_token": "snowman-token"},
            backfill_since=parse_x_time("2020-01-01T00:00:00Z"),
        ),
        session,
    )
    result = await connector.fetch_since({})
    # Without conversation_id (not requested there) the replied-to post stands in as root.
    assert triples(result) == {
        ("1276035977375477760", "1275653067283759104/63046977", "customer"),
        ("1275763727908798470", "1275653067283759104/196883832", "customer"),
        ("1275653067283759104", "1274086728471461889/63046977", "business"),
    }  # 1275882613572583424 is @snowman replying to itself: no event


async def test_recorded_quote_tweets_page_uses_conversation_ids(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A real page with author_id, conversation_id and a next_token that is followed."""
    recorded = fixture_json("x", "quote-tweets-with-includes-next-token.json")
    fake_x.fail_next("recorded", body=recorded)
    fake_x.fail_next("recorded", body={"meta": {"result_count": 0}})  # the page it points at
    connector = XConnector(
        x_settings(("mention",), backfill_since=parse_x_time("2021-01-01T00:00:00Z")), session
    )
    result = await connector.fetch_since({})
    assert len(result.events) == len(recorded["data"]) == 15
    assert ("1427332549479526400", "1427290387194974213/857699969263964161", "customer") in (
        triples(result)
    )
    mention_reads = [p for p in fake_x.requests if "/mentions" in p]
    assert len(mention_reads) == 2 and "pagination_token=at3vehuk2txh" in mention_reads[1]


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("dm-events-empty.json", set()),
        (
            "dm-events-by-conversation-with-fields.json",
            {("1585321444547837956", "dm/group-1585094756761149440", "customer")},
        ),
    ],
)
async def test_recorded_dm_pages(
    fake_x: FakeX,
    x_settings: Settings,
    session: aiohttp.ClientSession,
    name: str,
    outcome: set[tuple[str, str, str]],
) -> None:
    """An empty DM page has no data key at all; a real event with fields is read."""
    fake_x.fail_next("recorded", body=fixture_json("x", name))
    connector = XConnector(
        x_settings(("dm",), backfill_since=parse_x_time("2022-10-01T00:00:00Z")), session
    )
    assert triples(await connector.fetch_since({})) == outcome


async def test_recorded_dm_page_with_default_fields_is_refused(
    fake_x: FakeX, x_settings: Settings, session: aiohttp.ClientSession
) -> None:
    """tweepy's DM capture lacks created_at and sender_id: refused, not guessed."""
    fake_x.fail_next("recorded", body=fixture_json("x", "dm-conversation-events.json"))
    connector = XConnector(x_settings(("dm",)), session)
    with pytest.raises(ConnectorResponseError, match="direct message without a readable"):
        await connector.fetch_since({})


async def test_recorded_invalid_request_problem(fake_x: FakeX, shop: XConnector) -> None:
    """The recorded problem body: title and detail name what X refused."""
    fake_x.fail_next(
        "recorded",
        body=fixture_json("x", "error-invalid-request-problem.json"),
        status=400,
        content_type="application/problem+json",
    )
    with pytest.raises(ConnectorResponseError, match="Invalid Request: One or more parameters"):
        await shop.fetch_since({})


def test_recorded_times_parse() -> None:
    """X times carry milliseconds and Z (or the v1.1 form); a time without an offset is refused."""
    assert parse_x_time("2022-10-26T17:24:21.000Z").isoformat() == "2022-10-26T17:24:21+00:00"
    legacy = parse_x_time("Wed Jan 06 18:40:40 +0000 2021")
    assert legacy.isoformat() == "2021-01-06T18:40:40+00:00"
    with pytest.raises(ValueError):
        parse_x_time("2022-10-26T17:24:21")


async def test_reaching_xs_history_limits_is_logged_and_counted(
    fake_x: FakeX,
    x_settings: Settings,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """800 mentions read, or a DM backfill past 30 days: a warning and a missed item each."""
    for minute in range(801):
        fake_x.customer_mention(SHOP, str(10_000 + minute), NOW - timedelta(minutes=minute + 1))
    connector = XConnector(x_settings(backfill_since=NOW - timedelta(days=60)), session)
    connector.clock = lambda: NOW
    result = await connector.fetch_since({})
    assert result.missed == 2
    assert "800 mentions read" in caplog.text
    assert "direct messages older than 30 days cannot be read" in caplog.text
    assert len([e for e in result.events if e.channel == "mention"]) == 800
    again = await connector.fetch_since(result.cursor)
    assert again.missed == 0


async def test_the_mention_limit_is_logged_when_it_starts_and_stops_mattering(
    fake_x: FakeX,
    x_settings: Settings,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Polls at X's limit count a miss each but warn once; leaving it is one info line."""
    for minute in range(801):
        fake_x.customer_mention(SHOP, str(10_000 + minute), NOW - timedelta(minutes=minute + 1))
    connector = XConnector(x_settings(channels=("mention",)), session)
    caplog.set_level(logging.INFO, logger="connectors.x")
    results = [await connector.fetch_since({}) for _ in range(3)]
    assert [r.missed for r in results] == [1, 1, 1]
    later = await connector.fetch_since(results[-1].cursor)
    await connector.fetch_since(later.cursor)
    records = [r for r in caplog.records if r.name == "connectors.x"]
    assert [getattr(r, "event", None) for r in records] == [
        "history_limit_reached",
        "history_limit_cleared",
    ]
    reached = records[0]
    assert (reached.levelno, reached.platform, reached.account) == (logging.WARNING, "x", "shop-x")
    assert later.missed == 0
