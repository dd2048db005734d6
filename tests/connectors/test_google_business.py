"""The Google Business Profile connector against its fake: polling, replies, every failure."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors._google import ReplyMemory, parse_rfc3339, retry_after
from connectors.base import ConnectorSettings, Event
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.fakes.google_business import FakeGoogleBusiness, google_time
from connectors.google_business import OVERLAP, GoogleBusinessConnector
from monitor.core.waits import derive_waits
from tests.connectors.conftest import NOW, fixture_json

TOKEN = "ya29.TEST-SECRET-GOOGLE-TOKEN-5678"
ACCOUNT, LOCATION = "112233445566778899", "9988776655443322110"

Settings = Callable[..., ConnectorSettings]


def ago(hours: float) -> datetime:
    """NOW minus some hours."""
    return NOW - timedelta(hours=hours)


def by_id(events: tuple[Event, ...] | list[Event]) -> dict[str, Event]:
    """Events keyed by message id (each id appears once per poll)."""
    found = {e.message_id: e for e in events}
    assert len(found) == len(events), "a poll returned one message id twice"
    return found


@pytest.fixture
def fake() -> FakeGoogleBusiness:
    """A fake Business Profile API with one verified location."""
    fake = FakeGoogleBusiness(NOW)
    fake.add_location(ACCOUNT, LOCATION, TOKEN)
    return fake


@pytest.fixture
async def base_url(fake: FakeGoogleBusiness) -> AsyncIterator[str]:
    """The fake served on 127.0.0.1."""
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake.release_slow()
    await server.close()


@pytest.fixture
def settings(base_url: str) -> Settings:
    """Build settings for the location, pointed at the fake."""

    def build(**overrides: Any) -> ConnectorSettings:
        values: dict[str, Any] = {
            "account": "cafe",
            "ids": {"account_id": ACCOUNT, "location_id": LOCATION},
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
def business(settings: Settings, session: aiohttp.ClientSession) -> GoogleBusinessConnector:
    """The connector for the fake's location."""
    return GoogleBusinessConnector(settings(), session)


