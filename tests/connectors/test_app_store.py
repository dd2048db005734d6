"""The App Store connector against the fake App Store Connect API: auth, paging, every failure."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors.app_store import (
    AUDIENCE,
    AppStoreConnector,
    parse_rate_limit,
    parse_reviews_page,
)
from connectors.base import ConnectorSettings, Event, FetchResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorRateLimited,
    ConnectorResponseError,
)
from connectors.fakes.app_store import FakeAppStore
from tests.connectors.conftest import NOW, fixture_json

APP_ID = "1234567890"
ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a"
KEY_ID = "2X9R4HXF34"
Build = Callable[..., AppStoreConnector]


class Clock:
    """A settable clock in epoch seconds, shared by the connector and the fake."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(minutes: float) -> datetime:
    """NOW minus some minutes."""
    return NOW - timedelta(minutes=minutes)


def pem_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """The key as a .p8 file holds it (PKCS#8 PEM)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_body(pem: str) -> str:
    """The base64 lines of a PEM, which must never appear in a message."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def store_merge(stored: dict[str, Event], result: FetchResult) -> None:
    """What the store does with a batch: one row per message id, earliest time kept."""
    for event in result.events:
        kept = stored.get(event.message_id)
        if kept is None or event.created_at < kept.created_at:
            stored[event.message_id] = event


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key, as App Store Connect issues (never committed)."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    """The test's clock, starting at NOW."""
    return Clock(NOW)


@pytest.fixture
def fake_app_store(signing_key: ec.EllipticCurvePrivateKey, clock: Clock) -> FakeAppStore:
    """A fake App Store Connect knowing the key's public half, with one app."""
    fake = FakeAppStore(
        issuer_id=ISSUER_ID, key_id=KEY_ID, public_key=signing_key.public_key(), clock=clock
    )
    fake.add_app(APP_ID)
    return fake


