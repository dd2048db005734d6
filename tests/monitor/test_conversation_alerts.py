"""Per-conversation alerts: levels, the outbox (retry, order, no repeats) and every receiver."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from connectors.base import Event
from monitor.config.loading import Config
from monitor.notify.alert_cycle import AlertCycle
from monitor.notify.outbox import OUTBOX
from monitor.notify.receivers import (
    AlertmanagerReceiver,
    AlertReceiver,
    EmailReceiver,
    SlackReceiver,
    TelegramReceiver,
    WebhookReceiver,
)
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BOT_TOKEN = "123456:TEST-bot-token-must-never-leak"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


@dataclass
class Receiver:
    """A local HTTP endpoint that records what it gets and can be made to fail."""

    bodies: list[tuple[str, Any]] = field(default_factory=list)
    failing: bool = False

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            if self.failing:
                return web.Response(status=503)
            self.bodies.append((request.path, await request.json()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        return app


def event(message_id: str, role: str, minute: float, thread: str = "t1") -> Event:
    return Event(
        "facebook",
        "shop",
        "dm",
        thread,
        message_id,
        role,  # type: ignore[arg-type]
        T0 + timedelta(minutes=minute),
        thread_url=f"https://fb.example/{thread}",
    )


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = open_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recorder = Receiver()
    server = TestServer(recorder.app(), host="127.0.0.1")
    await server.start_server()
    yield recorder, str(server.make_url("")).rstrip("/")
    await server.close()


def cycle_for(engine: Engine, receivers: list[AlertReceiver], clock: Clock) -> AlertCycle:
    return AlertCycle(engine, AccountDirectory(Config.empty()), receivers, clock)


async def run(cycle: AlertCycle) -> None:
    async with aiohttp.ClientSession() as session:
        await cycle.run(session, asyncio.Lock())


def levels(recorder: Receiver) -> list[tuple[str, str]]:
    return [(body["conversation"], body["level"]) for _path, body in recorder.bodies]


async def test_a_waiting_customer_warns_breaches_escalates_and_resolves_once_each(
    engine: Engine, receiver: tuple[Receiver, str]
) -> None:
    """10 min warning, 15 min breach, 1 h escalation, resolved on the answer; no repeats."""
    recorder, url = receiver
    clock = Clock()
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
    cycle = cycle_for(engine, [WebhookReceiver("hook", url + "/hook")], clock)
    for minute in (5, 9.9):
        clock.at(minute)
        await run(cycle)
    assert recorder.bodies == []
    for minute in (10, 12, 15, 20, 60, 61):
        clock.at(minute)
        await run(cycle)
    assert levels(recorder) == [("t1", "warning"), ("t1", "breach"), ("t1", "escalated")]
    first = recorder.bodies[0][1]
    assert first["account"] == "shop" and first["platform"] == "facebook"
    assert first["link"] == "https://fb.example/t1" and first["status"] == "firing"
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("r1", "business", 62)])
    for minute in (63, 64):
        clock.at(minute)
        await run(cycle)
    assert levels(recorder)[-1] == ("t1", "resolved")
    assert recorder.bodies[-1][1]["status"] == "resolved"
    assert len(recorder.bodies) == 4


async def test_a_down_receiver_gets_everything_in_order_after_backoff_and_restart(
    engine: Engine, receiver: tuple[Receiver, str]
) -> None:
    """Failures are retried with growing pauses; a restart neither loses nor repeats."""
    recorder, url = receiver
    clock = Clock()
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
    hook = WebhookReceiver("hook", url + "/hook")
    recorder.failing = True
    cycle = cycle_for(engine, [hook], clock)
    clock.at(10)
    await run(cycle)
    clock.at(16)
    await run(cycle)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                OUTBOX.c.level, OUTBOX.c.attempts, OUTBOX.c.next_attempt_at, OUTBOX.c.last_error
            ).order_by(OUTBOX.c.id)
        ).all()
    # The warning failed twice (15 s, then 30 s later); the breach waits behind it, untried.
    assert [(r.level, r.attempts) for r in rows] == [("warning", 2), ("breach", 0)]
    assert rows[0].next_attempt_at == T0 + timedelta(minutes=16, seconds=30)
    assert rows[0].last_error == "webhook hook answered HTTP 503"
    # Restart: a new cycle on the same store; the receiver is back.
    recorder.failing = False
    restarted = cycle_for(engine, [hook], clock)
    clock.at(16.25)
    await run(restarted)
    assert levels(recorder) == []  # not due yet: the backoff holds across the restart
    clock.at(16.5)
    await run(restarted)
    assert levels(recorder) == [("t1", "warning"), ("t1", "breach")]
    clock.at(17)
    await run(cycle_for(engine, [hook], clock))
    assert len(recorder.bodies) == 2


async def test_alertmanager_gets_v2_alerts_with_severity_per_level(
    engine: Engine, receiver: tuple[Receiver, str]
) -> None:
    """Firing alerts carry account, platform, channel, severity; a new level ends the old one."""
    recorder, url = receiver
    clock = Clock()
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
    manager = AlertmanagerReceiver(url, resend_interval=timedelta(minutes=1))
    cycle = cycle_for(engine, [manager], clock)
    clock.at(10)
    await run(cycle)
    posts = [body for path, body in recorder.bodies if path == "/api/v2/alerts"]
    # The warning itself, then the keep-alive re-send of everything firing.
    assert [[a["labels"]["severity"] for a in post] for post in posts] == [["warning"], ["warning"]]
    alert = posts[0][0]
    assert alert["labels"] == {
        "alertname": "ReplywatchConversationWaiting",
        "severity": "warning",
        "platform": "facebook",
        "account": "shop",
        "channel": "dm",
        "conversation": "t1",
    }
    assert alert["annotations"]["link"] == "https://fb.example/t1"
    assert alert["startsAt"] == T0.isoformat()
    recorder.bodies.clear()
    clock.at(15)
    await run(cycle)
    breach = recorder.bodies[0][1]
    assert [(a["labels"]["severity"], a["endsAt"]) for a in breach] == [
        ("critical", (clock.now + timedelta(minutes=4)).isoformat()),
        ("warning", clock.now.isoformat()),
    ]


async def test_slack_and_telegram_get_one_readable_message(
    engine: Engine, receiver: tuple[Receiver, str]
) -> None:
    """Slack gets text with the link; Telegram gets sendMessage for the chat."""
    recorder, url = receiver
    clock = Clock()
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
    slack = SlackReceiver("slack", url + "/services/T/B/X", levels=("breach",))
    telegram = TelegramReceiver("tg", "-100200", BOT_TOKEN, api_url=url, levels=("breach",))
    clock.at(15)
    await run(cycle_for(engine, [slack, telegram], clock))
    by_path = dict(recorder.bodies)
    assert "Target breached" in by_path["/services/T/B/X"]["text"]
    assert "https://fb.example/t1" in by_path["/services/T/B/X"]["text"]
    sent = by_path[f"/bot{BOT_TOKEN}/sendMessage"]
    assert sent["chat_id"] == "-100200" and "facebook account shop" in sent["text"]


async def test_a_failing_telegram_never_shows_its_token(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot token is in the URL; errors name the receiver, not the URL."""
    clock = Clock()
    Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
    telegram = TelegramReceiver("tg", "1", BOT_TOKEN, api_url="http://127.0.0.1:9")
    clock.at(10)
    await run(cycle_for(engine, [telegram], clock))
    with engine.connect() as connection:
        error = connection.execute(select(OUTBOX.c.last_error)).scalar_one()
    assert error.startswith("Telegram tg unreachable")
    assert BOT_TOKEN not in error and BOT_TOKEN not in caplog.text


async def test_email_arrives_through_a_real_smtp_server(engine: Engine) -> None:
    """aiosmtpd receives one mail per change with account, level and link."""
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock = Clock()
        Ingestor(engine, AccountDirectory(Config.empty())).ingest([event("q1", "customer", 0)])
        mail = EmailReceiver(
            "mail",
            "127.0.0.1",
            port,
            "replywatch@example.org",
            ("oncall@example.org",),
            starttls=False,
        )
        clock.at(15)
        await run(cycle_for(engine, [mail], clock))
    finally:
        controller.stop()
    assert len(received) == 1
    message = message_from_bytes(received[0])
    assert message["Subject"] == "[replywatch] breach: facebook/shop"
    assert message["To"] == "oncall@example.org"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "https://fb.example/t1" in body
    assert json.loads(body.split("\n\n", 1)[1])["level"] == "breach"