async def test_backfill_reads_reviews_ratings_and_replies(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """Reviews are customer events with 1-5 ratings; replies are business events."""
    angry = fake.add_review(ACCOUNT, LOCATION, ago(30), stars=1)
    fake.reply(angry, ago(29.5))
    happy = fake.add_review(ACCOUNT, LOCATION, ago(5), stars=5, anonymous=True)
    silent = fake.add_review(ACCOUNT, LOCATION, ago(2), stars="STAR_RATING_UNSPECIFIED")
    fake.add_review(ACCOUNT, LOCATION, ago(24 * 8), stars=3)  # before backfill_since
    result = await business.fetch_since({})
    events = by_id(result.events)
    assert set(events) == {angry, f"{angry}/reply", happy, silent}
    assert (events[angry].author_role, events[angry].rating) == ("customer", 1)
    assert events[angry].created_at == ago(30)
    reply = events[f"{angry}/reply"]
    assert (reply.author_role, reply.thread_id, reply.created_at) == ("business", angry, ago(29.5))
    assert reply.rating is None
    assert events[happy].rating == 5
    # Unspecified stars: still a review that waits for an answer, but without a rating.
    assert events[silent].author_role == "customer" and events[silent].rating is None
    assert {e.channel for e in result.events} == {"review"}
    assert {e.thread_id for e in result.events} == {angry, happy, silent}
    assert result.missed == 0
    assert parse_rfc3339(result.cursor["mark"]) == ago(2)
    assert parse_rfc3339(result.cursor["open"]) == ago(5)
    [wait] = derive_waits(e for e in result.events if e.thread_id == angry)
    assert wait.tier == "negative" and wait.response_seconds == 1800


async def test_pages_of_fifty_are_followed(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """120 reviews take three pages of at most 50, newest updated first."""
    ids = {fake.add_review(ACCOUNT, LOCATION, ago(1 + i), stars=4) for i in range(120)}
    result = await business.fetch_since({})
    assert {e.message_id for e in result.events} == ids
    assert len(fake.requests) == 3
    assert all("pageSize=50" in r and "orderBy=updateTime" in r for r in fake.requests)
    assert sum("pageToken=" in r for r in fake.requests) == 2


async def test_incremental_poll_stops_at_the_high_water_mark(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """A second poll reads one page and returns the new review plus the overlap only."""
    for i in range(60):
        fake.reply(fake.add_review(ACCOUNT, LOCATION, ago(20 + 2 * i), stars=5), ago(19 + 2 * i))
    first = await business.fetch_since({})
    assert len(first.events) == 120 and "open" not in first.cursor
    fake.requests.clear()
    fresh = fake.add_review(ACCOUNT, LOCATION, ago(1), stars=2)
    second = await business.fetch_since(first.cursor)
    newest_old = min(first.events, key=lambda e: NOW - e.created_at).thread_id
    # The overlap re-reads the review at the old mark; duplicates are harmless.
    assert {e.message_id for e in second.events} == {fresh, newest_old, f"{newest_old}/reply"}
    assert len(fake.requests) == 1
    assert parse_rfc3339(second.cursor["mark"]) == ago(1)
    assert parse_rfc3339(second.cursor["open"]) == ago(1)


async def test_overlap_rereads_reviews_updated_just_before_the_mark(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """A review that becomes readable late, within the overlap, is still found."""
    fake.reply(fake.add_review(ACCOUNT, LOCATION, ago(3)), ago(2))
    first = await business.fetch_since({})
    late = fake.add_review(ACCOUNT, LOCATION, ago(3) - OVERLAP + timedelta(minutes=1))
    second = await business.fetch_since(first.cursor)
    assert late in {e.message_id for e in second.events}


@pytest.mark.parametrize("bumps", [False, True])
async def test_late_reply_to_an_older_review_is_found(
    settings: Settings, session: aiohttp.ClientSession, base_url: str, bumps: bool
) -> None:
    """A reply days later is seen whether or not Google moves the review's updateTime."""
    fake = FakeGoogleBusiness(NOW, reply_bumps_review=bumps)
    fake.add_location(ACCOUNT, LOCATION, TOKEN)
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        connector = GoogleBusinessConnector(
            settings(base_url=str(server.make_url("/")).rstrip("/")), session
        )
        waiting = fake.add_review(ACCOUNT, LOCATION, ago(24 * 5), stars=2)
        for i in range(70):  # newer, answered reviews push the old one to page two
            fake.reply(fake.add_review(ACCOUNT, LOCATION, ago(24 * 4 - i), stars=5), ago(1))
        first = await connector.fetch_since({})
        assert parse_rfc3339(first.cursor["open"]) == ago(24 * 5)
        fake.reply(waiting, ago(0.5))
        second = await connector.fetch_since(first.cursor)
    finally:
        await server.close()
    reply = by_id(second.events)[f"{waiting}/reply"]
    assert reply.created_at == ago(0.5)
    assert "open" not in second.cursor


async def test_unanswered_reviews_beyond_the_lookback_are_not_reread(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """With reply_lookback_days=2, a five-day-old unanswered review no longer holds the floor."""
    connector = GoogleBusinessConnector(settings(options={"reply_lookback_days": "2"}), session)
    old = fake.add_review(ACCOUNT, LOCATION, ago(24 * 5))
    recent = fake.add_review(ACCOUNT, LOCATION, ago(24))
    first = await connector.fetch_since({})
    assert parse_rfc3339(first.cursor["open"]) == ago(24)
    fake.reply(recent, ago(1))
    second = await connector.fetch_since(first.cursor)
    assert "open" not in second.cursor
    third = await connector.fetch_since(second.cursor)
    assert old in {e.message_id for e in first.events}
    assert old not in {e.message_id for e in second.events + third.events}


async def test_edited_reply_never_moves_later(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """An owner's edit bumps reviewReply.updateTime; the connector keeps the first time."""
    fake = FakeGoogleBusiness(NOW, reply_bumps_review=True)
    fake.add_location(ACCOUNT, LOCATION, TOKEN)
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        connector = GoogleBusinessConnector(
            settings(base_url=str(server.make_url("/")).rstrip("/")), session
        )
        review = fake.add_review(ACCOUNT, LOCATION, ago(10), stars=1)
        fake.reply(review, ago(9))
        first = await connector.fetch_since({})
        fake.edit_reply(review, ago(1))
        second = await connector.fetch_since(first.cursor)
        fake.edit_reply(review, ago(0.5))
        third = await connector.fetch_since(second.cursor)
    finally:
        await server.close()
    reply_id = f"{review}/reply"
    for result in (first, second, third):
        assert by_id(result.events)[reply_id].created_at == ago(9)
    assert json.loads(third.cursor["replies"]) == {reply_id: ago(9).isoformat()}


async def test_reply_edited_before_first_seen_keeps_the_edit_time(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """The documented limit: an edit replywatch never saw the original of cannot be undone."""
    review = fake.add_review(ACCOUNT, LOCATION, ago(10))
    fake.reply(review, ago(9))
    fake.edit_reply(review, ago(2))
    result = await business.fetch_since({})
    assert by_id(result.events)[f"{review}/reply"].created_at == ago(2)


async def test_review_edit_keeps_its_creation_time(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """A customer's edit moves updateTime, not the review event's time; the rating follows."""
    review = fake.add_review(ACCOUNT, LOCATION, ago(10), stars=5)
    first = await business.fetch_since({})
    fake.edit_review(review, ago(1), stars=2)
    second = await business.fetch_since(first.cursor)
    event = by_id(second.events)[review]
    assert (event.created_at, event.rating) == (ago(10), 2)


async def test_crash_between_fetch_and_store_loses_nothing(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """Fetching twice from the same cursor (the first result never stored) gives the same."""
    fake.add_review(ACCOUNT, LOCATION, ago(20))
    first = await business.fetch_since({})
    review = fake.add_review(ACCOUNT, LOCATION, ago(3), stars=2)
    fake.reply(review, ago(2))
    lost = await business.fetch_since(first.cursor)
    again = await business.fetch_since(first.cursor)
    assert set(lost.events) == set(again.events)
    assert {review, f"{review}/reply"} <= {e.message_id for e in again.events}
    assert lost.cursor == again.cursor


async def test_empty_page_with_a_next_token_is_followed(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """A page with no reviews but a nextPageToken is not the end."""
    ids = {fake.add_review(ACCOUNT, LOCATION, ago(1 + i)) for i in range(3)}
    fake.fail_next("empty_page_with_next")
    result = await business.fetch_since({})
    assert {e.message_id for e in result.events} == ids
    assert len(fake.requests) == 2


async def test_failure_on_a_later_page_returns_nothing(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """A failure after page one raises: no partial result, so no cursor passes a gap."""
    fake.add_review(ACCOUNT, LOCATION, ago(1))
    fake.fail_next("empty_page_with_next")
    fake.fail_next("server_error", status=503)
    with pytest.raises(ConnectorConnectionError):
        await business.fetch_since({})
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
        ("missing_fields", {}, ConnectorResponseError, "createTime"),
        ("missing_fields", {"field": "reviewId,name"}, ConnectorResponseError, "without an id"),
        ("missing_fields", {"field": "reviewReply"}, None, ""),
        ("html", {}, ConnectorResponseError, "expected JSON, got text/html"),
    ],
)
async def test_every_failure_maps_to_the_exception_tree(
    fake: FakeGoogleBusiness,
    business: GoogleBusinessConnector,
    kind: str,
    options: dict[str, Any],
    error: type[ConnectorError] | None,
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception, naming what went wrong."""
    fake.reply(fake.add_review(ACCOUNT, LOCATION, ago(1)), ago(0.5))
    fake.fail_next(kind, **options)
    if error is None:  # an optional field may go missing: the review is still read
        result = await business.fetch_since({})
        assert [e.author_role for e in result.events] == ["customer"]
        return
    with pytest.raises(error) as caught:
        await business.fetch_since({})
    assert words in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


@pytest.mark.parametrize(("options", "wait"), [({}, 60.0), ({"retry_after": 17}, 17.0)])
async def test_quota_exhausted_is_rate_limited(
    fake: FakeGoogleBusiness,
    business: GoogleBusinessConnector,
    options: dict[str, Any],
    wait: float,
) -> None:
    """429 RESOURCE_EXHAUSTED waits Retry-After when sent, else a minute (a per-minute quota)."""
    fake.fail_next("rate_limited", **options)
    with pytest.raises(ConnectorRateLimited, match="RESOURCE_EXHAUSTED") as caught:
        await business.fetch_since({})
    assert caught.value.retry_after == wait


async def test_timeout_and_refused_connection(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A response slower than the timeout, and a closed port, are connection errors."""
    slow = GoogleBusinessConnector(settings(request_timeout=0.05), session)
    fake.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await slow.fetch_since({})
    closed = GoogleBusinessConnector(settings(base_url="http://127.0.0.1:9"), session)
    with pytest.raises(ConnectorConnectionError):
        await closed.fetch_since({})


async def test_wrong_token_is_an_auth_error_and_never_leaks(
    settings: Settings, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong token gets Google's 401 envelope; no message, repr or log shows a token."""
    wrong = "ya29.TEST-WRONG-GOOGLE-TOKEN-9999"
    connector = GoogleBusinessConnector(settings(secrets={"access_token": wrong}), session)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert "UNAUTHENTICATED" in str(caught.value)
    for shown in (str(caught.value), repr(connector), repr(connector.client)):
        assert wrong not in shown
    assert all(wrong not in r.getMessage() for r in caplog.records)


async def test_another_owners_location_is_permission_denied(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """A valid token for a location it does not manage gets 403 PERMISSION_DENIED."""
    fake.add_location(ACCOUNT, "1", "ya29.SOMEONE-ELSE")
    connector = GoogleBusinessConnector(
        settings(ids={"account_id": ACCOUNT, "location_id": "1"}), session
    )
    with pytest.raises(ConnectorAuthError, match="PERMISSION_DENIED"):
        await connector.fetch_since({})


async def test_a_token_in_googles_message_is_scrubbed(
    fake: FakeGoogleBusiness, business: GoogleBusinessConnector
) -> None:
    """Google's message is shown, cut short, and never with the token in it."""
    body = {"error": {"code": 400, "message": f"bad {TOKEN} " + "x" * 500, "status": "X"}}
    fake.fail_next("recorded", body=body, status=400)
    with pytest.raises(ConnectorResponseError, match="request refused: bad \\[token\\]") as caught:
        await business.fetch_since({})
    assert TOKEN not in str(caught.value) and len(str(caught.value)) < 400


async def test_recorded_documentation_payloads_parse(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """The documented list pages: word ratings, anonymous reviewers, 0-9 fraction digits."""
    connector = GoogleBusinessConnector(
        settings(backfill_since=datetime(2026, 11, 1, tzinfo=UTC)), session
    )
    fake.fail_next("recorded", body=fixture_json("google_business", "reviews-list-page1-docs.json"))
    fake.fail_next("recorded", body=fixture_json("google_business", "reviews-list-page2-docs.json"))
    result = await connector.fetch_since({})
    assert "pageToken=ACKHmY7example-page-token" in fake.requests[1]
    events = by_id(result.events)
    two, five, unrated = (
        "AIe9_BGu2XQ4nK7wT1aR8cZp",
        "AIe9_BGm5LJ0pV3sY6dF9hWq",
        "AIe9_BGr1TB8wN2qU5eH4kMs",
    )
    assert set(events) == {two, f"{two}/reply", five, unrated, f"{unrated}/reply"}
    assert [events[i].rating for i in (two, five, unrated)] == [2, 5, None]
    assert events[two].created_at == datetime(2026, 11, 19, 8, 15, 30, 123000, tzinfo=UTC)
    assert events[five].created_at == datetime(2026, 11, 18, 17, 42, 5, 45123, tzinfo=UTC)
    # Nine digits are cut to microseconds, never rounded up (later).
    assert events[unrated].created_at == datetime(2026, 11, 17, 6, 0, 0, 45123, tzinfo=UTC)
    assert events[f"{unrated}/reply"].created_at == datetime(2026, 11, 17, 7, 30, tzinfo=UTC)
    assert result.cursor["mark"] == "2026-11-19T09:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error-unauthenticated-docs.json", ConnectorAuthError),
        ("error-resource-exhausted-docs.json", ConnectorRateLimited),
    ],
)
async def test_recorded_error_envelopes_map(
    fake: FakeGoogleBusiness,
    business: GoogleBusinessConnector,
    name: str,
    error: type[ConnectorError],
) -> None:
    """Google's documented 401 and 429 envelopes raise auth and rate-limit errors."""
    body = fixture_json("google_business", name)
    fake.fail_next("recorded", body=body, status=body["error"]["code"])
    with pytest.raises(error, match=body["error"]["status"]):
        await business.fetch_since({})


async def test_reply_through_the_api_path_is_seen(
    fake: FakeGoogleBusiness,
    business: GoogleBusinessConnector,
    base_url: str,
    session: aiohttp.ClientSession,
) -> None:
    """PUT .../reviews/{r}/reply on the fake answers like Google and shows in the next poll."""
    review = fake.add_review(ACCOUNT, LOCATION, ago(2))
    first = await business.fetch_since({})
    fake.advance(timedelta(minutes=-30))
    url = f"{base_url}/v4/accounts/{ACCOUNT}/locations/{LOCATION}/reviews/{review}/reply"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.put(url, json={"comment": "Thanks"}, headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["updateTime"] == google_time(ago(0.5))
    second = await business.fetch_since(first.cursor)
    assert by_id(second.events)[f"{review}/reply"].created_at == ago(0.5)


async def test_ids_may_be_given_as_resource_names(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """``accounts/...`` and ``locations/...`` pasted from Google's docs work as ids."""
    ids = {"account_id": f"accounts/{ACCOUNT}", "location_id": f"locations/{LOCATION}"}
    connector = GoogleBusinessConnector(settings(ids=ids), session)
    review = fake.add_review(ACCOUNT, LOCATION, ago(1))
    result = await connector.fetch_since({})
    assert [e.message_id for e in result.events] == [review]


def test_missing_settings_are_refused(settings: Settings) -> None:
    """A missing id, secret or a bad option fails at construction, naming it."""
    no_session: Any = None  # never used: construction fails first
    with pytest.raises(ConnectorResponseError, match="location_id"):
        GoogleBusinessConnector(settings(ids={"account_id": ACCOUNT}), no_session)
    with pytest.raises(ConnectorResponseError, match="access_token"):
        GoogleBusinessConnector(settings(secrets={}), no_session)
    for days in ("a month", "-3", "nan", "1e300"):
        bad = settings(options={"reply_lookback_days": days})
        with pytest.raises(ConnectorResponseError, match="reply_lookback_days"):
            GoogleBusinessConnector(bad, no_session)


def test_time_helpers() -> None:
    """RFC 3339 with Z, offsets and 0-9 digits; Retry-After in seconds or as an HTTP date."""
    assert parse_rfc3339("2014-10-02T15:01:23Z") == datetime(2014, 10, 2, 15, 1, 23, tzinfo=UTC)
    assert parse_rfc3339("2014-10-02T15:01:23.045123456Z").microsecond == 45123
    assert parse_rfc3339("2014-10-02T15:01:23+05:30").hour == 9
    for bad in ("2014-10-02", "2014-10-02T15:01:23", None, 12, "soon"):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)
    date = "Fri, 20 Nov 2026 12:00:00 GMT"
    assert retry_after({"Retry-After": "Fri, 20 Nov 2026 12:02:00 GMT", "Date": date}, 5) == 120
    assert retry_after({"Retry-After": "soon"}, 5) == 5
    assert retry_after({}, 7) == 7


def test_reply_memory_keeps_the_earliest_and_the_most_recent() -> None:
    """The memory never moves a time later, survives damage, and keeps its newest entries."""
    memory = ReplyMemory(None, limit=2)
    assert memory.earliest("a", ago(5)) == ago(5)
    assert memory.earliest("a", ago(1)) == ago(5)
    memory.earliest("b", ago(3))
    memory.earliest("c", ago(2))
    restored = ReplyMemory(memory.encode())
    assert len(restored) == 2 and restored.earliest("b", ago(0)) == ago(3)
    assert len(ReplyMemory("{not json")) == 0
    assert len(ReplyMemory('{"a": "not a time"}')) == 0


async def test_a_refreshed_token_is_used_from_the_next_poll(
    fake: FakeGoogleBusiness, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """The token is read from settings.secrets at every poll, so a refreshed one takes effect."""
    secrets = {"access_token": "ya29.EXPIRED-TOKEN"}
    connector = GoogleBusinessConnector(settings(secrets=secrets), session)
    review = fake.add_review(ACCOUNT, LOCATION, ago(1))
    with pytest.raises(ConnectorAuthError):
        await connector.fetch_since({})
    secrets["access_token"] = TOKEN  # what a mapping re-reading a refreshed file would show
    result = await connector.fetch_since({})
    assert [e.message_id for e in result.events] == [review]