@pytest.fixture
async def app_store_url(fake_app_store: FakeAppStore) -> AsyncIterator[str]:
    """The fake served on 127.0.0.1."""
    server = TestServer(fake_app_store.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake_app_store.release_slow()
    await server.close()


@pytest.fixture
def build(
    app_store_url: str,
    session: aiohttp.ClientSession,
    clock: Clock,
    signing_key: ec.EllipticCurvePrivateKey,
) -> Build:
    """Make a connector pointed at the fake; keyword arguments override settings."""

    def make(
        *, connector_clock: Callable[[], float] | None = None, **overrides: object
    ) -> AppStoreConnector:
        values: dict[str, object] = {
            "account": "shop",
            "ids": {"app_id": APP_ID, "issuer_id": ISSUER_ID, "key_id": KEY_ID},
            "secrets": {"private_key": pem_of(signing_key)},
            "channels": ("review",),
            "backfill_since": NOW - timedelta(days=7),
            "base_url": app_store_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        settings = ConnectorSettings(**values)  # type: ignore[arg-type]
        return AppStoreConnector(settings, session, clock=connector_clock or clock)

    return make


@pytest.fixture
def app_store(build: Build) -> AppStoreConnector:
    """A connector for the fake's app."""
    return build()


# -- happy paths ---------------------------------------------------------------------------


async def test_backfill_reads_reviews_and_responses(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """Reviews are customer events with ratings; responses are business events in the thread."""
    r1 = fake_app_store.add_review(APP_ID, at(300), rating=2, utc_offset_hours=-8)
    fake_app_store.respond(r1, at(200))
    r2 = fake_app_store.add_review(APP_ID, at(100), rating=5, utc_offset_hours=5.5)
    fake_app_store.respond(r2, at(50), state="PENDING_PUBLISH")
    r3 = fake_app_store.add_review(APP_ID, at(10), rating=1)
    old = fake_app_store.add_review(APP_ID, NOW - timedelta(days=8))
    result = await app_store.fetch_since({})
    got = {
        (e.message_id, e.thread_id, e.author_role, e.created_at, e.rating) for e in result.events
    }
    assert got == {
        (r1, r1, "customer", at(300), 2),
        (f"{r1}/response", r1, "business", at(200), None),
        (r2, r2, "customer", at(100), 5),
        (f"{r2}/response", r2, "business", at(50), None),
        (r3, r3, "customer", at(10), 1),
    }
    assert old not in {e.message_id for e in result.events}
    assert all(e.created_at.tzinfo is UTC and e.channel == "review" for e in result.events)
    assert result.cursor == {"review": at(10).isoformat(), "open_since": at(10).isoformat()}
    assert result.quota_used == pytest.approx(1 / 3600)


async def test_pagination_follows_links_next(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """450 reviews come in pages of 200 through the cursor in links.next."""
    for i in range(450):
        fake_app_store.add_review(APP_ID, at(i))
    result = await app_store.fetch_since({})
    assert len(result.events) == 450
    assert len(fake_app_store.requests) == 3
    first, *rest = fake_app_store.requests
    assert "sort=-createdDate" in first and "limit=200" in first and "include=response" in first
    assert all("cursor=" in path for path in rest)


async def test_incremental_poll_stops_at_the_high_water_mark(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """With every review answered, the next poll reads one page and returns only new items."""
    for i in range(450):
        review = fake_app_store.add_review(APP_ID, at(90 + 10 * i))
        fake_app_store.respond(review, at(89 + 10 * i))
    first = await app_store.fetch_since({})
    assert "open_since" not in first.cursor
    fake_app_store.requests.clear()
    new = fake_app_store.add_review(APP_ID, at(1))
    second = await app_store.fetch_since(first.cursor)
    assert len(fake_app_store.requests) == 1
    # The hour of overlap re-reads the seven old reviews (and responses) from the last hour
    # before the mark; duplicates are harmless.
    ids = {e.message_id for e in second.events}
    assert new in ids and len(ids) == 1 + 7 * 2
    assert second.cursor["review"] == at(1).isoformat()


async def test_a_response_to_an_older_review_is_found(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector, clock: Clock
) -> None:
    """An unanswered review is read again until its response appears, days later."""
    review = fake_app_store.add_review(APP_ID, at(3 * 24 * 60))
    answered = fake_app_store.add_review(APP_ID, at(2 * 24 * 60))
    fake_app_store.respond(answered, at(2 * 24 * 60 - 5))
    first = await app_store.fetch_since({})
    assert first.cursor["open_since"] == at(3 * 24 * 60).isoformat()
    clock.advance(3600)
    fake_app_store.respond(review, NOW + timedelta(minutes=30))
    second = await app_store.fetch_since(first.cursor)
    replies = [e for e in second.events if e.message_id == f"{review}/response"]
    assert [e.created_at for e in replies] == [NOW + timedelta(minutes=30)]
    assert "open_since" not in second.cursor
    fake_app_store.requests.clear()
    third = await app_store.fetch_since(second.cursor)
    # Answered now: the old review is no longer re-read, only the last hour before the mark.
    assert review not in {e.thread_id for e in third.events}
    assert len(fake_app_store.requests) == 1


async def test_unanswered_reviews_older_than_the_lookback_are_let_go(
    fake_app_store: FakeAppStore, build: Build
) -> None:
    """With reply_lookback_days=1, a three-day-old unanswered review is not re-read."""
    connector = build(options={"reply_lookback_days": "1"})
    fake_app_store.add_review(APP_ID, at(3 * 24 * 60))
    recent = fake_app_store.add_review(APP_ID, at(60))
    result = await connector.fetch_since({})
    assert result.cursor["open_since"] == at(60).isoformat()
    assert {e.message_id for e in result.events} >= {recent}


async def test_a_bad_lookback_option_falls_back_to_the_default(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo in reply_lookback_days is logged once and the default (30 days) is used."""
    with caplog.at_level(logging.WARNING):
        connector = build(options={"reply_lookback_days": "a month"})
    assert connector.window.lookback == timedelta(days=30)
    assert any("reply_lookback_days" in r.getMessage() for r in caplog.records)


async def test_an_edited_response_never_moves_later(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """An edit moves lastModifiedDate; the id stays, so the stored reply time keeps the first."""
    review = fake_app_store.add_review(APP_ID, at(60))
    fake_app_store.respond(review, at(40))
    stored: dict[str, Event] = {}
    first = await app_store.fetch_since({})
    store_merge(stored, first)
    fake_app_store.edit_response(review, at(5))
    second = await app_store.fetch_since(first.cursor)
    edited = [e for e in second.events if e.author_role == "business"]
    assert [e.message_id for e in edited] == [f"{review}/response"]
    assert edited[0].created_at == at(5)  # what Apple now says
    store_merge(stored, second)
    assert stored[f"{review}/response"].created_at == at(40)


async def test_a_crash_between_fetch_and_store_loses_nothing(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """A result that was never stored is fetched again from the old cursor, with what came since."""
    r1 = fake_app_store.add_review(APP_ID, at(30))
    stored_cursor: dict[str, str] = {}
    lost = await app_store.fetch_since(stored_cursor)  # the process dies before storing it
    assert {e.message_id for e in lost.events} == {r1}
    r2 = fake_app_store.add_review(APP_ID, at(20))
    fake_app_store.fail_next("empty_page_with_next")
    fake_app_store.fail_next("server_error")  # a poll that fails on its second page
    with pytest.raises(ConnectorConnectionError):
        await app_store.fetch_since(stored_cursor)
    again = await app_store.fetch_since(stored_cursor)
    assert {e.message_id for e in again.events} == {r1, r2}


# -- the JWT -------------------------------------------------------------------------------


async def test_the_token_is_signed_as_apple_requires(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector, clock: Clock
) -> None:
    """ES256 with kid and typ; iss, aud, iat now and exp at most 20 minutes later."""
    await app_store.fetch_since({})
    [token] = fake_app_store.tokens
    assert token["header"] == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert token["iss"] == ISSUER_ID and token["aud"] == AUDIENCE
    assert token["iat"] == int(clock.now)
    assert 0 < token["exp"] - token["iat"] <= 20 * 60


async def test_the_token_is_made_anew_before_it_expires(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector, clock: Clock
) -> None:
    """The token is reused while more than two minutes remain, then replaced in time."""
    await app_store.fetch_since({})
    first = fake_app_store.tokens[-1]
    lifetime = first["exp"] - first["iat"]
    clock.advance(lifetime - 121)
    await app_store.fetch_since({})
    assert fake_app_store.tokens[-1]["iat"] == first["iat"]
    clock.advance(2)  # now less than two minutes remain
    await app_store.fetch_since({})
    renewed = fake_app_store.tokens[-1]
    assert renewed["iat"] == int(clock.now) and renewed["exp"] > first["exp"]
    assert fake_app_store.refused == []


async def test_a_token_the_fake_finds_expired_is_an_auth_error(
    fake_app_store: FakeAppStore, build: Build, clock: Clock
) -> None:
    """A clock half an hour slow signs a token that is already expired: 401, then recovery."""
    slow = Clock(NOW - timedelta(minutes=30))
    connector = build(connector_clock=slow)
    with pytest.raises(ConnectorAuthError, match="HTTP 401 NOT_AUTHORIZED"):
        await connector.fetch_since({})
    assert fake_app_store.refused == ["expired"]
    slow.now = clock.now  # the clock is fixed: the refused token is not reused
    result = await connector.fetch_since({})
    assert result.cursor


@pytest.mark.parametrize(
    ("claims", "lifetime", "headers", "reason"),
    [
        ({"aud": "someone-else"}, 600, {}, "InvalidAudienceError"),
        ({"iss": "another-issuer"}, 600, {}, "InvalidIssuerError"),
        ({}, 21 * 60, {}, "expires more than 20 minutes ahead"),
        ({}, -60, {}, "expired"),
        ({}, 600, {"kid": "OTHERKEY00"}, "wrong kid or typ"),
    ],
)
async def test_the_fake_verifies_every_claim(
    fake_app_store: FakeAppStore,
    app_store_url: str,
    session: aiohttp.ClientSession,
    signing_key: ec.EllipticCurvePrivateKey,
    clock: Clock,
    claims: dict[str, Any],
    lifetime: int,
    headers: dict[str, str],
    reason: str,
) -> None:
    """A token wrong in any one respect gets Apple's 401 NOT_AUTHORIZED body."""
    issued = int(clock.now)
    payload = {"iss": ISSUER_ID, "aud": AUDIENCE, "iat": issued, "exp": issued + lifetime}
    payload.update(claims)
    token = jwt.encode(
        payload, signing_key, algorithm="ES256", headers={"kid": KEY_ID, "typ": "JWT", **headers}
    )
    url = f"{app_store_url}/v1/apps/{APP_ID}/customerReviews"
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json()
    assert response.status == 401
    assert body["errors"][0]["code"] == "NOT_AUTHORIZED"
    assert fake_app_store.refused == [reason]


async def test_a_key_the_fake_does_not_know_is_refused_and_never_leaks(
    fake_app_store: FakeAppStore, build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed with another key: auth error; neither key nor token in the message or logs."""
    other = pem_of(ec.generate_private_key(ec.SECP256R1()))
    connector = build(secrets={"private_key": other})
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert fake_app_store.refused == ["InvalidSignatureError"]
    shown = [str(caught.value), repr(caught.value), repr(connector)]
    shown += [r.getMessage() for r in caplog.records]
    for text in shown:
        assert key_body(other)[:40] not in text
        assert "eyJ" not in text  # no JWT


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("-----BEGIN PRIVATE KEY-----\nTUlHSEFnRUFNQk1HQnlxR1NNNDlBZ0VHQ0NxR1NNNDlBd0VIQkcwd2F3\n"
         "-----END PRIVATE KEY-----\n", "not a readable PEM private key"),
        ("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", "not a readable PEM private key"),
        ("rsa", "not an EC P-256 key"),
        ("p384", "not an EC P-256 key"),
        ("file:AuthKey_2X9R4HXF34.p8", "unresolved file reference"),
    ],
)  # fmt: skip
async def test_a_bad_private_key_gives_a_clear_error_without_the_key(
    fake_app_store: FakeAppStore,
    build: Build,
    caplog: pytest.LogCaptureFixture,
    secret: str,
    words: str,
) -> None:
    """Garbage, RSA, P-384 or an unresolved reference: an auth error naming the problem only."""
    if secret == "rsa":
        secret = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif secret == "p384":
        secret = pem_of(ec.generate_private_key(ec.SECP384R1()))
    connector = build(secrets={"private_key": secret})
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorAuthError) as caught:
        await connector.fetch_since({})
    assert words in str(caught.value)
    assert fake_app_store.requests == []
    printed = "".join(traceback.format_exception(caught.value))
    printed += "".join(r.getMessage() for r in caplog.records)
    fragment = key_body(secret)[:24] if "BEGIN" in secret else secret[:24]
    if not secret.startswith("file:"):
        assert fragment not in printed


async def test_a_key_pasted_with_escaped_newlines_still_signs(
    fake_app_store: FakeAppStore, build: Build, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    """A .p8 squeezed into one environment variable line (literal \\n) is accepted."""
    connector = build(secrets={"private_key": pem_of(signing_key).replace("\n", "\\n")})
    await connector.fetch_since({})
    assert len(fake_app_store.tokens) == 1


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "error", "words"),
    [
        ("server_error", {"status": 500}, ConnectorConnectionError, "HTTP 500 UNEXPECTED_ERROR"),
        ("server_error", {"status": 502, "html": True}, ConnectorConnectionError, "HTTP 502"),
        ("expired_token", {}, ConnectorAuthError, "HTTP 401 NOT_AUTHORIZED"),
        ("forbidden", {}, ConnectorAuthError, "Customer Support role"),
        ("malformed", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("truncated", {}, ConnectorResponseError, "malformed or truncated JSON"),
        ("missing_fields", {}, ConnectorResponseError, "page without a data list"),
        ("missing_fields", {"field": "createdDate"}, ConnectorResponseError, "createdDate"),
        ("foreign_next", {}, ConnectorResponseError, "links.next points at another host"),
    ],
)
async def test_each_failure_maps_to_the_exception_tree(
    fake_app_store: FakeAppStore,
    app_store: AppStoreConnector,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    options: dict[str, Any],
    error: type[ConnectorError],
    words: str,
) -> None:
    """Each switch of the fake raises the documented exception; no token in message or log."""
    fake_app_store.add_review(APP_ID, at(5))
    fake_app_store.fail_next(kind, **options)
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as caught:
        await app_store.fetch_since({})
    assert words in str(caught.value)
    assert app_store._token is None or app_store._token not in str(caught.value)
    assert all("eyJ" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("options", "expected"),
    [({}, 60.0), ({"retry_after": 120}, 120.0), ({"remaining": 0}, 900.0)],
)
async def test_429_is_rate_limited_with_a_wait(
    fake_app_store: FakeAppStore,
    app_store: AppStoreConnector,
    options: dict[str, Any],
    expected: float,
) -> None:
    """RATE_LIMIT_EXCEEDED: Retry-After when given, a burst wait, or longer with none left."""
    fake_app_store.fail_next("rate_limited", **options)
    with pytest.raises(ConnectorRateLimited, match="RATE_LIMIT_EXCEEDED") as caught:
        await app_store.fetch_since({})
    assert caught.value.retry_after == expected


async def test_the_hourly_limit_is_reported_and_enforced(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """quota_used follows X-Rate-Limit; past the hour's limit the fake answers 429."""
    fake_app_store.hourly_limit = 3
    for i in range(300):
        fake_app_store.add_review(APP_ID, at(i))
    first = await app_store.fetch_since({})  # two pages
    assert first.quota_used == pytest.approx(1 - 1 / 3)
    with pytest.raises(ConnectorRateLimited) as caught:
        await app_store.fetch_since({})  # the third call is allowed, the fourth is not
    assert len(fake_app_store.requests) == 4
    assert caught.value.retry_after == 900.0


async def test_an_empty_page_with_a_next_link_is_followed(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """A page with no reviews but a next link is not the end."""
    review = fake_app_store.add_review(APP_ID, at(5))
    fake_app_store.fail_next("empty_page_with_next")
    result = await app_store.fetch_since({})
    assert [e.message_id for e in result.events] == [review]
    assert len(fake_app_store.requests) == 2


async def test_endless_empty_pages_are_refused(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """A server that keeps linking to empty pages cannot hold a poll forever."""
    fake_app_store.fail_next("empty_page_with_next", times=10)
    with pytest.raises(ConnectorResponseError, match="empty pages in a row"):
        await app_store.fetch_since({})
    assert len(fake_app_store.requests) == 5


async def test_timeout_reset_and_refused_connection(
    fake_app_store: FakeAppStore, build: Build
) -> None:
    """A slow answer, a connection dropped mid-body and a closed port are connection errors."""
    fake_app_store.fail_next("slow")
    with pytest.raises(ConnectorConnectionError, match="no answer within"):
        await build(request_timeout=0.05).fetch_since({})
    fake_app_store.add_review(APP_ID, at(5))
    fake_app_store.fail_next("reset")
    with pytest.raises(ConnectorConnectionError, match="ClientPayloadError"):
        await build().fetch_since({})
    with pytest.raises(ConnectorConnectionError):
        await build(base_url="http://127.0.0.1:9").fetch_since({})


async def test_an_unknown_app_is_a_response_error(build: Build) -> None:
    """A wrong app_id gets Apple's 404 and says which app."""
    connector = build(ids={"app_id": "999", "issuer_id": ISSUER_ID, "key_id": KEY_ID})
    with pytest.raises(ConnectorResponseError, match="app 999 not found"):
        await connector.fetch_since({})


# -- documented payloads -------------------------------------------------------------------


def test_documented_payloads_parse() -> None:
    """The pages as platform-apis.md shows them: local offsets, included responses, next link."""
    page = parse_reviews_page(fixture_json("app_store", "customer-reviews-page.json"), "t")
    assert [(r.id[-2:], r.rating) for r in page.reviews] == [("01", 2), ("02", 5)]
    first, second = page.reviews
    assert first.created == datetime(2017, 11, 15, 16, 10, 34, tzinfo=UTC)
    assert first.replied_at == datetime(2017, 11, 16, 17, 30, tzinfo=UTC)
    assert second.replied_at is None
    assert page.next_url is not None and "cursor=Mg.ANp1234" in page.next_url
    last = parse_reviews_page(fixture_json("app_store", "customer-reviews-last-page.json"), "t")
    assert last.next_url is None
    [pending] = last.reviews
    assert pending.created == datetime(2017, 11, 13, 17, 0, tzinfo=UTC)
    assert pending.replied_at == datetime(2017, 11, 13, 19, 15, tzinfo=UTC)  # PENDING_PUBLISH
    header = fixture_json("app_store", "rate-limit-header.json")["X-Rate-Limit"]
    assert parse_rate_limit(header) == (3500, 500)
    assert parse_rate_limit("user-hour-lim:3600;user-hour-rem:3599;") == (3600, 3599)
    assert parse_rate_limit("garbage") is None


async def test_documented_pages_through_the_connector(
    fake_app_store: FakeAppStore, build: Build, app_store_url: str
) -> None:
    """The documented two pages, served by the fake, become the five expected events."""
    connector = build(
        backfill_since=datetime(2017, 11, 1, tzinfo=UTC), options={"reply_lookback_days": "3650"}
    )
    page = fixture_json("app_store", "customer-reviews-page.json")
    page["links"]["next"] = page["links"]["next"].replace(
        "https://api.appstoreconnect.apple.com", app_store_url
    )
    fake_app_store.fail_next("recorded", body=page)
    fake_app_store.fail_next(
        "recorded", body=fixture_json("app_store", "customer-reviews-last-page.json")
    )
    result = await connector.fetch_since({})
    base = "5b7b6e64-0d2a-4a4e-9a1c-7f0c2f6a1b0"
    assert {(e.message_id, e.author_role, e.rating) for e in result.events} == {
        (f"{base}1", "customer", 2),
        (f"{base}1/response", "business", None),
        (f"{base}2", "customer", 5),
        (f"{base}3", "customer", 1),
        (f"{base}3/response", "business", None),
    }
    assert {e.thread_id for e in result.events} == {f"{base}1", f"{base}2", f"{base}3"}
    assert result.cursor["open_since"] == "2017-11-15T07:05:00+00:00"


async def test_documented_error_bodies_map(
    fake_app_store: FakeAppStore, app_store: AppStoreConnector
) -> None:
    """The documented 401 and 429 bodies raise auth and rate-limit errors."""
    fake_app_store.fail_next(
        "recorded", body=fixture_json("app_store", "error-401.json"), status=401
    )
    with pytest.raises(ConnectorAuthError, match="NOT_AUTHORIZED"):
        await app_store.fetch_since({})
    fake_app_store.fail_next(
        "recorded", body=fixture_json("app_store", "error-429.json"), status=429
    )
    with pytest.raises(ConnectorRateLimited, match="RATE_LIMIT_EXCEEDED"):
        await app_store.fetch_since({})
