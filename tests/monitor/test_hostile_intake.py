"""Hostile requests to /hooks/*: never a 500, always a reason and a count; good items kept.

Requests are written as raw bytes, so headers can carry what no polite client sends (0xFF,
UTF-8, a broken Content-Encoding), through the same server ``replywatch run`` uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import Event
from connectors.telegram_webhook import SECRET_HEADER
from monitor.config.loading import Config, ConfigError, load_config
from monitor.export.metrics import Metrics
from monitor.http.app import build_app
from monitor.http.events_hook import EventsHook, EventToken
from monitor.http.server import start_server
from monitor.http.webhooks import MetaWebhook, TelegramWebhook
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS

EVERY_PUSH = "rw-events-TEST-token-every"
SHOP_ONLY = "rw-events-TEST-token-shop"
APP_SECRET = "meta-TEST-app-secret"
TG_SECRET = "tg-TEST-secret-token"
BOUND = 10.0
CONFIG = """
[webhooks.events]
secrets = { token = "env:RW_EVERY" }
[[webhooks.events.tokens]]
secret = "env:RW_SHOP"
accounts = ["shop"]

[[accounts]]
name = "helpdesk"
platform = "whatsapp"
source = "push"

[[accounts]]
name = "shop"
platform = "facebook"
ids = { page_id = "100" }
secrets = { access_token = "env:RW_PAGE" }
"""
CREATED = "2026-11-20T09:00:00Z"
MS = int(datetime.fromisoformat(CREATED).timestamp() * 1000)


def event(message_id: str, account: str = "helpdesk", **changes: Any) -> dict[str, Any]:
    """One /hooks/events item."""
    platform = "facebook" if account == "shop" else "whatsapp"
    item = {
        "platform": platform,
        "account": account,
        "thread_id": "t1",
        "message_id": message_id,
        "author_role": "customer",
        "created_at": CREATED,
        "channel": "dm",
    }
    return {**item, **changes}


def deliveries_counted(metrics: Metrics) -> float:
    """Every webhook delivery counted so far, whatever its platform and outcome."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "replywatch_webhook_deliveries"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@dataclass
class Intake:
    """The three hooks on one store, served by the monitor's HTTP server."""

    port: int
    metrics: Metrics
    engine: Any

    def count(self, route: str, outcome: str) -> float:
        """Counted deliveries."""
        labels = {"route": route, "outcome": outcome}
        value = self.metrics.registry.get_sample_value(
            "replywatch_webhook_deliveries_total", labels
        )
        return value or 0.0

    def total(self) -> float:
        """Every counted delivery, whatever its platform and outcome."""
        return deliveries_counted(self.metrics)

    def stored(self) -> list[tuple[str, str | None]]:
        """(message id, text) of every stored event."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(EVENTS.c.message_id, EVENTS.c.text_excerpt))
            return sorted((m, t) for m, t in rows)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Two event tokens (every push account; the polled shop only), three accounts."""
    monkeypatch.setenv("RW_EVERY", EVERY_PUSH)
    monkeypatch.setenv("RW_SHOP", SHOP_ONLY)
    (tmp_path / "replywatch.toml").write_text(CONFIG)
    return load_config(tmp_path / "replywatch.toml")


@pytest.fixture
async def intake(config: Config, sqlite_url: str) -> AsyncIterator[Intake]:
    """The hooks as ``replywatch run`` builds them, on a real store."""
    engine = open_engine(sqlite_url)
    ingestor = Ingestor(engine, AccountDirectory(config), keep_text=True)
    metrics = Metrics()

    async def store(events: Sequence[Event]) -> int:
        return ingestor.ingest(list(events)).stored

    async def remember(_account: str, _owners: Any) -> None:
        return None

    tokens = [
        EventToken(secret, None if accounts is None else frozenset(accounts))
        for secret, accounts in config.resolve_event_tokens()
    ]
    events = EventsHook(EVERY_PUSH, config, store, metrics, tokens=tokens, body_timeout=0.2)
    meta = MetaWebhook(APP_SECRET, "v", {("facebook", "100"): "shop"}, store, metrics)
    telegram = TelegramWebhook(TG_SECRET, {"shop-tg": {}}, {}, store, remember, metrics)
    for platform in ("events", "meta", "telegram"):
        metrics.prepare_webhooks(platform)
    hooks = events.routes() + meta.routes() + telegram.routes()
    app = build_app(Metrics().registry, lambda: (True, {}), hooks, metrics)
    runner, _guard = await start_server(app, "127.0.0.1", 0, metrics=metrics)
    yield Intake(int(runner.addresses[0][1]), metrics, engine)
    await runner.cleanup()
    engine.dispose()


async def send(port: int, head: bytes, body: bytes = b"", *, declared: int | None = None) -> Any:
    """POST raw bytes; the status and the body of the answer."""
    length = len(body) if declared is None else declared
    data = head + b"Content-Length: " + str(length).encode() + b"\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data + body)
        await writer.drain()
        async with asyncio.timeout(BOUND):
            head = await reader.readuntil(b"\r\n\r\n")
            sizes = [line for line in head.lower().split(b"\r\n") if b"content-length:" in line]
            answer = await reader.readexactly(int(sizes[0].split(b":")[1]))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(head.split(b" ", 2)[1]), answer


