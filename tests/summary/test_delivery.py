"""The weekly mail: due at the configured moment, through a real SMTP server, once per week."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.notify.receivers import SlackReceiver
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.summary.compose import IsoWeek
from monitor.summary.delivery import SENDS, SummaryMailer, due_week
from tests.summary.fonts import needs_pdf

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # ISO week 48; the summary of week 47 is due


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    yield box
    box.stop()


def write_config(tmp_path: Path, port: int, extra: str = "") -> Config:
    path = tmp_path / "replywatch.toml"
    path.write_text(f"""
[summary]
timezone = "Europe/Berlin"
day = "monday"
hour = 8
smtp_host = "127.0.0.1"
smtp_port = {port}
starttls = false
from_address = "replywatch@example.org"

[[summary.recipients]]
to = ["lead@example.org"]
accounts = ["shop"]

[[summary.recipients]]
to = ["modir@example.org"]
group = "iran"
locale = "fa"

[[accounts]]
name = "shop"
platform = "facebook"
source = "push"
group = "iran"
{extra}
""")
    return load_config(path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    week47 = MONDAY - timedelta(days=7)
    Ingestor(engine, AccountDirectory(Config.empty())).ingest(
        [
            Event(
                "facebook",
                "shop",
                "dm",
                "t1",
                "q1",
                "customer",
                week47 + timedelta(hours=10),
                thread_url="https://fb.example/t1",
            ),
            Event("facebook", "shop", "dm", "t1", "a1", "business", week47 + timedelta(hours=10.5)),
            Event("facebook", "shop", "dm", "t2", "q2", "customer", week47 + timedelta(hours=11)),
        ]
    )
    yield engine
    engine.dispose()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def run(mailer: SummaryMailer) -> Any:
    async with aiohttp.ClientSession() as session:
        return await mailer.send_due(session)


def test_the_summary_is_due_after_the_configured_moment() -> None:
    """Before Monday 08:00 in Berlin the week before last is due; from 08:00, last week."""
    zone = "Europe/Berlin"
    before = datetime(2026, 11, 23, 6, 59, tzinfo=UTC)  # 07:59 in Berlin
    at = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert due_week(before, zone, "monday", 8) == IsoWeek(2026, 46, zone)
    assert due_week(at, zone, "monday", 8) == IsoWeek(2026, 47, zone)
    assert due_week(at, zone, "tuesday", 8) == IsoWeek(2026, 46, zone)


@needs_pdf
async def test_each_recipient_gets_one_mail_with_html_chart_and_pdf(
    tmp_path: Path, mailbox: Mailbox, store: Engine
) -> None:
    """HTML with the chart by Content-ID, the PDF attached, Persian for the Persian reader."""
    mailbox.start()
    config = write_config(tmp_path, mailbox.port)
    clock = Clock(MONDAY + timedelta(hours=9))
    mailer = SummaryMailer(store, AccountDirectory(config), config, clock=clock)
    report = await run(mailer)
    assert (report.week, report.sent, report.failed) == ("2026-W47", 2, 0)
    by_reader = {str(m["To"]): m for m in mailbox.messages}
    english = by_reader["lead@example.org"]
    assert english["Subject"] == "Weekly response summary: 2026-W47"
    html = english.get_body(preferencelist=("html",))
    assert html is not None
    content = html.get_content()
    assert 'src="cid:hour-of-week"' in content and 'dir="ltr"' in content
    assert "https://fb.example/t1" in content
    images = [p for p in english.walk() if p.get_content_type() == "image/png"]
    assert [p["Content-ID"] for p in images] == ["<hour-of-week>"]
    pdf = next(p for p in english.iter_attachments() if p.get_content_type() == "application/pdf")
    assert pdf.get_filename() == "replywatch-2026-W47.pdf"
    assert pdf.get_content()[:5] == b"%PDF-"
    persian = by_reader["modir@example.org"]
    assert "خلاصه" in str(persian["Subject"])
    persian_html = persian.get_body(preferencelist=("html",))
    assert persian_html is not None and 'dir="rtl"' in persian_html.get_content()
    again = await run(mailer)
    assert (again.sent, again.already) == (0, 2)
    assert len(mailbox.messages) == 2


def summary_events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """(event, week, recipient) of each summary log record, in order."""
    return [
        (r.__dict__["event"], r.__dict__["week"], r.__dict__["recipient"])
        for r in caplog.records
        if r.name == "monitor.summary"
    ]


@needs_pdf
async def test_a_server_that_is_down_gets_the_mail_when_it_returns(
    tmp_path: Path, mailbox: Mailbox, store: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The failure is recorded with its reason; the next round sends it; never twice."""
    caplog.set_level("INFO", logger="monitor.summary")
    config = write_config(tmp_path, mailbox.port)
    clock = Clock(MONDAY + timedelta(hours=9))
    mailer = SummaryMailer(store, AccountDirectory(config), config, clock=clock)
    down = await run(mailer)
    assert (down.sent, down.failed) == (0, 2)
    failed = summary_events(caplog)
    assert [(event, week) for event, week, _ in failed] == [("summary_failed", "2026-W47")] * 2
    assert {recipient for _, _, recipient in failed} == {
        "lead@example.org|shop",
        "modir@example.org|iran",
    }
    caplog.clear()
    with store.connect() as connection:
        rows = connection.execute(
            select(SENDS.c.attempts, SENDS.c.sent_at, SENDS.c.last_error)
        ).all()
    assert {(r.attempts, r.sent_at) for r in rows} == {(1, None)}
    assert all(r.last_error for r in rows)
    mailbox.start()
    clock.now += timedelta(minutes=15)
    back = await run(mailer)
    assert (back.sent, back.failed) == (2, 0)
    assert [event for event, _, _ in summary_events(caplog)] == ["summary_sent"] * 2
    clock.now += timedelta(minutes=15)
    assert (await run(mailer)).sent == 0
    assert len(mailbox.messages) == 2


