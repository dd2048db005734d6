"""The Trustpilot connector against the fake Trustpilot API: paging, budget, every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import ConnectorSettings, Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.fakes.trustpilot import FakeTrustpilot
from connectors.trustpilot import (
    DEFAULT_LIMITS,
    CallBudget,
    TrustpilotConnector,
    parse_reviews_page,
    review_url,
)
from tests.connectors.conftest import NOW, fixture_json

UNIT = "46d6a890000064000500e0c3"
API_KEY = "TP-TEST-API-KEY-5678"
ACCESS_TOKEN = "TP-TEST-ACCESS-TOKEN-4321"
SMALL_LIMITS = ((300.0, 5), (3600.0, 8))
Build = Callable[..., TrustpilotConnector]


class Clock:
    """A settable clock in epoch seconds, shared by the connector, its budget and the fake."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(minutes: float) -> datetime:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


def store_merge(stored: dict[str, Event], result: FetchResult) -> None:
    """What the store does with a batch: one row per message id, earliest time kept."""
    for event in result.events:
        kept = stored.get(event.message_id)
        if kept is None or event.created_at < kept.created_at:
            stored[event.message_id] = event


@pytest.fixture
def clock() -> Clock:
    """The test's clock, starting at NOW."""
    return Clock(NOW)


@pytest.fixture
def fake_trustpilot(clock: Clock) -> FakeTrustpilot:
    """A fake Trustpilot with one business unit."""
    fake = FakeTrustpilot(api_key=API_KEY, access_token=ACCESS_TOKEN, clock=clock)
    fake.add_business_unit(UNIT)
    return fake


