"""The Facebook connector against the fake Graph API: happy paths and every failure mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import aiohttp
import pytest

from connectors._graph import MAX_EMPTY_PAGES, parse_graph_time, usage_fraction
from connectors.base import ConnectorSettings
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.facebook import FacebookConnector
from connectors.fakes.meta import FakeMeta
from tests.connectors.conftest import NOW, TOKEN, fixture_json

Settings = Callable[..., ConnectorSettings]


def at(minutes: float) -> object:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def facebook(settings_for: Settings, session: aiohttp.ClientSession) -> FacebookConnector:
    """A Facebook connector for Page 100 on the fake."""
    return FacebookConnector(settings_for({"page_id": "100"}), session)


async def test_backfill_reads_dms_and_comment_trees(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """DMs thread by customer; comment replies thread under the customer they answer."""
    m1 = fake_meta.customer_message("100", "7", at(30))
    m2 = fake_meta.business_reply("100", "7", at(25))
    fake_meta.add_post("100", at(600))
    c1 = fake_meta.customer_comment("100", "8", at(20))
    c2 = fake_meta.customer_comment("100", "9", at(18), reply_to=c1)
    r1 = fake_meta.business_comment_reply("100", c1, at(10))
    own = fake_meta.customer_comment("100", "100", at(15))  # the Page comments on its post
    result = await facebook.fetch_since({})
    got = {(e.message_id, e.thread_id, e.author_role, e.channel) for e in result.events}
    assert got == {
        (m1, "dm/7", "customer", "dm"),
        (m2, "dm/7", "business", "dm"),
        (c1, f"{c1}/8", "customer", "comment"),
        (c2, f"{c1}/9", "customer", "comment"),
        # The reply comes after customer 9 spoke last in the tree: it answers 9.
        (r1, f"{c1}/9", "business", "comment"),
    }
    assert own not in {e.message_id for e in result.events}
    assert result.cursor["dm"] == parse_graph_time(result.cursor["dm"]).isoformat()
    assert {e.created_at for e in result.events if e.message_id == m1} == {at(30)}
    assert result.quota_used is not None and 0 <= result.quota_used <= 1


async def test_incremental_polls_return_only_new_items(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """With the returned cursor, old conversations are not read again."""
    for customer in range(30):
        fake_meta.customer_message("100", f"c{customer}", at(300 + 10 * customer))
    first = await facebook.fetch_since({})
    assert len(first.events) == 30  # two pages of 25
    fake_meta.customer_message("100", "new", at(1))
    second = await facebook.fetch_since(first.cursor)
    # The five-minute overlap re-reads the newest old conversation; duplicates are harmless.
    assert {e.thread_id for e in second.events} == {"dm/new", "dm/c0"}


async def test_pagination_survives_an_empty_page_with_next(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """A page with no items but a next link is followed, not mistaken for the end."""
    for customer in range(3):
        fake_meta.customer_message("100", f"c{customer}", at(10 + customer))
    fake_meta.fail_next("empty_page_with_next")
    result = await facebook.fetch_since({})
    assert len([e for e in result.events if e.channel == "dm"]) == 3


async def test_paging_that_never_advances_fails_the_poll(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """Empty pages with a next link forever: a bounded number of requests, then an error."""
    fake_meta.customer_message("100", "c1", at(10))
    fake_meta.fail_account("100", "empty_page_with_next", times=None)
    with pytest.raises(ConnectorResponseError, match="paging does not advance"):
        # Bounded here too: without the guard this poll never ends.
        await asyncio.wait_for(facebook.fetch_since({}), 10)
    assert len(fake_meta.requests) == MAX_EMPTY_PAGES + 1
    fake_meta.clear_failures("100")
    fake_meta.fail_next("empty_page_with_next", times=MAX_EMPTY_PAGES)
    result = await facebook.fetch_since({})  # as many as allowed: still followed
    assert len([e for e in result.events if e.channel == "dm"]) == 1


async def test_twenty_message_cap_is_counted_and_logged(
    fake_meta: FakeMeta, facebook: FacebookConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """25 new messages in one conversation: 20 readable, 5 counted as possibly missed."""
    for i in range(25):
        fake_meta.customer_message("100", "talker", at(100 - i))
    with caplog.at_level(logging.WARNING):
        result = await facebook.fetch_since({})
    assert len(result.events) == 20 and result.missed == 5
    assert any("may be missed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("code", "regain", "expected"),
    [
        (4, None, 60.0),
        (17, None, 300.0),
        (32, None, 300.0),
        (613, None, 300.0),
        (80001, None, 300.0),
        (80006, 7, 420.0),
        (80001, 2, 120.0),
    ],
)
async def test_throttling_codes_become_rate_limited(
    fake_meta: FakeMeta,
    facebook: FacebookConnector,
    code: int,
    regain: int | None,
    expected: float,
) -> None:
    """Each throttling code, keyed on error.code; BUC time-to-regain sets the wait."""
    fake_meta.customer_message("100", "7", at(5))
    options = {"code": code} if regain is None else {"code": code, "regain_minutes": regain}
    fake_meta.fail_next("throttle", **options)
    with pytest.raises(ConnectorRateLimited) as caught:
        await facebook.fetch_since({})
    assert caught.value.retry_after == expected
    assert f"Graph error {code}" in str(caught.value)


async def test_plain_429_uses_retry_after(fake_meta: FakeMeta, facebook: FacebookConnector) -> None:
    """An HTTP 429 without a Graph body honours Retry-After."""
    fake_meta.fail_next("http_429", retry_after=42)
    with pytest.raises(ConnectorRateLimited) as caught:
        await facebook.fetch_since({})
    assert caught.value.retry_after == 42


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("expired_token", {}, ConnectorAuthError, "token expired"),
        ("expired_token", {"subcode": 460}, ConnectorAuthError, "password changed"),
        ("permission", {"code": 200}, ConnectorAuthError, "permission"),
        ("permission", {"code": 10}, ConnectorAuthError, "permission"),
        ("server_error", {"status": 500, "code": 2}, ConnectorConnectionError, "temporary"),
        ("server_error", {"status": 500, "code": 1}, ConnectorConnectionError, "temporary"),
        ("server_error", {"status": 503, "html": True}, ConnectorConnectionError, "HTTP 503"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("html", {}, ConnectorResponseError, "expected JSON, got text/html"),
        ("missing_data", {}, ConnectorResponseError, "without a data list"),
        ("invalid_cursor", {}, ConnectorResponseError, "Graph error 100"),
        ("reset", {}, ConnectorConnectionError, "ClientPayloadError"),
    ],
)
async def test_every_failure_maps_to_the_exception_tree(
    fake_meta: FakeMeta,
    facebook: FacebookConnector,
    kind: str,
    options: dict[str, object],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception with a useful message."""
    fake_meta.customer_message("100", "7", at(5))
    fake_meta.fail_next(kind, **options)
    with pytest.raises(error) as caught:
        await facebook.fetch_since({})
    assert words in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


