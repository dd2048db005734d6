"""The Google Play connector against its fake: turns, replies, the 7-day window, failures."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
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
from connectors.fakes.google_play import FakeGooglePlay
from connectors.google_play import GooglePlayConnector, parse_play_time
from monitor.core.waits import derive_waits
from tests.connectors.conftest import NOW, fixture_json

TOKEN = "ya29.TEST-SECRET-PLAY-TOKEN-4321"
PACKAGE = "com.example.shop"

Settings = Callable[..., ConnectorSettings]


def ago(hours: float) -> datetime:
    """NOW minus some hours."""
    return NOW - timedelta(hours=hours)


def secs(at: datetime) -> int:
    """Whole epoch seconds, as message ids carry them."""
    return int(at.timestamp())


def by_id(events: tuple[Event, ...] | list[Event]) -> dict[str, Event]:
    """Events keyed by message id (each id appears once per poll)."""
    found = {e.message_id: e for e in events}
    assert len(found) == len(events), "a poll returned one message id twice"
    return found


@pytest.fixture
def fake() -> FakeGooglePlay:
    """A fake Play Developer API with one app, its clock at NOW."""
    fake = FakeGooglePlay(NOW)
    fake.add_app(PACKAGE, TOKEN)
    return fake


@pytest.fixture
async def base_url(fake: FakeGooglePlay) -> AsyncIterator[str]:
    """The fake served on 127.0.0.1."""
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake.release_slow()
    await server.close()


@pytest.fixture
def settings(base_url: str) -> Settings:
    """Build settings for the app, pointed at the fake."""

    def build(**overrides: Any) -> ConnectorSettings:
        values: dict[str, Any] = {
            "account": "shop-app",
            "ids": {"package_name": PACKAGE},
            "secrets": {"access_token": TOKEN},
            "channels": ("review",),
            "backfill_since": NOW - timedelta(days=7),
            "base_url": base_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        return ConnectorSettings(**values)

    return build


@pytest.fixture
def play(settings: Settings, session: aiohttp.ClientSession) -> GooglePlayConnector:
    """The connector for the fake's app."""
    return GooglePlayConnector(settings(), session)