@pytest.fixture
async def trustpilot_url(fake_trustpilot: FakeTrustpilot) -> AsyncIterator[str]:
    """The fake served on 127.0.0.1."""
    # No access log: request lines and headers carry credentials.
    server = TestServer(fake_trustpilot.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake_trustpilot.release_slow()
    await server.close()


@pytest.fixture
def build(trustpilot_url: str, session: aiohttp.ClientSession, clock: Clock) -> Build:
    """Make a connector pointed at the fake, with its own budget on the test's clock."""

    def make(
        *, limits: tuple[tuple[float, int], ...] = DEFAULT_LIMITS, **overrides: object
    ) -> TrustpilotConnector:
        values: dict[str, object] = {
            "account": "shop",
            "ids": {"business_unit_id": UNIT},
            "secrets": {"api_key": API_KEY, "access_token": ACCESS_TOKEN},
            "channels": ("review",),
            "backfill_since": NOW - timedelta(days=7),
            "base_url": trustpilot_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        settings = ConnectorSettings(**values)  # type: ignore[arg-type]
        return TrustpilotConnector(settings, session, clock=clock, budget=CallBudget(limits, clock))

    return make


@pytest.fixture
def trustpilot(build: Build) -> TrustpilotConnector:
    """A connector for the fake's business unit."""
    return build()


# -- happy paths ---------------------------------------------------------------------------


async def test_backfill_reads_reviews_and_company_replies(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """Reviews are customer events with stars; companyReply is a business event, same thread."""
    r1 = fake_trustpilot.add_review(UNIT, at(300), stars=1)
    fake_trustpilot.reply(r1, at(200))
    r2 = fake_trustpilot.add_review(UNIT, at(100), stars=4)
    old = fake_trustpilot.add_review(UNIT, NOW - timedelta(days=8))
    result = await trustpilot.fetch_since({})
    got = {
        (e.message_id, e.thread_id, e.author_role, e.created_at, e.rating) for e in result.events
    }
    assert got == {
        (r1, r1, "customer", at(300), 1),
        (f"{r1}/reply", r1, "business", at(200), None),
        (r2, r2, "customer", at(100), 4),
    }
    assert old not in {e.message_id for e in result.events}
    assert {e.thread_url for e in result.events} == {review_url(r1), review_url(r2)}
    assert result.cursor == {"review": at(100).isoformat(), "open_since": at(100).isoformat()}
    assert result.quota_used == pytest.approx(1 / 833)
    [request] = fake_trustpilot.requests
    assert "page=1" in request and "perPage=100" in request and "orderBy=createdat.desc" in request


async def test_pagination_walks_page_numbers(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """250 reviews come in pages 1-3 of 100."""
    for i in range(250):
        fake_trustpilot.add_review(UNIT, at(i))
    result = await trustpilot.fetch_since({})
    assert len(result.events) == 250
    assert [r.split("page=")[1][0] for r in fake_trustpilot.requests] == ["1", "2", "3"]


async def test_pagination_without_links_uses_page_numbers_and_the_empty_end(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """Without next-page links a full page leads on, and the empty page past the end stops."""
    fake_trustpilot.page_links = False
    for i in range(200):
        fake_trustpilot.add_review(UNIT, at(i))
    result = await trustpilot.fetch_since({})
    assert len(result.events) == 200
    assert len(fake_trustpilot.requests) == 3  # two full pages, then the empty array


async def test_incremental_poll_stops_at_the_high_water_mark(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """With every review answered, the next poll reads one page and returns only recent items."""
    for i in range(250):
        review = fake_trustpilot.add_review(UNIT, at(90 + 10 * i))
        fake_trustpilot.reply(review, at(89 + 10 * i))
    first = await trustpilot.fetch_since({})
    assert "open_since" not in first.cursor
    fake_trustpilot.requests.clear()
    new = fake_trustpilot.add_review(UNIT, at(1))
    second = await trustpilot.fetch_since(first.cursor)
    assert len(fake_trustpilot.requests) == 1
    # The hour of overlap re-reads the seven old reviews (and replies) before the mark.
    ids = {e.message_id for e in second.events}
    assert new in ids and len(ids) == 1 + 7 * 2


async def test_a_reply_to_an_older_review_is_found(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector, clock: Clock
) -> None:
    """An unanswered review is read again until the company's reply appears, days later."""
    review = fake_trustpilot.add_review(UNIT, at(4 * 24 * 60))
    answered = fake_trustpilot.add_review(UNIT, at(2 * 24 * 60))
    fake_trustpilot.reply(answered, at(2 * 24 * 60 - 5))
    first = await trustpilot.fetch_since({})
    assert first.cursor["open_since"] == at(4 * 24 * 60).isoformat()
    clock.advance(3600)
    fake_trustpilot.reply(review, NOW + timedelta(minutes=20))
    second = await trustpilot.fetch_since(first.cursor)
    assert [e.created_at for e in second.events if e.message_id == f"{review}/reply"] == [
        NOW + timedelta(minutes=20)
    ]
    assert "open_since" not in second.cursor


async def test_a_bad_lookback_option_falls_back_to_the_default(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    """A negative reply_lookback_days is logged once and the default (30 days) is used."""
    with caplog.at_level(logging.WARNING):
        connector = build(options={"reply_lookback_days": "-3"})
    assert connector.window.lookback == timedelta(days=30)
    assert any("reply_lookback_days" in r.getMessage() for r in caplog.records)


async def test_an_edited_reply_never_moves_later(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """An edit moves only updatedAt: same id, same time, and the stored time stays the first."""
    review = fake_trustpilot.add_review(UNIT, at(60))
    fake_trustpilot.reply(review, at(40))
    stored: dict[str, Event] = {}
    first = await trustpilot.fetch_since({})
    store_merge(stored, first)
    fake_trustpilot.edit_reply(review, at(5))
    second = await trustpilot.fetch_since(first.cursor)
    [reply] = [e for e in second.events if e.author_role == "business"]
    assert reply.message_id == f"{review}/reply" and reply.created_at == at(40)
    store_merge(stored, second)
    assert stored[f"{review}/reply"].created_at == at(40)


async def test_a_crash_between_fetch_and_store_loses_nothing(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """A result that was never stored is fetched again from the old cursor, with what came since."""
    r1 = fake_trustpilot.add_review(UNIT, at(30))
    stored_cursor: dict[str, str] = {}
    lost = await trustpilot.fetch_since(stored_cursor)  # the process dies before storing it
    assert {e.message_id for e in lost.events} == {r1}
    for i in range(100):
        fake_trustpilot.add_review(UNIT, at(20 + i / 100))
    fake_trustpilot.fail_next("empty_page_with_next")
    fake_trustpilot.fail_next("server_error")  # a poll that fails on its second page
    with pytest.raises(ConnectorConnectionError):
        await trustpilot.fetch_since(stored_cursor)
    again = await trustpilot.fetch_since(stored_cursor)
    assert len(again.events) == 101 and r1 in {e.message_id for e in again.events}


# -- the call budget -----------------------------------------------------------------------


async def test_the_budget_stops_calls_before_the_platform_would(
    fake_trustpilot: FakeTrustpilot, build: Build, clock: Clock
) -> None:
    """Fake and connector share limits: the connector stops at the limit, the fake never 429s."""
    fake_trustpilot.limits = SMALL_LIMITS
    connector = build(limits=SMALL_LIMITS)
    for i in range(250):
        fake_trustpilot.add_review(UNIT, at(i))
    await connector.fetch_since({})  # three calls
    with pytest.raises(ConnectorRateLimited, match="budget is used up") as caught:
        await connector.fetch_since({})  # two more calls, and the third would be one too many
    assert len(fake_trustpilot.requests) == 5 and fake_trustpilot.throttled == 0
    assert caught.value.retry_after == pytest.approx(300.0)
    clock.advance(300)
    await connector.fetch_since({})  # the five-minute window has room again; the hour has 3
    with pytest.raises(ConnectorRateLimited) as hourly:
        await connector.fetch_since({})
    assert fake_trustpilot.throttled == 0
    assert hourly.value.retry_after == pytest.approx(3600.0 - 300.0)


def test_the_documented_budget_is_833_per_five_minutes_and_10000_per_hour(clock: Clock) -> None:
    """With the real limits the 834th call within five minutes waits for the first to age out."""
    assert DEFAULT_LIMITS == ((300.0, 833), (3600.0, 10_000))
    budget = CallBudget(DEFAULT_LIMITS, clock)
    for _ in range(833):
        assert budget.wait() == 0
        budget.spend()
    assert budget.wait() == pytest.approx(300.0)
    assert budget.used() == 1.0
    clock.advance(299)
    assert budget.wait() == pytest.approx(1.0)
    clock.advance(1)
    assert budget.wait() == 0


async def test_accounts_sharing_an_api_key_share_its_budget(
    trustpilot_url: str, session: aiohttp.ClientSession
) -> None:
    """Without an injected budget, connectors with the same key count against one budget."""

    def connector(account: str, api_key: str) -> TrustpilotConnector:
        settings = ConnectorSettings(
            account=account,
            ids={"business_unit_id": UNIT},
            secrets={"api_key": api_key, "access_token": ACCESS_TOKEN},
            channels=("review",),
            backfill_since=NOW,
            base_url=trustpilot_url,
        )
        return TrustpilotConnector(settings, session)

    first = connector("a", "shared-key-for-this-test")
    assert connector("b", "shared-key-for-this-test").budget is first.budget
    assert connector("c", "another-key-for-this-test").budget is not first.budget


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("server_error", {"status": 500}, ConnectorConnectionError, "HTTP 500"),
        ("server_error", {"status": 502, "html": True}, ConnectorConnectionError, "HTTP 502"),
        ("expired_token", {}, ConnectorAuthError, "access token was refused"),
        ("forbidden", {}, ConnectorAuthError, f"may not read business unit {UNIT}"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("missing_fields", {}, ConnectorResponseError, "page without a reviews list"),
        ("missing_fields", {"field": "createdAt"}, ConnectorResponseError, "createdAt"),
        ("missing_fields", {"field": "id"}, ConnectorResponseError, "review without an id"),
    ],
)
async def test_each_failure_maps_to_the_exception_tree(
    fake_trustpilot: FakeTrustpilot,
    trustpilot: TrustpilotConnector,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    options: dict[str, Any],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception; no secret in message or log."""
    fake_trustpilot.add_review(UNIT, at(5))
    fake_trustpilot.fail_next(kind, **options)
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as caught:
        await trustpilot.fetch_since({})
    assert words in str(caught.value)
    shown = [str(caught.value), repr(caught.value), repr(trustpilot)]
    shown += [r.getMessage() for r in caplog.records]
    assert all(API_KEY not in text and ACCESS_TOKEN not in text for text in shown)


@pytest.mark.parametrize(("options", "expected"), [({}, 300.0), ({"retry_after": 42}, 42.0)])
async def test_429_is_rate_limited_with_a_wait(
    fake_trustpilot: FakeTrustpilot,
    trustpilot: TrustpilotConnector,
    options: dict[str, Any],
    expected: float,
) -> None:
    """A 429 honours Retry-After, or waits out the five-minute window."""
    fake_trustpilot.fail_next("rate_limited", **options)
    with pytest.raises(ConnectorRateLimited, match="HTTP 429") as caught:
        await trustpilot.fetch_since({})
    assert caught.value.retry_after == expected


@pytest.mark.parametrize("which", ["api_key", "access_token"])
async def test_a_wrong_credential_is_an_auth_error_and_never_leaks(
    build: Build, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    """The fake checks both the apikey header and the bearer token; neither appears anywhere."""
    secrets = {"api_key": API_KEY, "access_token": ACCESS_TOKEN, which: "WRONG-SECRET-0000"}
    connector = build(secrets=secrets)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    shown = [str(caught.value), repr(caught.value), repr(connector)]
    shown += [r.getMessage() for r in caplog.records]
    assert all("WRONG-SECRET-0000" not in text and API_KEY not in text for text in shown)


async def test_an_empty_page_with_a_next_link_is_followed(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """An empty page that links onwards is not the end."""
    review = fake_trustpilot.add_review(UNIT, at(5))
    fake_trustpilot.fail_next("empty_page_with_next")
    result = await trustpilot.fetch_since({})
    assert [e.message_id for e in result.events] == [review]
    assert len(fake_trustpilot.requests) == 2


async def test_endless_empty_pages_are_refused(
    fake_trustpilot: FakeTrustpilot, trustpilot: TrustpilotConnector
) -> None:
    """A server that keeps linking to empty pages cannot hold a poll forever."""
    fake_trustpilot.fail_next("empty_page_with_next", times=10)
    with pytest.raises(ConnectorResponseError, match="empty pages in a row"):
        await trustpilot.fetch_since({})
    assert len(fake_trustpilot.requests) == 5


async def test_timeout_reset_and_refused_connection(
    fake_trustpilot: FakeTrustpilot, build: Build
) -> None:
    """A slow answer, a connection dropped mid-body and a closed port are connection errors."""
    fake_trustpilot.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await build(request_timeout=0.05).fetch_since({})
    fake_trustpilot.add_review(UNIT, at(5))
    fake_trustpilot.fail_next("reset")
    with pytest.raises(ConnectorConnectionError, match="ClientPayloadError"):
        await build().fetch_since({})
    with pytest.raises(ConnectorConnectionError):
        await build(base_url="http://127.0.0.1:9").fetch_since({})


async def test_an_unknown_business_unit_is_a_response_error(build: Build) -> None:
    """A wrong business_unit_id is a 404 naming the unit."""
    connector = build(ids={"business_unit_id": "000000000000000000000000"})
    with pytest.raises(ConnectorResponseError, match="000000000000000000000000 not found"):
        await connector.fetch_since({})


# -- documented payloads -------------------------------------------------------------------


def test_documented_payloads_parse() -> None:
    """The page as platform-apis.md shows it: stars, times, companyReply set and null, links."""
    page = parse_reviews_page(fixture_json("trustpilot", "private-reviews-page.json"), "t")
    answered, waiting = page.reviews
    assert (answered.id, answered.stars) == ("64a1f0c2e3b4d5a6b7c8d9e1", 2)
    assert answered.created == datetime(2024, 3, 4, 9, 15, 27, tzinfo=UTC)
    # createdAt, not the later updatedAt of the edit.
    assert answered.replied_at == datetime(2024, 3, 4, 13, 2, 11, tzinfo=UTC)
    assert (waiting.stars, waiting.replied_at) == (5, None)
    assert page.next_page == 2
    end = parse_reviews_page(fixture_json("trustpilot", "private-reviews-past-end.json"), "t")
    assert end.reviews == () and end.next_page is None


async def test_documented_page_through_the_connector(
    fake_trustpilot: FakeTrustpilot, build: Build
) -> None:
    """The documented page then the empty page past the end become three events."""
    connector = build(
        backfill_since=datetime(2024, 3, 1, tzinfo=UTC), options={"reply_lookback_days": "3650"}
    )
    fake_trustpilot.fail_next(
        "recorded", body=fixture_json("trustpilot", "private-reviews-page.json")
    )
    fake_trustpilot.fail_next(
        "recorded", body=fixture_json("trustpilot", "private-reviews-past-end.json")
    )
    result = await connector.fetch_since({})
    assert {(e.message_id, e.author_role, e.rating) for e in result.events} == {
        ("64a1f0c2e3b4d5a6b7c8d9e1", "customer", 2),
        ("64a1f0c2e3b4d5a6b7c8d9e1/reply", "business", None),
        ("64a1f0c2e3b4d5a6b7c8d9e2", "customer", 5),
    }
    assert "page=2" in fake_trustpilot.requests[1]  # the page number from the next-page link
    assert result.cursor == {
        "review": "2024-03-04T09:15:27+00:00",
        "open_since": "2024-03-03T17:40:00+00:00",
    }
