"""Recognisable secrets go through every path and come out nowhere.

A running monitor gets a valid and an expired page token, Meta webhook secrets, the events
token, and alert receivers whose URL and bot token are secrets and whose servers are down (so
their errors are stored). After polls, webhooks, an alert round and failed deliveries, no secret
may appear in /metrics, /healthz, any table of the store, the weekly summary or the logs (the
suite-wide log check in tests/conftest.py covers those).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import inspect, text

from connectors.fakes.meta import FakeMeta
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from monitor.summary.data import IsoWeek, summarise_week
from monitor.summary.locale import get_locale
from monitor.summary.render import render_html, render_markdown

SECRETS = {
    "GOOD_PAGE": "EAA-LEAK-TEST-SECRET-PAGE-1",
    "EXPIRED_PAGE": "EAA-LEAK-TEST-SECRET-EXPIRED-2",
    "APP_SECRET": "LEAK-TEST-SECRET-APP-3",
    "VERIFY": "LEAK-TEST-SECRET-VERIFY-4",
    "EVENTS": "LEAK-TEST-SECRET-EVENTS-5",
    "SLACK_URL": "http://127.0.0.1:9/services/LEAK-TEST-SECRET-SLACK-6",
    "BOT": "7000000001:LEAK-TEST-SECRET-BOT-7",
}


@pytest.fixture
async def meta() -> AsyncIterator[tuple[FakeMeta, str]]:
    fake = FakeMeta()
    fake.add_page("100", SECRETS["GOOD_PAGE"])
    fake.add_page("200", "EAA-the-current-token-of-page-200")  # the configured one expired
    fake.customer_message("100", "c1", datetime.now(UTC) - timedelta(minutes=1))
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


def config_text(url: str) -> str:
    return f"""
[webhooks.meta.secrets]
app_secret = "env:LEAK_APP_SECRET"
verify_token = "env:LEAK_VERIFY"

[webhooks.events.secrets]
token = "env:LEAK_EVENTS"

[alerts]
[[alerts.receivers]]
name = "chat"
kind = "slack"
secrets = {{ url = "env:LEAK_SLACK_URL" }}
[[alerts.receivers]]
name = "bot"
kind = "telegram"
chat_id = "-100"
api_url = "http://127.0.0.1:9"
secrets = {{ bot_token = "env:LEAK_BOT" }}

[[accounts]]
name = "good"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "env:LEAK_GOOD_PAGE" }}

[[accounts]]
name = "expired"
platform = "facebook"
ids = {{ page_id = "200" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "env:LEAK_EXPIRED_PAGE" }}
"""


async def test_no_secret_in_metrics_health_store_or_summary(
    tmp_path: Path, meta: tuple[FakeMeta, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secret is used (and two of them fail); none shows up anywhere a person reads."""
    fake, url = meta
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"LEAK_{name}", value)
    (tmp_path / "replywatch.toml").write_text(config_text(url))
    context = AppContext.open(tmp_path / "replywatch.toml", f"sqlite:///{tmp_path / 'r.db'}")
    later = datetime.now(UTC) + timedelta(minutes=20)  # the customer has waited 20 minutes
    runtime = Runtime(context, port=0, first_poll_spread=0, clock=lambda: later)
    await runtime.start()
    seen: list[str] = []
    try:
        for name in ("good", "expired"):
            await runtime.polling.poll(name)
        first = next(iter(fake.owners["100"].conversations.values()))[0]
        body = fake.message_webhook("100", first.mid)
        signature = (
            "sha256=" + hmac.new(SECRETS["APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
        )
        event = {
            "platform": "facebook",
            "account": "good",
            "thread_id": "t9",
            "message_id": "x9",
            "author_role": "customer",
            "created_at": "2026-11-20T09:00:00Z",
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{runtime.address}/hooks/meta",
                data=body,
                headers={"X-Hub-Signature-256": signature},
            ) as response:
                assert response.status == 200
            async with session.post(
                f"{runtime.address}/hooks/events",
                json=[event],
                headers={"Authorization": f"Bearer {SECRETS['EVENTS']}"},
            ) as r:
                assert r.status == 200
            await runtime.refresh.run()  # decides outcomes, raises alerts, fails deliveries
            for path in ("/metrics", "/healthz"):
                async with session.get(runtime.address + path) as response:
                    seen.append(await response.text())
        health = json.loads(seen[1])
        assert health["accounts"]["expired"]["state"] == "auth_failed"
        with context.engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
                seen.append(f"{table}: {rows!r}")
            outbox = connection.execute(text("SELECT last_error FROM alert_outbox")).fetchall()
            year, number, _ = later.isocalendar()
            week = summarise_week(connection, context.accounts, IsoWeek(year, number, "UTC"), later)
        assert outbox and all(row[0] for row in outbox)  # the deliveries failed, with reasons
        seen.append(render_markdown(week, get_locale("en")))
        seen.append(render_html(week, get_locale("en")).html)
    finally:
        await runtime.stop()
        context.close()
    everything = "\n".join(seen)
    assert "replywatch_polls_total" in everything and "alert_outbox" in everything
    for name, value in SECRETS.items():
        secret = value.rsplit("/", 1)[-1]  # the secret part of the Slack URL
        assert secret not in everything, f"{name} leaked"
