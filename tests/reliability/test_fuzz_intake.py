"""Fuzzing every way events come in: webhooks, the events endpoint, the CSV import.

Each parser gets arbitrary JSON (and arbitrary bytes) and may only answer with its own
"bad input" error, never anything else; the HTTP endpoints never answer 500 and never store an
event from an unsigned or wrongly signed request. CI runs a few thousand cases per target;
``make fuzz`` runs 100,000 (``REPLYWATCH_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Event
from connectors.meta_webhook import WebhookPayloadError, parse_meta_webhook
from connectors.telegram_webhook import TelegramPayloadError, parse_update
from monitor.config.loading import Config, load_config
from monitor.export.metrics import Metrics
from monitor.http.events_hook import EventsHook, parse_event
from monitor.http.webhooks import MetaWebhook
from monitor.intake.csv_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RowParser

EXAMPLES = int(os.environ.get("REPLYWATCH_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
APP_SECRET = "fuzz-app-secret"
TOKEN = "fuzz-events-TEST-token"

# JSON values, biased towards the shapes the parsers look for.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "page",
            "instagram",
            "messaging",
            "changes",
            "feed",
            "comment",
            "customer",
            "business",
            "2026-11-20T09:00:00Z",
            "100",
            "m_1",
            "dm",
            "review",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.sampled_from(
                [
                    "object",
                    "entry",
                    "id",
                    "time",
                    "messaging",
                    "changes",
                    "sender",
                    "recipient",
                    "timestamp",
                    "message",
                    "mid",
                    "is_echo",
                    "field",
                    "value",
                    "item",
                    "verb",
                    "from",
                    "comment_id",
                    "post_id",
                    "parent_id",
                    "created_time",
                    "update_id",
                    "business_message",
                    "business_connection",
                    "chat",
                    "date",
                    "message_id",
                    "user",
                    "text",
                    "is_from_offline",
                    "edit_date",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=25,
)
ACCOUNTS = {("facebook", "100"): "shop", ("instagram", "178"): "gram"}


@FUZZ
@given(json_values)
def test_meta_parser_only_refuses_with_its_own_error(document: Any) -> None:
    """Any JSON: events or WebhookPayloadError, nothing else."""
    with contextlib.suppress(WebhookPayloadError):
        parse_meta_webhook(json.dumps(document).encode(), ACCOUNTS)


@FUZZ
@given(st.binary(max_size=300))
def test_meta_parser_survives_any_bytes(body: bytes) -> None:
    """Not even JSON: WebhookPayloadError."""
    with contextlib.suppress(WebhookPayloadError):
        parse_meta_webhook(body, ACCOUNTS)


@FUZZ
@given(json_values)
def test_telegram_parser_only_refuses_with_its_own_error(document: Any) -> None:
    """Any JSON: events or TelegramPayloadError."""
    with contextlib.suppress(TelegramPayloadError):
        parse_update(json.dumps(document).encode(), "shop-tg", {"BC1": "51"})


CONFIG_TEXT = """
[[accounts]]
name = "helpdesk"
platform = "whatsapp"
source = "push"
"""


@pytest.fixture(scope="module")
def push_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("fuzz") / "replywatch.toml"
    path.write_text(CONFIG_TEXT)
    return load_config(path)


event_like = st.dictionaries(
    st.sampled_from([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "thread_url", "other"]),
    st.one_of(
        scalars,
        st.sampled_from(
            [
                "helpdesk",
                "whatsapp",
                "customer",
                "+49151",
                "5",
                "https://x.example/t",
                "javascript:alert(1)",
            ]
        ),
    ),
    max_size=10,
)


@FUZZ
@given(st.one_of(event_like, json_values))
def test_events_parser_only_refuses_with_value_error(push_config: Config, item: Any) -> None:
    """Any JSON item: an Event or a ValueError naming the problem."""
    parser = RowParser([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], push_config, None)
    try:
        event = parse_event(item, parser, push_config)
    except ValueError as err:
        assert str(err)
        return
    assert isinstance(event, Event) and event.account == "helpdesk"
    assert event.thread_url is None or event.thread_url.startswith(("http://", "https://"))


@FUZZ
@given(st.lists(st.text(max_size=40), min_size=9, max_size=9))
def test_csv_rows_only_refuse_with_value_error(push_config: Config, row: list[str]) -> None:
    """Any row of text: an Event or a ValueError."""
    parser = RowParser([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], push_config, None)
    try:
        parser(row)
    except ValueError as err:
        assert str(err)


class Intake:
    """Both HTTP endpoints over one recording store."""

    def __init__(self, config: Config) -> None:
        self.stored: list[Event] = []
        metrics = Metrics()
        self.meta = MetaWebhook(APP_SECRET, "v", ACCOUNTS, self.store, metrics, 64 * 1024)
        self.events = EventsHook(TOKEN, config, self.store, metrics, 64 * 1024)

    async def store(self, events: Sequence[Event]) -> int:
        self.stored.extend(events)
        return len(events)


@pytest.fixture
async def client(push_config: Config) -> AsyncIterator[tuple[TestClient[Any, Any], Intake]]:
    intake = Intake(push_config)
    app = web.Application()
    app.add_routes(intake.meta.routes() + intake.events.routes())
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client, intake


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


async def test_the_endpoints_never_answer_500_and_store_nothing_unsigned(
    client: tuple[TestClient[Any, Any], Intake],
) -> None:
    """Random bodies, signed, unsigned and wrongly signed: 2xx/4xx only; unsigned stores none."""
    test_client, intake = client
    rng = random.Random(8)
    rounds = max(200, EXAMPLES // 20)
    for index in range(rounds):
        document = _random_json(rng, 3) if index % 2 else _meta_like(rng)
        body = json.dumps(document).encode() if rng.random() < 0.9 else rng.randbytes(64)
        before = len(intake.stored)
        for headers, signed in (
            ({}, False),
            ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, False),
            ({"X-Hub-Signature-256": signature(body)}, True),
        ):
            response = await test_client.post("/hooks/meta", data=body, headers=headers)
            assert response.status < 500, (response.status, body[:200])
            if not signed:
                assert response.status == 403 and len(intake.stored) == before
        response = await test_client.post(
            "/hooks/events",
            data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert response.status < 500
        wrong = await test_client.post(
            "/hooks/events", data=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status == 401


def _random_json(rng: random.Random, depth: int) -> Any:
    """Any JSON value, seeded (hypothesis draws only inside @given)."""
    kind = rng.randrange(8 if depth > 0 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, 1.5, "", "page", "100", "m_1"])
    if kind == 2:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind in (3, 4):
        return rng.randrange(-(10**12), 10**12)
    if kind == 5:
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ["object", "entry", "id", "messaging", "message", "mid", "sender", "events", "x"]
    return {rng.choice(keys): _random_json(rng, depth - 1) for _ in range(rng.randrange(5))}


def _meta_like(rng: random.Random) -> dict[str, Any]:
    """A delivery that is nearly right, with one part bent."""
    event: dict[str, Any] = {
        "sender": {"id": rng.choice(["1", "100", 5, None])},
        "recipient": {"id": rng.choice(["100", "1", [], "178"])},
        "timestamp": rng.choice([1763625600000, -1, "x", 10**20, None]),
        "message": rng.choice(
            [{"mid": "m_1"}, {"mid": 5}, {}, "m", None, {"mid": "m_2", "is_echo": True}]
        ),
    }
    return {
        "object": rng.choice(["page", "instagram", "user", 3]),
        "entry": [
            {
                "id": rng.choice(["100", "178", "999"]),
                "time": 1,
                "messaging": rng.choice([[event], event, None, []]),
            }
        ],
    }


def test_fuzz_budget_is_stated() -> None:
    """The number of cases per target is what the docs say (2,000 in CI, 100,000 with make fuzz)."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "REPLYWATCH_FUZZ_EXAMPLES=100000" in makefile
    assert EXAMPLES >= 2000


def test_absurd_times_are_bad_input_not_a_crash() -> None:
    """Found by `make fuzz`: a signed webhook with timestamp 10**20 ms answered 500."""
    meta = {
        "object": "page",
        "entry": [
            {
                "id": "100",
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": "5"},
                        "recipient": {"id": "100"},
                        "timestamp": 10**20,
                        "message": {"mid": "m_1"},
                    }
                ],
            }
        ],
    }
    with pytest.raises(WebhookPayloadError, match="timestamp"):
        parse_meta_webhook(json.dumps(meta).encode(), ACCOUNTS)
    update = {
        "update_id": 1,
        "business_message": {
            "message_id": 1,
            "date": 10**20,
            "chat": {"id": 5, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": "A"},
            "business_connection_id": "BC1",
        },
    }
    with pytest.raises(TelegramPayloadError):
        parse_update(json.dumps(update).encode(), "shop-tg", {"BC1": "51"})