def post(path: str, *headers: bytes) -> bytes:
    """A request line and headers (each ``b"Name: value"``)."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: t", *headers]
    return b"\r\n".join(lines) + b"\r\n"


def bearer(token: str) -> bytes:
    """The Authorization header."""
    return b"Authorization: Bearer " + token.encode()


def signed(body: bytes) -> bytes:
    """The Meta signature header over ``body``."""
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return b"X-Hub-Signature-256: sha256=" + digest.encode()


def meta_delivery(*mids: str) -> bytes:
    """A Messenger delivery for Page 100 with one customer message per mid."""
    messaging = [
        {
            "sender": {"id": "7"},
            "recipient": {"id": "100"},
            "timestamp": MS,
            "message": {"mid": mid, "text": "hi"},
        }
        for mid in mids
    ]
    document = {"object": "page", "entry": [{"id": "100", "time": MS, "messaging": messaging}]}
    return json.dumps(document).encode()  # a lone surrogate becomes the escape "\ud83d"


SIGNATURE = b"X-Hub-Signature-256: sha256="
TELEGRAM = SECRET_HEADER.encode() + b": "


@pytest.mark.parametrize(
    ("head", "platform", "status"),
    [
        (post("/hooks/meta", SIGNATURE + b"\xc3\xa9"), "meta", 403),
        (post("/hooks/meta", SIGNATURE + b"\xff\xfe"), "meta", 403),
        (post("/hooks/events", b"Authorization: Bearer \xff"), "events", 401),
        (post("/hooks/events", b"Authorization: Bearer \xc3\xa9\xe2\x82\xac"), "events", 401),
        (post("/hooks/telegram/shop-tg", TELEGRAM + b"\xff"), "telegram", 403),
        (post("/hooks/telegram/shop-tg", TELEGRAM + b"\xc3\xa9"), "telegram", 403),
    ],
)
async def test_header_bytes_no_client_sends_are_refused_not_500(
    intake: Intake, head: bytes, platform: str, status: int
) -> None:
    """A non-ASCII signature, a 0xFF token byte, UTF-8 in a secret: 4xx, counted."""
    answer, _body = await send(intake.port, head, b"{}")
    assert answer == status
    assert intake.count(platform, "bad_signature") == 1 and intake.total() == 1


@pytest.mark.parametrize(
    ("coding", "body", "status", "outcome"),
    [
        (b"gzip", b"this is not gzip", 400, "malformed"),
        (b"deflate", b"\x00\x01 nor deflate", 400, "malformed"),
        (b"br", b"\x0b\x02\x80{}\x03", 415, "malformed"),
        (b"gzip, gzip", b"[]", 415, "malformed"),
        (b"\xff", b"[]", 415, "malformed"),
        (b"GZIP", gzip.compress(json.dumps([event("m1")]).encode()), 200, "accepted"),
    ],
)
async def test_content_encodings(
    intake: Intake, coding: bytes, body: bytes, status: int, outcome: str
) -> None:
    """A broken or unknown Content-Encoding is 4xx with a reason; real gzip is read."""
    head = post("/hooks/events", bearer(EVERY_PUSH), b"Content-Encoding: " + coding)
    answer, text = await send(intake.port, head, body)
    assert answer == status, text
    assert intake.count("events", outcome) == 1 and intake.total() == 1
    assert (status == 200) == (intake.stored() == [("m1", None)])


async def test_a_broken_encoding_before_the_signature_is_malformed(intake: Intake) -> None:
    """Unauthenticated junk that cannot even be decoded: 400, never 500."""
    answer, _text = await send(
        intake.port, post("/hooks/meta", b"Content-Encoding: gzip"), b"\x1f\x8b junk"
    )
    assert answer == 400 and intake.count("meta", "malformed") == 1


def deep(depth: int) -> bytes:
    """JSON nested ``depth`` arrays deep."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", ["/hooks/events", "/hooks/meta", "/hooks/telegram/shop-tg"])
async def test_deep_nesting_is_400_not_a_recursion_error(intake: Intake, path: str) -> None:
    """100,000 nested arrays from an authenticated sender: 400 "nested too deeply"."""
    body = deep(100_000)
    auth = {
        "/hooks/events": bearer(EVERY_PUSH),
        "/hooks/meta": signed(body),
        "/hooks/telegram/shop-tg": SECRET_HEADER.encode() + b": " + TG_SECRET.encode(),
    }[path]
    answer, text = await send(intake.port, post(path, auth), body)
    assert answer == 400 and b"nested too deeply" in text
    platform = path.split("/")[2]
    assert intake.count(platform, "malformed") == 1


