"""Meta webhooks: recorded payloads, signatures, the handshake, malformed bodies."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from connectors.meta_webhook import (
    WebhookPayloadError,
    parse_meta_webhook,
    verify_challenge,
    verify_signature,
)
from tests.connectors.conftest import fixture_bytes

FB_PAGE = "1691462197845448"
CUSTOMER = "1134343043305865"
ACCOUNTS = {
    ("facebook", FB_PAGE): "shop-fb",
    ("facebook", "12345654332"): "numeric-fb",
    ("facebook", "1234567890321"): "feed-fb",
    ("instagram", "17841452691600098"): "shop-ig",
    ("instagram", "0"): "sample-ig",
}


def test_recorded_customer_message() -> None:
    """The 2016 capture: a customer DM, ms timestamp, thread by the customer's PSID."""
    batch = parse_meta_webhook(fixture_bytes("facebook", "messenger-message-2016.json"), ACCOUNTS)
    [event] = batch.events
    assert (event.platform, event.account, event.channel) == ("facebook", "shop-fb", "dm")
    assert event.author_role == "customer"
    assert event.thread_id == f"dm/{CUSTOMER}"
    assert event.message_id == "mid.1472026867074:cfb5e1d4bde07a2a55"
    assert event.created_at == datetime.fromtimestamp(1472026867.080, tz=UTC)


def test_recorded_echo_is_the_business_in_the_same_thread() -> None:
    """An echo is the Page answering: business role, thread of the recipient."""
    batch = parse_meta_webhook(fixture_bytes("facebook", "messenger-echo-2016.json"), ACCOUNTS)
    [event] = batch.events
    assert event.author_role == "business" and event.thread_id == f"dm/{CUSTOMER}"


def test_numeric_ids_are_accepted() -> None:
    """restfb's echo sample has ids as JSON numbers."""
    batch = parse_meta_webhook(
        fixture_bytes("facebook", "messenger-echo-with-metadata.json"), ACCOUNTS
    )
    [event] = batch.events
    assert event.account == "numeric-fb" and event.thread_id == "dm/987654321432"
    assert event.author_role == "business"


@pytest.mark.parametrize(
    "name",
    [
        "messenger-delivery-2016.json",
        "messenger-message-edit.json",
        "messenger-message-deleted.json",
    ],
)
def test_receipts_edits_and_deletions_are_ignored(name: str) -> None:
    """Deliveries, edits and deleted messages are no events, but counted as ignored."""
    batch = parse_meta_webhook(fixture_bytes("facebook", name), ACCOUNTS)
    assert batch.events == () and batch.ignored == 1


def test_feed_comment_by_the_page_itself_is_left_to_the_poller() -> None:
    """The recorded feed comment is by the Page (from.id == entry id): not stored from hooks."""
    for name in ("feed-comment-add.json", "feed-comment-add-with-photo-legacy.json"):
        batch = parse_meta_webhook(fixture_bytes("facebook", name), ACCOUNTS)
        assert batch.events == () and batch.ignored == 1, name


def test_feed_comment_by_a_customer_opens_a_thread() -> None:
    """The same recorded shape, seen for another Page: a customer's top-level comment."""
    accounts = {("facebook", "1234567890321"): "feed-fb"}
    body = fixture_bytes("facebook", "feed-comment-add.json").replace(
        b'"id": "1234567890321",\n              "name"', b'"id": "555",\n              "name"'
    )
    [event] = parse_meta_webhook(body, accounts).events
    assert event.channel == "comment" and event.author_role == "customer"
    # parent_id equals post_id: a top-level comment is the root of its own tree.
    assert event.thread_id == "901097836652708_903438993085259/555"
    assert event.created_at == datetime.fromtimestamp(1449135003, tz=UTC)


def test_instagram_comment_reply_and_dm() -> None:
    """IG comment samples: a reply (parent_id) threads under its parent; DMs by IGSID."""
    [comment] = parse_meta_webhook(
        fixture_bytes("instagram", "webhook-comments.json"), ACCOUNTS
    ).events
    assert comment.account == "sample-ig" and comment.thread_id == "987654321/1234536447"
    assert comment.created_at == datetime.fromtimestamp(1519399307, tz=UTC)
    [dm] = parse_meta_webhook(
        fixture_bytes("instagram", "webhook-messaging-unsupported-attachment.json"), ACCOUNTS
    ).events
    assert dm.platform == "instagram" and dm.thread_id == "dm/5614879045272581"
    assert dm.author_role == "customer"


def test_instagram_mentions_and_seen_are_ignored() -> None:
    """Mentions (no author) and read receipts are not customer messages here."""
    for name in ("webhook-mentions.json", "webhook-messaging-seen.json"):
        batch = parse_meta_webhook(fixture_bytes("instagram", name), ACCOUNTS)
        assert batch.events == () and batch.ignored >= 1, name


def test_unknown_accounts_are_ignored() -> None:
    """A delivery for a Page nobody configured stores nothing."""
    batch = parse_meta_webhook(fixture_bytes("facebook", "messenger-message-2016.json"), {})
    assert batch.events == () and batch.ignored == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"object": "page"}',
        b'{"object": "user", "entry": []}',
        b'{"object": "page", "entry": {}}',
        b'{"object": "page", "entry": [1]}',
        b'{"object":"page","entry":[{"id":"1691462197845448","messaging":[{"message":{"mid":"x"}}]}]}',
    ],
)
def test_malformed_bodies_raise_without_quoting_them(body: bytes) -> None:
    """Every malformed shape is a WebhookPayloadError whose message does not echo the body."""
    with pytest.raises(WebhookPayloadError) as caught:
        parse_meta_webhook(body, ACCOUNTS)
    assert "1691462197845448" not in str(caught.value)


def test_signature_over_the_raw_bytes() -> None:
    """Only sha256 HMAC of the exact bytes with the app secret passes."""
    body = fixture_bytes("facebook", "messenger-message-2016.json")
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert verify_signature("app-secret", body, good)
    assert verify_signature("app-secret", body, good.upper().replace("SHA256", "sha256"))
    assert not verify_signature("other-secret", body, good)
    assert not verify_signature("app-secret", body + b" ", good)
    assert not verify_signature("app-secret", body, None)
    assert not verify_signature("app-secret", body, "sha1=" + good[7:])
    assert not verify_signature("app-secret", body, "sha256=")
    assert not verify_signature("", body, good)


def test_challenge_handshake() -> None:
    """The challenge is echoed only for mode=subscribe and the right verify token."""
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "42"}
    assert verify_challenge(params, "tok") == "42"
    assert verify_challenge({**params, "hub.verify_token": "nope"}, "tok") is None
    assert verify_challenge({**params, "hub.mode": "unsubscribe"}, "tok") is None
    assert verify_challenge(params, "") is None