@pytest.fixture
async def slack() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    posts: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield posts, str(server.make_url("/hook"))
    await server.close()


async def test_a_chat_digest_goes_out_once(
    tmp_path: Path, mailbox: Mailbox, store: Engine, slack: tuple[list[dict[str, Any]], str]
) -> None:
    """The digest names each account's figures and the advice, once per week."""
    mailbox.start()
    posts, url = slack
    extra = '\n[[alerts.receivers]]\nname = "team"\nkind = "slack"\nsecrets = { url = "env:X" }\n'
    config = write_config(tmp_path, mailbox.port, extra.replace("[[accounts]]", ""))
    text = (tmp_path / "replywatch.toml").read_text()
    (tmp_path / "replywatch.toml").write_text(
        text.replace(
            'from_address = "replywatch@example.org"',
            'from_address = "replywatch@example.org"\ndigest_receivers = ["team"]',
        )
    )
    config = load_config(tmp_path / "replywatch.toml")
    clock = Clock(MONDAY + timedelta(hours=9))
    mailer = SummaryMailer(
        store, AccountDirectory(config), config, [SlackReceiver("team", url)], clock
    )
    await run(mailer)
    await run(mailer)
    assert len(posts) == 1
    assert "2026-W47" in posts[0]["text"] and "shop:" in posts[0]["text"]


def test_the_config_names_unknown_digest_receivers_and_groups(tmp_path: Path) -> None:
    """A digest receiver that is not a chat receiver, or a group nobody is in, is refused."""
    from monitor.config.loading import ConfigError

    path = tmp_path / "bad.toml"
    path.write_text("""
[summary]
smtp_host = "127.0.0.1"
from_address = "a@example.org"
digest_receivers = ["nobody"]
[[summary.recipients]]
to = ["b@example.org"]
group = "ghosts"
""")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "'nobody' is not a slack or telegram receiver" in text
    assert "unknown group 'ghosts'" in text


async def test_nothing_is_due_without_recipients(tmp_path: Path, store: Engine) -> None:
    """No recipients and no digest: the round does nothing."""
    config = Config.empty()
    mailer = SummaryMailer(
        store, AccountDirectory(config), config, clock=Clock(MONDAY + timedelta(hours=9))
    )
    assert await run(mailer) is None