async def test_backfill_reads_reviews_and_replies(
    fake: FakeGooglePlay, play: GooglePlayConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """Reviews are customer events with their stars; a reply answers the comment it follows."""
    angry = fake.add_review(PACKAGE, ago(30), stars=1)
    fake.reply(angry, ago(28))
    happy = fake.add_review(PACKAGE, ago(3), stars=5)
    with caplog.at_level(logging.WARNING):
        result = await play.fetch_since({})
    events = by_id(result.events)
    assert set(events) == {
        f"{angry}/{secs(ago(30))}",
        f"{angry}/{secs(ago(30))}/reply",
        f"{happy}/{secs(ago(3))}",
    }
    first = events[f"{angry}/{secs(ago(30))}"]
    assert (first.author_role, first.rating, first.created_at) == ("customer", 1, ago(30))
    reply = events[f"{angry}/{secs(ago(30))}/reply"]
    assert (reply.author_role, reply.thread_id, reply.created_at) == ("business", angry, ago(28))
    assert {e.channel for e in result.events} == {"review"}
    # A default 7-day backfill is all Play can give: nothing is missed, nothing is logged.
    assert result.missed == 0 and not caplog.records
    assert result.cursor["checked"] == NOW.isoformat()
    [wait] = derive_waits(e for e in result.events if e.thread_id == angry)
    assert wait.tier == "negative" and wait.response_seconds == 2 * 3600


async def test_pages_follow_the_next_page_token(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """With page_size 2, five reviews take three pages, each asked with maxResults=2."""
    connector = GooglePlayConnector(settings(options={"page_size": "2"}), session)
    ids = {fake.add_review(PACKAGE, ago(1 + i)) for i in range(5)}
    result = await connector.fetch_since({})
    assert {e.thread_id for e in result.events} == ids
    assert len(fake.requests) == 3
    assert all("maxResults=2" in r for r in fake.requests)
    assert sum("token=" in r for r in fake.requests) == 2


async def test_default_page_size_is_the_documented_maximum(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """150 reviews take two pages of 100 (the API's default would be 10)."""
    for i in range(150):
        fake.add_review(PACKAGE, ago(0.5 + i / 10))
    result = await play.fetch_since({})
    assert len(result.events) == 150 and len(fake.requests) == 2
    assert "maxResults=100" in fake.requests[0]


async def test_empty_page_with_a_next_token_is_followed(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """A page with no reviews but a nextPageToken is not the end."""
    ids = {fake.add_review(PACKAGE, ago(1 + i)) for i in range(3)}
    fake.fail_next("empty_page_with_next")
    result = await play.fetch_since({})
    assert {e.thread_id for e in result.events} == ids
    assert len(fake.requests) == 2


async def test_incremental_polls_see_new_reviews_and_lose_aged_ones(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """The next poll returns the new review; a review past seven days is no longer listed."""
    old = fake.add_review(PACKAGE, ago(24 * 6))
    first = await play.fetch_since({})
    fake.advance(timedelta(hours=2))
    fresh = fake.add_review(PACKAGE, NOW + timedelta(hours=1), stars=2)
    second = await play.fetch_since(first.cursor)
    assert {e.thread_id for e in second.events} == {old, fresh}
    assert second.missed == 0
    assert second.cursor["checked"] == (NOW + timedelta(hours=2)).isoformat()
    fake.age_out(old)
    third = await play.fetch_since(second.cursor)
    assert {e.thread_id for e in third.events} == {fresh}


async def test_an_edit_after_the_reply_is_a_new_customer_turn(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """Review, reply, edit, second reply: two waits, each closed by its own reply."""
    review = fake.add_review(PACKAGE, ago(10), stars=4)
    fake.reply(review, ago(9))
    first = await play.fetch_since({})
    fake.edit_review(review, ago(5), stars=1)
    after_edit = await play.fetch_since(first.cursor)
    ids = set(by_id(after_edit.events))
    # The new turn, and the old reply under the id for "an earlier version was answered".
    assert ids == {f"{review}/{secs(ago(5))}", f"{review}/reply"}
    fake.reply(review, ago(2))  # the developer edits the reply to answer the change
    answered = await play.fetch_since(after_edit.cursor)
    assert set(by_id(answered.events)) == {
        f"{review}/{secs(ago(5))}",
        f"{review}/{secs(ago(5))}/reply",
    }
    waits = derive_waits(first.events + after_edit.events + answered.events)
    assert [(w.opened_at, w.closed_at, w.tier) for w in waits] == [
        (ago(10), ago(9), "standard"),
        (ago(5), ago(2), "negative"),
    ]


async def test_edits_before_any_reply_keep_one_wait(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """A user who edits while still unanswered waits since the first version replywatch saw."""
    review = fake.add_review(PACKAGE, ago(10), stars=3)
    first = await play.fetch_since({})
    fake.edit_review(review, ago(6), stars=2)
    fake.reply(review, ago(1))
    second = await play.fetch_since(first.cursor)
    assert set(by_id(second.events)) == {
        f"{review}/{secs(ago(6))}",
        f"{review}/{secs(ago(6))}/reply",
    }
    [wait] = derive_waits(first.events + second.events)
    assert (wait.opened_at, wait.closed_at, wait.rating) == (ago(10), ago(1), 3)


async def test_an_edited_reply_never_moves_later(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """developerComment.lastModified moves on edit; the connector keeps the first time."""
    review = fake.add_review(PACKAGE, ago(10))
    fake.reply(review, ago(9))
    first = await play.fetch_since({})
    fake.reply(review, ago(1))  # an edit of the same reply: the user did not write again
    second = await play.fetch_since(first.cursor)
    reply_id = f"{review}/{secs(ago(10))}/reply"
    assert by_id(first.events)[reply_id].created_at == ago(9)
    assert by_id(second.events)[reply_id].created_at == ago(9)
    assert json.loads(second.cursor["replies"]) == {reply_id: ago(9).isoformat()}


async def test_a_gap_longer_than_the_window_is_counted_and_logged_once(
    fake: FakeGooglePlay, play: GooglePlayConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """Eight days without a successful poll: missed is counted and one warning is logged."""
    fake.add_review(PACKAGE, ago(1))
    first = await play.fetch_since({})
    fake.advance(timedelta(days=8))
    fake.add_review(PACKAGE, NOW + timedelta(days=8) - timedelta(hours=1))
    with caplog.at_level(logging.WARNING, logger="connectors.google_play"):
        late = await play.fetch_since(first.cursor)
        on_time = await play.fetch_since(late.cursor)
    assert (late.missed, on_time.missed) == (1, 0)
    [record] = caplog.records
    assert "8.0 days since the last successful poll" in record.getMessage()
    assert TOKEN not in record.getMessage()


async def test_six_days_between_polls_is_no_gap(
    fake: FakeGooglePlay, play: GooglePlayConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A pause shorter than the window loses nothing and says nothing."""
    first = await play.fetch_since({})
    fake.advance(timedelta(days=6))
    with caplog.at_level(logging.WARNING):
        second = await play.fetch_since(first.cursor)
    assert second.missed == 0 and not caplog.records


async def test_a_backfill_beyond_the_window_is_counted(
    fake: FakeGooglePlay,
    settings: Settings,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A first poll asked for 30 days gets 7: missed once, one warning naming the CSV exports."""
    connector = GooglePlayConnector(settings(backfill_since=NOW - timedelta(days=30)), session)
    fake.add_review(PACKAGE, ago(24 * 20))  # gone from the API already
    with caplog.at_level(logging.WARNING, logger="connectors.google_play"):
        result = await connector.fetch_since({})
    assert result.missed == 1 and result.events == ()
    [record] = caplog.records
    assert "30.0 days" in record.getMessage() and "CSV" in record.getMessage()


async def test_the_backfill_bound_is_respected(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A one-hour backfill returns only reviews with activity in that hour."""
    connector = GooglePlayConnector(settings(backfill_since=ago(1)), session)
    fake.add_review(PACKAGE, ago(5))
    replied_now = fake.add_review(PACKAGE, ago(4))
    fake.reply(replied_now, ago(0.5))
    recent = fake.add_review(PACKAGE, ago(0.5))
    result = await connector.fetch_since({})
    assert {e.thread_id for e in result.events} == {replied_now, recent}


async def test_crash_between_fetch_and_store_loses_nothing(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """Fetching twice from the same cursor (the first result never stored) gives the same."""
    fake.add_review(PACKAGE, ago(20))
    first = await play.fetch_since({})
    review = fake.add_review(PACKAGE, ago(3), stars=2)
    fake.reply(review, ago(2))
    lost = await play.fetch_since(first.cursor)
    again = await play.fetch_since(first.cursor)
    assert set(lost.events) == set(again.events) and len(again.events) == 3
    assert lost.cursor == again.cursor


async def test_failure_on_a_later_page_returns_nothing(
    fake: FakeGooglePlay, play: GooglePlayConnector
) -> None:
    """A failure after page one raises: no partial result, so the cursor stays put."""
    fake.add_review(PACKAGE, ago(1))
    fake.fail_next("empty_page_with_next")
    fake.fail_next("server_error")
    with pytest.raises(ConnectorConnectionError):
        await play.fetch_since({})
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("server_error", {"status": 500}, ConnectorConnectionError, "HTTP 500 INTERNAL"),
        ("server_error", {"status": 503}, ConnectorConnectionError, "HTTP 503 UNAVAILABLE"),
        ("server_error", {"status": 502, "html": True}, ConnectorConnectionError, "HTTP 502"),
        # aiohttp retries an idempotent request once after a reset: two reach the connector.
        ("reset", {"times": 2}, ConnectorConnectionError, "ServerDisconnectedError"),
        ("expired_token", {}, ConnectorAuthError, "access token refused"),
        ("permission", {}, ConnectorAuthError, "permission denied"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("missing_fields", {}, ConnectorResponseError, "lastModified"),
        ("missing_fields", {"field": "reviewId"}, ConnectorResponseError, "reviewId"),
        ("missing_fields", {"field": "comments"}, ConnectorResponseError, "comments"),
        ("html", {}, ConnectorResponseError, "expected JSON, got text/html"),
    ],
)
async def test_every_failure_maps_to_the_exception_tree(
    fake: FakeGooglePlay,
    play: GooglePlayConnector,
    kind: str,
    options: dict[str, Any],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception, naming what went wrong."""
    fake.add_review(PACKAGE, ago(1))
    fake.fail_next(kind, **options)
    with pytest.raises(error) as caught:
        await play.fetch_since({})
    assert words in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


@pytest.mark.parametrize(("options", "wait"), [({}, 3600.0), ({"retry_after": 90}, 90.0)])
async def test_quota_exhausted_is_rate_limited(
    fake: FakeGooglePlay, play: GooglePlayConnector, options: dict[str, Any], wait: float
) -> None:
    """429 RESOURCE_EXHAUSTED waits Retry-After when sent, else an hour (an hourly quota)."""
    fake.fail_next("rate_limited", **options)
    with pytest.raises(ConnectorRateLimited, match="RESOURCE_EXHAUSTED") as caught:
        await play.fetch_since({})
    assert caught.value.retry_after == wait


async def test_timeout_and_refused_connection(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A response slower than the timeout, and a closed port, are connection errors."""
    slow = GooglePlayConnector(settings(request_timeout=0.05), session)
    fake.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await slow.fetch_since({})
    closed = GooglePlayConnector(settings(base_url="http://127.0.0.1:9"), session)
    with pytest.raises(ConnectorConnectionError):
        await closed.fetch_since({})


async def test_wrong_token_is_an_auth_error_and_never_leaks(
    settings: Settings, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong token gets Google's 401 envelope; no message, repr or log shows a token."""
    wrong = "ya29.TEST-WRONG-PLAY-TOKEN-0000"
    connector = GooglePlayConnector(settings(secrets={"access_token": wrong}), session)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert "UNAUTHENTICATED" in str(caught.value)
    for shown in (str(caught.value), repr(connector), repr(connector.client)):
        assert wrong not in shown
    assert all(wrong not in r.getMessage() for r in caplog.records)


async def test_an_app_the_account_cannot_manage_is_permission_denied(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A valid token for an app it has no Play Console access to gets 403."""
    fake.add_app("com.example.other", "ya29.SOMEONE-ELSE")
    connector = GooglePlayConnector(settings(ids={"package_name": "com.example.other"}), session)
    with pytest.raises(ConnectorAuthError, match="PERMISSION_DENIED"):
        await connector.fetch_since({})


async def test_recorded_reviews_list_parses(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Google's documented reviews.list example: string seconds, nanos, a reply, a next token."""
    connector = GooglePlayConnector(
        settings(backfill_since=datetime(1970, 1, 1, tzinfo=UTC)), session
    )
    fake.fail_next("recorded", body=fixture_json("google_play", "google-play-reviews-list.json"))
    fake.fail_next("recorded", body={})  # the page its nextPageToken leads to: empty
    result = await connector.fetch_since({})
    assert "token=12334566" in fake.requests[1]
    events = by_id(result.events)
    assert set(events) == {"12345678/1443676826", "11223344/141582134", "11223344/141582134/reply"}
    best = events["12345678/1443676826"]
    assert (best.thread_id, best.rating, best.author_role) == ("12345678", 5, "customer")
    assert best.created_at == datetime(2015, 10, 1, 5, 20, 26, 713000, tzinfo=UTC)
    # The sample's 1974 comment time (a typo in Google's docs) still parses; its reply is later.
    assert events["11223344/141582134"].created_at.year == 1974
    reply = events["11223344/141582134/reply"]
    assert reply.created_at == datetime(2015, 2, 5, 1, 57, 47, 813000, tzinfo=UTC)
    assert result.missed == 1  # a backfill to 1970 asks for far more than seven days


def test_recorded_reply_response_time_parses() -> None:
    """The reviews.reply example's lastEdited uses the same seconds-and-nanos shape."""
    body = fixture_json("google_play", "google-play-reviews-reply-response.json")
    edited = parse_play_time(body["result"]["lastEdited"])
    assert edited == datetime(2016, 1, 28, 11, 0, 3, 796000, tzinfo=UTC)


def test_play_time_shapes() -> None:
    """Seconds as a string or a number, nanos optional; anything else is refused."""
    assert parse_play_time({"seconds": "0"}) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_play_time({"seconds": 60, "nanos": 999_999_999}).microsecond == 999_999
    for bad in (None, {}, {"seconds": "x"}, {"seconds": True}, {"seconds": "1", "nanos": -1}):
        with pytest.raises(ValueError):
            parse_play_time(bad)


async def test_fake_single_review_and_reply_paths(
    fake: FakeGooglePlay, base_url: str, session: aiohttp.ClientSession
) -> None:
    """reviews.get and :reply answer like Google; an aged-out review is 404 NOT_FOUND."""
    review = fake.add_review(PACKAGE, ago(2))
    url = f"{base_url}/androidpublisher/v3/applications/{PACKAGE}/reviews/{review}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.post(f"{url}:reply", json={"replyText": "Thanks"}, headers=headers) as r:
        assert (await r.json())["result"]["lastEdited"]["seconds"] == str(secs(NOW))
    async with session.get(url, headers=headers) as r:
        comments = (await r.json())["comments"]
    assert [next(iter(c)) for c in comments] == ["userComment", "developerComment"]
    fake.age_out(review)
    async with session.get(url, headers=headers) as r:
        assert r.status == 404 and (await r.json())["error"]["status"] == "NOT_FOUND"


def test_bad_settings_are_refused(settings: Settings) -> None:
    """A missing package name or an out-of-range page size fails at construction."""
    no_session: Any = None  # never used: construction fails first
    with pytest.raises(ConnectorResponseError, match="package_name"):
        GooglePlayConnector(settings(ids={}), no_session)
    with pytest.raises(ConnectorResponseError, match="page_size"):
        GooglePlayConnector(settings(options={"page_size": "500"}), no_session)


async def test_a_refreshed_token_is_used_from_the_next_poll(
    fake: FakeGooglePlay, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """The token is read from settings.secrets at every poll, so a refreshed one takes effect."""
    secrets = {"access_token": "ya29.EXPIRED-TOKEN"}
    connector = GooglePlayConnector(settings(secrets=secrets), session)
    review = fake.add_review(PACKAGE, ago(1))
    with pytest.raises(ConnectorAuthError):
        await connector.fetch_since({})
    secrets["access_token"] = TOKEN  # what a mapping re-reading a refreshed file would show
    result = await connector.fetch_since({})
    assert [e.thread_id for e in result.events] == [review]
