"""POST /hooks/events: bearer token, strict per-event validation, per-event results, no 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from connectors.base import Event
from monitor.config.loading import load_config
from monitor.export.metrics import Metrics
from monitor.http.events_hook import EventsHook
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS

TOKEN = "rw-events-TEST-token-0042"
CONFIG = """
[webhooks.events]
secrets = { token = "env:RW_EVENTS_TOKEN" }

[[accounts]]
name = "helpdesk"
platform = "whatsapp"
source = "push"
"""


def good(message_id: str = "m1", **changes: Any) -> dict[str, Any]:
    event = {
        "platform": "whatsapp",
        "account": "helpdesk",
        "thread_id": "+4915100000",
        "message_id": message_id,
        "author_role": "customer",
        "created_at": "2026-11-20T09:00:00Z",
        "channel": "dm",
    }
    event.update(changes)
    return event


class Hook:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "replywatch.toml").write_text(CONFIG)
        self.config = load_config(tmp_path / "replywatch.toml")
        self.engine = open_engine(f"sqlite:///{tmp_path / 'h.db'}")
        self.ingestor = Ingestor(self.engine, AccountDirectory(self.config))
        self.metrics = Metrics()
        self.metrics.prepare_webhooks("events")
        self.broken = False
        self.hook = EventsHook(
            TOKEN, self.config, self.store, self.metrics, max_body_bytes=16384, max_events=50
        )

    async def store(self, events: Sequence[Event]) -> int:
        if self.broken:
            raise OSError("database is locked")
        return self.ingestor.ingest(list(events)).stored

    def stored(self) -> list[tuple[str, str | None]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(EVENTS.c.message_id, EVENTS.c.thread_url))
            return sorted((m, u) for m, u in rows)

    def count(self, outcome: str) -> float:
        labels = {"route": "events", "outcome": outcome}
        return (
            self.metrics.registry.get_sample_value("replywatch_webhook_deliveries_total", labels)
            or 0.0
        )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Hook]]:
    hook = Hook(tmp_path)
    app = web.Application()
    app.add_routes(hook.hook.routes())
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client, hook
    hook.engine.dispose()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_events_are_stored_and_each_gets_a_result(
    client: tuple[TestClient[Any, Any], Hook],
) -> None:
    """Two good events and three bad ones: the good are stored, the bad named one by one."""
    test_client, hook = client
    body = {
        "events": [
            good("m1", thread_url="https://wa.example/c/1"),
            good("m2", author_role="business", created_at="2026-11-20T09:05:00Z"),
            good("m3", author_role="agent"),
            good("m4", account="someone-else"),
            good("m5", rating=9, extra="x"),
        ]
    }
    response = await test_client.post("/hooks/events", json=body, headers=auth())
    assert response.status == 200
    answer = await response.json()
    assert (answer["accepted"], answer["stored"], answer["rejected"]) == (2, 2, 3)
    results = {r["index"]: r for r in answer["results"]}
    assert results[0]["status"] == results[1]["status"] == "accepted"
    assert "author_role 'agent' is not one of" in results[2]["error"]
    assert "account 'someone-else' is not configured" in results[3]["error"]
    assert "unknown field(s) extra" in results[4]["error"]
    assert hook.stored() == [("m1", "https://wa.example/c/1"), ("m2", None)]
    again = await test_client.post("/hooks/events", json=[good("m1")], headers=auth())
    assert (await again.json())["stored"] == 0  # the same message twice counts once
    # The first request had refused events beside the stored ones: "partial", not "accepted".
    assert hook.count("partial") == 1 and hook.count("accepted") == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "words"),
    [
        ({}, [good()], 401, "bearer token"),
        (auth("wrong"), [good()], 401, "bearer token"),
        (auth(), b"{not json", 400, "not JSON"),
        (auth(), {"events": "nope"}, 400, "expected"),
        (auth(), [good(f"m{i}") for i in range(51)], 413, "more than 50 events"),
        (auth(), b"[" + b" " * 20000 + b"]", 413, "body over 16384 bytes"),
    ],
)
async def test_refusals_are_clear_and_store_nothing(
    client: tuple[TestClient[Any, Any], Hook],
    headers: dict[str, str],
    body: Any,
    status: int,
    words: str,
) -> None:
    """Wrong token, not JSON, wrong shape, too many, too big: a status and a reason."""
    test_client, hook = client
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await test_client.post(
        "/hooks/events", data=data, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status == status
    assert words in (await response.json())["error"]
    assert hook.stored() == []
    assert TOKEN not in await response.text()


async def test_a_store_failure_is_503_so_the_sender_retries(
    client: tuple[TestClient[Any, Any], Hook],
) -> None:
    """Nothing is half-stored; the sender is told to send again."""
    test_client, hook = client
    hook.broken = True
    response = await test_client.post("/hooks/events", json=[good()], headers=auth())
    assert response.status == 503
    hook.broken = False
    response = await test_client.post("/hooks/events", json=[good()], headers=auth())
    assert (await response.json())["stored"] == 1


def test_the_config_needs_the_token(tmp_path: Path) -> None:
    """[webhooks.events] without secrets.token, or an unknown webhook, is refused."""
    from monitor.config.loading import ConfigError

    path = tmp_path / "c.toml"
    path.write_text("[webhooks.events]\n[webhooks.whatsup]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "webhooks.events.secrets.token" in text and "webhooks.whatsup" in text