async def test_failure_on_a_later_page_returns_nothing(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """A failure after page one raises: no partial result, so no cursor moves past a gap."""
    fake_meta.customer_message("100", "c1", at(30))
    fake_meta.fail_next("empty_page_with_next")  # page one, pointing at page two
    fake_meta.fail_next("server_error")  # page two
    with pytest.raises(ConnectorConnectionError):
        await facebook.fetch_since({})
    assert len(fake_meta.requests) == 2


async def test_account_failures_stay_with_their_account_until_cleared(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """A failure aimed at one Page fails only that Page, on every request, until cleared."""
    fake_meta.add_page("200", TOKEN)
    fake_meta.customer_message("100", "c1", at(5))
    fake_meta.customer_message("200", "c2", at(5))
    other = FacebookConnector(settings_for({"page_id": "200"}, channels=("dm",)), session)
    mine = FacebookConnector(settings_for({"page_id": "100"}, channels=("dm",)), session)
    fake_meta.fail_account("100", "server_error", times=None)
    for _ in range(3):
        with pytest.raises(ConnectorConnectionError):
            await mine.fetch_since({})
        assert len((await other.fetch_since({})).events) == 1
    fake_meta.clear_failures("100")
    assert len((await mine.fetch_since({})).events) == 1


async def test_timeout_and_refused_connection(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """A response slower than the timeout, and a closed port, are connection errors."""
    slow = FacebookConnector(settings_for({"page_id": "100"}, request_timeout=0.05), session)
    fake_meta.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await slow.fetch_since({})
    closed = FacebookConnector(
        settings_for({"page_id": "100"}, base_url="http://127.0.0.1:9"), session
    )
    with pytest.raises(ConnectorConnectionError):
        await closed.fetch_since({})


async def test_wrong_token_is_an_auth_error_and_token_never_leaks(
    settings_for: Settings, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The fake refuses a wrong token with code 190; no message or log shows a token."""
    wrong = "EAA-TEST-WRONG-TOKEN-9999"
    connector = FacebookConnector(
        settings_for({"page_id": "100"}, secrets={"access_token": wrong}), session
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert wrong not in str(caught.value)
    assert wrong not in repr(connector) and wrong not in repr(connector.graph)
    assert all(wrong not in r.getMessage() for r in caplog.records)


def test_recorded_graph_payloads_parse() -> None:
    """Recorded Graph bodies: times with +0000, comment pages, errors, usage headers."""
    conversation = fixture_json("facebook", "graph-conversation.json")
    assert parse_graph_time(conversation["updated_time"]).isoformat() == "2021-06-08T08:24:57+00:00"
    message = fixture_json("facebook", "graph-message.json")
    assert parse_graph_time(message["created_time"]).year == 2021
    comments = fixture_json("facebook", "graph-post-comments.json")
    assert all(parse_graph_time(c["created_time"]) for c in comments["data"])
    assert parse_graph_time(1472026867080) == parse_graph_time(1472026867.08)
    header = (
        '{"339410370":[{"type":"ads_insights","call_count":1,"total_cputime":1,'
        '"total_time":1,"estimated_time_to_regain_access":0}]}'
    )
    assert usage_fraction({"X-Business-Use-Case-Usage": header}) == 0.01
    assert (
        usage_fraction({"X-App-Usage": '{"call_count":87,"total_cputime":3,"total_time":5}'})
        == 0.87
    )
    assert usage_fraction({}) is None


async def test_recorded_error_bodies_map(fake_meta: FakeMeta, facebook: FacebookConnector) -> None:
    """The recorded code-190/460 and code-100 bodies raise auth and response errors."""
    fake_meta.fail_next(
        "recorded",
        body=fixture_json("facebook", "graph-error-code190-doc-example.json"),
        status=400,
    )
    with pytest.raises(ConnectorAuthError, match="password changed"):
        await facebook.fetch_since({})
    fake_meta.fail_next(
        "recorded", body=fixture_json("facebook", "graph-error-code100.json"), status=400
    )
    with pytest.raises(ConnectorResponseError, match="Graph error 100"):
        await facebook.fetch_since({})


async def test_recorded_comment_page_is_read(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """A real comments page: without ids it is refused; with them, anonymous threads."""
    recorded = fixture_json("facebook", "graph-post-comments.json")
    recorded["paging"].pop("next", None)
    connector = FacebookConnector(
        settings_for(
            {"page_id": "100"},
            channels=("comment",),
            backfill_since=parse_graph_time("2021-01-01T00:00:00+0000"),
        ),
        session,
    )
    post = fake_meta.add_post("100", at(60))
    fake_meta.fail_next("recorded", body={"data": [{"id": post}]})  # the feed
    fake_meta.fail_next("recorded", body=recorded)  # its comments, as recorded: no ids
    with pytest.raises(ConnectorResponseError, match="comment without an id"):
        await connector.fetch_since({})
    for item in recorded["data"]:
        item["id"] = item["permalink_url"].rsplit("comment_id=", 1)[1]
    fake_meta.fail_next("recorded", body={"data": [{"id": post}]})
    fake_meta.fail_next("recorded", body=recorded)
    result = await connector.fetch_since({})
    assert len(result.events) == len(recorded["data"])
    assert all(e.author_role == "customer" for e in result.events)
    # Graph hid the authors: each comment is its own anonymous thread.
    assert len({e.thread_id for e in result.events}) == len(recorded["data"])
    assert all("/anonymous-" in e.thread_id for e in result.events)


async def test_conversation_whose_messages_were_all_unsent_is_read_as_empty(
    fake_meta: FakeMeta, facebook: FacebookConnector
) -> None:
    """Graph leaves the empty messages edge out: no messages, and the others are still read."""
    kept = fake_meta.customer_message("100", "7", at(30))
    gone = fake_meta.customer_message("100", "8", at(20))
    fake_meta.unsend("100", gone, at(10))
    older = fake_meta.customer_message("100", "9", at(40))
    result = await facebook.fetch_since({})
    assert {e.message_id for e in result.events if e.channel == "dm"} == {kept, older}
    # The emptied conversation was the newest: the high-water mark moved past it.
    assert parse_graph_time(result.cursor["dm"]) == at(10)
    again = await facebook.fetch_since(result.cursor)
    assert gone not in {e.message_id for e in again.events}


async def test_recorded_conversation_without_messages_is_read(
    fake_meta: FakeMeta, settings_for: Settings, session: aiohttp.ClientSession
) -> None:
    """The recorded conversation (no messages field) on a page beside one with messages."""
    empty = fixture_json("facebook", "graph-conversation.json")
    assert "messages" not in empty
    full = fixture_json("facebook", "graph-conversation-legacy-with-messages.json")
    connector = FacebookConnector(
        settings_for(
            {"page_id": "100"},
            channels=("dm",),
            backfill_since=parse_graph_time("2012-01-01T00:00:00+0000"),
        ),
        session,
    )
    fake_meta.fail_next("recorded", body={"data": [empty, full]})
    result = await connector.fetch_since({})
    assert {e.message_id for e in result.events} == {m["id"] for m in full["messages"]["data"]}
    assert result.cursor["dm"] == parse_graph_time(empty["updated_time"]).isoformat()