async def test_a_body_that_never_arrives_is_408(intake: Intake) -> None:
    """Headers, then a tenth of the declared body and silence: 408 at the body timeout."""
    answer, text = await send(
        intake.port, post("/hooks/events", bearer(EVERY_PUSH)), b"[" + b" " * 9, declared=100
    )
    assert answer == 408 and b"not received within" in text
    assert intake.count("events", "timeout") == 1


async def test_a_lone_surrogate_rejects_only_its_event(intake: Intake) -> None:
    """Half an emoji in one id: that event is refused with a reason, the others are stored."""
    items = [
        event("m1"),
        event("m2\ud83d"),
        event("m3", text="cut emoji \ud83d here"),
        event("m4", thread_url="https://helpdesk.example/t/\udc00"),
        event("m5", thread_id="t\x07"),
    ]
    body = json.dumps({"events": items}).encode()
    answer, text = await send(intake.port, post("/hooks/events", bearer(EVERY_PUSH)), body)
    assert answer == 200
    results = json.loads(text)["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
    ]
    assert "surrogate" in results[1]["error"] and "message_id" in results[1]["error"]
    assert "thread_url" in results[3]["error"] and "control character" in results[4]["error"]
    assert intake.stored() == [("m1", None), ("m3", "cut emoji \ufffd here")]
    assert intake.count("events", "partial") == 1


async def test_a_lone_surrogate_in_a_meta_delivery_skips_only_that_message(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed delivery with one unstorable message id: 200, the other message stored."""
    body = meta_delivery("m_good", "m_bad\ud83d")
    answer, _text = await send(intake.port, post("/hooks/meta", signed(body)), body)
    assert answer == 200
    assert intake.stored() == [("m_good", None)]
    assert intake.count("meta", "partial") == 1
    rejected = intake.metrics.registry.get_sample_value(
        "replywatch_events_rejected_total", {"platform": "facebook"}
    )
    assert rejected == 1
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and r"\ud83d" in skipped[0].getMessage()
    again, _text = await send(intake.port, post("/hooks/meta", signed(body)), body)
    assert again == 200  # delivered again (as Meta would after a 503): still 200, never stuck


async def test_a_token_writes_only_its_accounts(intake: Intake) -> None:
    """The every-push token cannot write the polled shop; the shop token writes only it."""
    body = json.dumps([event("p1"), event("s1", account="shop")]).encode()
    answer, text = await send(intake.port, post("/hooks/events", bearer(EVERY_PUSH)), body)
    results = json.loads(text)["results"]
    assert answer == 200 and [r["status"] for r in results] == ["accepted", "rejected"]
    assert "may not write account 'shop'" in results[1]["error"]
    body = json.dumps([event("p2"), event("s2", account="shop")]).encode()
    answer, text = await send(intake.port, post("/hooks/events", bearer(SHOP_ONLY)), body)
    results = json.loads(text)["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert "may not write account 'helpdesk'" in results[0]["error"]
    assert [m for m, _t in intake.stored()] == ["p1", "s2"]


async def test_unknown_telegram_accounts_cannot_be_told_from_a_wrong_secret(
    intake: Intake,
) -> None:
    """Unknown account, wrong secret, or both: the same status and the same body."""
    secret = SECRET_HEADER.encode() + b": "
    answers = [
        await send(intake.port, post(path, secret + value), b"{}")
        for path, value in (
            ("/hooks/telegram/nobody", b"wrong"),
            ("/hooks/telegram/shop-tg", b"wrong"),
            ("/hooks/telegram/nobody", TG_SECRET.encode()),
        )
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 403


def test_token_accounts_must_exist_and_tokens_are_references(tmp_path: Path) -> None:
    """An unknown account in a token's list, or a literal secret: refused, never echoed."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[[webhooks.events.tokens]]\nsecret = "env:A"\naccounts = ["ghost"]\n'
        '[[webhooks.events.tokens]]\nsecret = "plain-TEST-secret"\n'
        '[[webhooks.meta.tokens]]\nsecret = "env:B"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "webhooks.events.tokens.1.secret" in text and "plain-TEST-secret" not in text
    path.write_text('[[webhooks.events.tokens]]\nsecret = "env:A"\naccounts = ["ghost"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "webhooks.events.tokens[0].accounts" in str(caught.value)
    assert "unknown account 'ghost'" in str(caught.value)


def test_scoped_tokens_alone_are_enough_and_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without secrets.token the tokens list is the whole config; a missing env is reported."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[[webhooks.events.tokens]]\nsecret = "env:RW_SCOPED"\n'
        '[[accounts]]\nname = "helpdesk"\nplatform = "whatsapp"\nsource = "push"\n'
    )
    monkeypatch.delenv("RW_SCOPED", raising=False)
    config = load_config(path)
    problems = [p.field for p in config.secret_problems()]
    assert problems == ["webhooks.events.tokens[0].secret"]
    monkeypatch.setenv("RW_SCOPED", SHOP_ONLY)
    assert config.resolve_event_tokens() == [(SHOP_ONLY, None)]
