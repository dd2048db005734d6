"""POST /hooks/meta over HTTP: 403/413/400/503, never a 500, counted, stored once with polls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from connectors.base import ConnectorSettings, Event
from connectors.facebook import FacebookConnector
from connectors.fakes.meta import FakeMeta
from monitor.config.loading import Config
from monitor.export.metrics import Metrics
from monitor.http.webhooks import MetaWebhook
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS, WAITS

SECRET = "hook-secret-for-tests"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Intake:
    """A webhook endpoint on a real SQLite store, with switches for store failures."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.ingestor = Ingestor(self.engine, AccountDirectory(Config.empty()))
        self.metrics = Metrics()
        self.metrics.prepare_webhooks("meta")
        self.broken = False
        self.hook = MetaWebhook(
            SECRET,
            "verify-me",
            {("facebook", "100"): "shop"},
            self.store,
            self.metrics,
            max_body_bytes=4096,
        )

    async def store(self, events: Sequence[Event]) -> int:
        if self.broken:
            raise OSError("database is locked")
        return self.ingestor.ingest(list(events)).stored

    def count(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "replywatch_webhook_deliveries_total", {"route": "meta", "outcome": outcome}
        )
        return value or 0.0

    def stored(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(EVENTS)).scalar_one())


@pytest.fixture
async def intake(
    sqlite_url: str,
) -> AsyncIterator[tuple[Intake, TestClient[web.Request, web.Application]]]:
    """The intake and an HTTP client for it."""
    hook = Intake(sqlite_url)
    app = web.Application()
    app.add_routes(hook.hook.routes())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield hook, client
    await client.close()
    hook.engine.dispose()


@pytest.fixture
def fake() -> FakeMeta:
    """A fake Page 100 with one customer message and the Page's reply."""
    meta = FakeMeta()
    meta.add_page("100", "page-token")
    return meta


async def test_handshake(intake: tuple[Intake, TestClient]) -> None:  # type: ignore[type-arg]
    """The challenge comes back for the right token, 403 otherwise."""
    _hook, client = intake
    ok = await client.get(
        "/hooks/meta",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status == 200 and await ok.text() == "1158201444"
    bad = await client.get(
        "/hooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    )
    assert bad.status == 403


async def test_signed_delivery_is_stored_and_counted(
    intake: tuple[Intake, TestClient],
    fake: FakeMeta,  # type: ignore[type-arg]
) -> None:
    """A correctly signed message is stored; the same delivery again adds nothing."""
    hook, client = intake
    mid = fake.customer_message("100", "7", NOW)
    body, headers = fake.signed_webhook(SECRET, fake.message_webhook("100", mid))
    for _ in range(2):
        response = await client.post("/hooks/meta", data=body, headers=headers)
        assert response.status == 200
    assert hook.stored() == 1
    assert hook.count("accepted") == 2


async def test_bad_signatures_are_refused_and_store_nothing(
    intake: tuple[Intake, TestClient],
    fake: FakeMeta,  # type: ignore[type-arg]
) -> None:
    """Unsigned, wrongly signed and tampered bodies get 403 and are never stored."""
    hook, client = intake
    body = fake.message_webhook("100", fake.customer_message("100", "7", NOW))
    _same, wrong = fake.signed_webhook("another-secret", body)
    _same, right = fake.signed_webhook(SECRET, body)
    cases = [
        ({}, body),
        (wrong, body),
        (right, body + b" "),
        ({"X-Hub-Signature-256": "sha256=zz"}, body),
    ]
    for headers, data in cases:
        response = await client.post("/hooks/meta", data=data, headers=headers)
        assert response.status == 403
    assert hook.stored() == 0 and hook.count("bad_signature") == len(cases)


async def test_oversized_and_malformed_bodies(
    intake: tuple[Intake, TestClient],  # type: ignore[type-arg]
) -> None:
    """Over the limit is 413 (declared or streamed); signed garbage is 400; never 500."""
    hook, client = intake
    big = b"{" + b" " * 5000 + b"}"
    _b, headers = FakeMeta.signed_webhook(SECRET, big)
    assert (await client.post("/hooks/meta", data=big, headers=headers)).status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = await client.post("/hooks/meta", data=chunks(), headers=headers)
    assert streamed.status == 413
    for garbage in (b"not json", b'{"object": "page"}', b"[]", b"\xff\xfe"):
        _b, headers = FakeMeta.signed_webhook(SECRET, garbage)
        response = await client.post("/hooks/meta", data=garbage, headers=headers)
        assert response.status == 400
        assert garbage.decode(errors="replace") not in await response.text()
    assert hook.count("too_large") == 2 and hook.count("malformed") == 4


async def test_store_failure_asks_meta_to_deliver_again(
    intake: tuple[Intake, TestClient],
    fake: FakeMeta,  # type: ignore[type-arg]
) -> None:
    """When the store cannot take the events the answer is 503, so nothing is lost."""
    hook, client = intake
    hook.broken = True
    body, headers = fake.signed_webhook(
        SECRET, fake.message_webhook("100", fake.customer_message("100", "7", NOW))
    )
    response = await client.post("/hooks/meta", data=body, headers=headers)
    assert response.status == 503 and hook.count("error") == 1
    hook.broken = False
    assert (await client.post("/hooks/meta", data=body, headers=headers)).status == 200
    assert hook.stored() == 1


async def test_webhook_and_poll_of_the_same_messages_count_once(
    intake: tuple[Intake, TestClient],
    fake: FakeMeta,  # type: ignore[type-arg]
) -> None:
    """A DM and its echo arrive by webhook and by polling: two events, one wait."""
    hook, client = intake
    question = fake.customer_message("100", "7", NOW - timedelta(minutes=9))
    answer = fake.business_reply("100", "7", NOW - timedelta(minutes=2))
    comment = fake.customer_comment("100", "8", NOW - timedelta(minutes=5))
    for body in (
        fake.message_webhook("100", question),
        fake.message_webhook("100", answer),
        fake.comment_webhook("100", comment),
    ):
        signed, headers = fake.signed_webhook(SECRET, body)
        assert (await client.post("/hooks/meta", data=signed, headers=headers)).status == 200
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    async with aiohttp.ClientSession() as session:
        settings = ConnectorSettings(
            "shop",
            {"page_id": "100"},
            {"access_token": "page-token"},
            ("dm", "comment"),
            NOW - timedelta(days=1),
            base_url=str(server.make_url("/")).rstrip("/"),
        )
        polled = await FacebookConnector(settings, session).fetch_since({})
    await server.close()
    before = hook.stored()
    result = hook.ingestor.ingest(list(polled.events))
    assert before == 3 and result.stored == 0 and hook.stored() == 3
    with hook.engine.connect() as connection:
        waits = connection.execute(select(WAITS.c.thread_id, WAITS.c.closed_by)).all()
    assert sorted(waits) == sorted([("dm/7", answer), (f"{comment}/8", None)])
