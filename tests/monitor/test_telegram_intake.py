"""POST /hooks/telegram/{account}: secret header, owners learned and kept, events stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from connectors.base import Event
from connectors.telegram_webhook import SECRET_HEADER
from monitor.config.loading import Config
from monitor.export.metrics import Metrics
from monitor.http.webhooks import TelegramWebhook
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
SECRET = "tg-secret-TEST_token-99"


class Intake:
    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.ingestor = Ingestor(self.engine, AccountDirectory(Config.empty()))
        self.metrics = Metrics()
        self.metrics.prepare_webhooks("telegram")
        self.remembered: list[dict[str, str]] = []
        self.hook = TelegramWebhook(
            SECRET, {"shop-tg": {}}, {}, self.store, self.remember, self.metrics
        )

    async def store(self, events: Sequence[Event]) -> int:
        return self.ingestor.ingest(list(events)).stored

    async def remember(self, _account: str, owners: Mapping[str, str]) -> None:
        self.remembered.append(dict(owners))

    def roles(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(EVENTS.c.author_role).order_by(EVENTS.c.created_at))
            return [row[0] for row in rows]


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[tuple[TestClient[Any, Any], Intake]]:
    intake = Intake(sqlite_url)
    app = web.Application()
    app.add_routes(intake.hook.routes())
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client, intake
    intake.engine.dispose()


async def post(
    test_client: TestClient[Any, Any],
    name: str,
    secret: str | None = SECRET,
    account: str = "shop-tg",
) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    body = (FIXTURES / name).read_bytes()
    response = await test_client.post(f"/hooks/telegram/{account}", data=body, headers=headers)
    return response.status


async def test_owner_learned_from_the_connection_then_roles_are_right(
    client: tuple[TestClient[Any, Any], Intake],
) -> None:
    """The connection names the owner; the customer's message and the owner's reply follow."""
    test_client, intake = client
    assert await post(test_client, "doc-business-connection.json") == 200
    assert intake.remembered == [{"DOC-EXAMPLE-CONNECTION-1": "5100000001"}]
    assert await post(test_client, "doc-business-message-customer.json") == 200
    assert await post(test_client, "doc-business-message-owner-reply.json") == 200
    assert await post(test_client, "doc-business-message-away.json") == 200
    assert sorted(intake.roles()) == ["automated", "business", "customer"]


@pytest.mark.parametrize(
    ("secret", "account", "status"),
    # An unknown account gets the wrong secret's answer: names cannot be found by trying.
    [(None, "shop-tg", 403), ("wrong", "shop-tg", 403), (SECRET, "nobody", 403)],
)
async def test_refused_deliveries_store_nothing(
    client: tuple[TestClient[Any, Any], Intake], secret: str | None, account: str, status: int
) -> None:
    """Without the secret, or for an unknown account, nothing is stored."""
    test_client, intake = client
    assert await post(test_client, "doc-business-message-customer.json", secret, account) == status
    assert intake.roles() == []


async def test_a_malformed_delivery_is_400(client: tuple[TestClient[Any, Any], Intake]) -> None:
    """Not JSON: 400, counted, nothing stored."""
    test_client, intake = client
    response = await test_client.post(
        "/hooks/telegram/shop-tg", data=b"{nope", headers={SECRET_HEADER: SECRET}
    )
    assert response.status == 400
    labels = {"route": "telegram", "outcome": "malformed"}
    assert (
        intake.metrics.registry.get_sample_value("replywatch_webhook_deliveries_total", labels) == 1
    )
