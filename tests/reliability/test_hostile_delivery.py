"""Alert delivery whatever the names and links hold (issue 14).

A thread link or an account name comes from a platform or a customer. None of them may get
Alertmanager to refuse the keep-alive of every firing alert, make one delivery round crash
(and so re-send what it already sent), ping a whole Slack channel, disguise a link, or start
a mail header. Checked against a fake Alertmanager that refuses what the real one refuses,
against the real one when installed, and with hypothesis over arbitrary text.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.core.escaping import alertmanager_alert, http_url
from monitor.notify.conversation_alerts import AlertChange
from monitor.notify.outbox import OUTBOX, Outbox, enqueue
from monitor.notify.receivers import (
    AlertmanagerReceiver,
    AlertReceiver,
    DeliveryError,
    EmailReceiver,
    PushReport,
    SlackReceiver,
    TelegramReceiver,
    WebhookReceiver,
    neutral,
)
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.summary.delivery import SENDS, SummaryMailer
from tests.fake_alertmanager import FakeAlertmanager, go_request_uri_ok, validate
from tests.stack import ALERTMANAGER, needs_alertmanager

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=15)
AM_TOKEN = "am-TEST-token-never-logged"
EXAMPLES = int(os.environ.get("REPLYWATCH_FUZZ_EXAMPLES", "500"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
PING = "<!channel> <https://evil.example|Reset your password>"


def change(
    conversation: str = "t1",
    *,
    account: str = "shop",
    channel: str = "dm",
    link: str | None = "https://fb.example/t1",
    level: str = "warning",
    previous: str | None = None,
    at: datetime = T0,
) -> AlertChange:
    return AlertChange(
        key=f"facebook/{account}/{conversation}/{at.isoformat()}",
        level=level,
        previous_level=previous,
        platform="facebook",
        account=account,
        channel=channel,
        conversation=conversation,
        opened_at=at,
        changed_at=at + (NOW - T0),
        waited_seconds=900.0,
        link=link,
    )


# Arbitrary text, biased towards what breaks each medium; lone surrogates included (what
# JavaScript leaves when it cuts an emoji), which st.text() never draws.
HOSTILE = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<https://evil.example|Reset your password>",
    "|",
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;",
    "\r\n",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x1b[31m",
    "\x85",
    "\u2028",
    "\u202e",
    "Bcc: victim@evil.example",
    "=?utf-8?q?x?=",
    "%zz",
    "%0a",
    "javascript:alert(1)",
    "https://",
    "http://",
    "@",
    "#",
    "?",
    ":",
    "[::1]",
    " ",
    "\u00a0",
    "é",
    "🙂",
    "خلاصه",
]
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
pieces = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8), surrogates)
hostile_text = st.lists(pieces, max_size=8).map("".join)
links = st.one_of(
    st.none(),
    hostile_text,
    st.tuples(
        st.sampled_from(["https://", "http://", "HTTPS://", "javascript:", "//", ""]),
        st.sampled_from(["fb.example", "xn--bcher-kva.example", "bücher.example", "[::1]", ""]),
        hostile_text,
    ).map("".join),
)
hostile_changes = st.builds(
    change,
    conversation=hostile_text,
    account=hostile_text,
    channel=hostile_text,
    link=links,
    level=st.sampled_from(["warning", "breach", "escalated", "resolved"]),
    previous=st.sampled_from([None, "warning", "breach"]),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def fake_am() -> AsyncIterator[tuple[FakeAlertmanager, str]]:
    fake = FakeAlertmanager()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def real_am(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free port (a readiness poll, then the tests run)."""
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    process = subprocess.Popen(
        [
            ALERTMANAGER or "alertmanager",
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                # Waiting for a process to listen, not for a time to pass.
                assert datetime.now(UTC) < deadline, "Alertmanager did not start"
                assert process.poll() is None, "Alertmanager exited"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def post_sync(url: str, alerts: object) -> int:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


async def stored(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/alerts") as got:
        return list(await got.json())


# -- Alertmanager --------------------------------------------------------------------------


HOSTILE_FIRING = [
    change("t1"),
    change("t2", link="https://fb.example/t2\nx"),  # 422 for the whole batch before
    change("t3", link="https://fb.example/\tt3"),
    change("t4", link="https://fb.example/%zz"),
    change("t5", link="fb.example/t5"),
    change("t6", link="javascript:alert(1)"),
    change("t7", account="sh\nop", channel="d\x00m", link=PING),
    change("t\ud83d8", account="shop\udc00", link='https://bücher.example/a|<c>"'),
    change("t9", link="https://fb.example/" + "x" * 5000),
]


async def test_one_bad_thread_link_no_longer_gets_every_firing_alert_refused(
    fake_am: tuple[FakeAlertmanager, str],
) -> None:
    """A line feed in one link used to make the keep-alive of every alert a 422."""
    fake, url = fake_am
    manager = AlertmanagerReceiver(url)
    async with aiohttp.ClientSession() as session:
        report = await manager.refresh(session, HOSTILE_FIRING, NOW)
    assert report == PushReport(pushed=len(HOSTILE_FIRING), refused=0)
    assert fake.refused == []
    by_conversation = {a["labels"]["conversation"]: a for a in fake.alerts.values()}
    assert len(by_conversation) == len(HOSTILE_FIRING)
    assert by_conversation["t1"]["generatorURL"] == "https://fb.example/t1"
    for dropped in ("t2", "t3", "t5", "t6", "t7", "t9"):
        alert = by_conversation[dropped]
        assert "generatorURL" not in alert and "link" not in alert["annotations"]
        assert "not a usable http(s) URL" in alert["annotations"]["link_problem"]
    # A cleaned copy where the link is only untidy: escapes fixed, markup characters encoded.
    assert by_conversation["t4"]["generatorURL"] == "https://fb.example/%25zz"
    odd = by_conversation["t\\ud83d8"]
    assert odd["labels"]["account"] == "shop\\udc00"
    assert odd["generatorURL"] == "https://xn--bcher-kva.example/a%7C%3Cc%3E%22"
    assert by_conversation["t7"]["labels"]["account"] == "sh\\nop"


async def test_an_alert_alertmanager_still_refuses_is_split_off_logged_once_and_counted(
    fake_am: tuple[FakeAlertmanager, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal replywatch cannot foresee costs that alert only, in few requests."""
    fake, url = fake_am
    fake.poison = lambda alert: alert["labels"]["conversation"] == "t5"
    firing = [change(f"t{n}") for n in range(8)]
    manager = AlertmanagerReceiver(url, token=AM_TOKEN)
    async with aiohttp.ClientSession() as session:
        first = await manager.refresh(session, firing, NOW)
        posts_first = fake.posts
        second = await manager.refresh(session, firing, NOW + timedelta(minutes=1))
    assert first == second == PushReport(pushed=7, refused=1)
    assert sorted(a["labels"]["conversation"] for a in fake.alerts.values()) == [
        f"t{n}" for n in range(8) if n != 5
    ]
    # One bad alert among 8: the batch, then two halves per level down to it (1 + 2 * 3).
    assert posts_first <= 7
    refusals = [r.getMessage() for r in caplog.records if "refused the alert" in r.getMessage()]
    assert len(refusals) == 1 and "conversation t5" in refusals[0]
    assert url.split("//")[1] not in caplog.text and AM_TOKEN not in caplog.text


async def test_a_refused_alert_fails_its_own_delivery_only(
    fake_am: tuple[FakeAlertmanager, str], tmp_path: Path
) -> None:
    """send() raises DeliveryError for the refused alert; the outbox retries it alone."""
    fake, url = fake_am
    fake.poison = lambda alert: alert["labels"]["conversation"] == "t2"
    engine = open_engine(f"sqlite:///{tmp_path / 'o.db'}")
    manager = AlertmanagerReceiver(url)
    with engine.begin() as connection:
        enqueue(connection, [change("t1"), change("t2")], [manager], NOW)
    outbox = Outbox(engine, [manager], lambda: NOW)
    async with aiohttp.ClientSession() as session:
        report = await outbox.deliver_due(session)
    assert (report.delivered, report.failed, report.crashed) == (1, 1, 0)
    with engine.connect() as connection:
        errors = connection.execute(select(OUTBOX.c.last_error)).scalars().all()
    assert sorted(errors, key=str) == sorted(
        [None, "Alertmanager refused 1 of 1 alerts (content)"], key=str
    )
    engine.dispose()


@needs_alertmanager
async def test_the_real_alertmanager_keeps_every_hostile_alert(real_am: str) -> None:
    """What replywatch pushes, the real Alertmanager accepts: keep-alive and level changes."""
    # Alertmanager lists only alerts that have not ended by its own clock.
    opened = datetime.now(UTC) - (NOW - T0)
    firing = [replace(c, opened_at=opened, changed_at=opened + (NOW - T0)) for c in HOSTILE_FIRING]
    manager = AlertmanagerReceiver(real_am, resend_interval=timedelta(hours=1))
    async with aiohttp.ClientSession() as session:
        report = await manager.refresh(session, firing, firing[0].changed_at)
        assert report == PushReport(pushed=len(firing), refused=0)
        assert {a["labels"]["conversation"] for a in await stored(real_am)} == {
            neutral(c).conversation for c in firing
        }
        for each in firing:
            # A new level fires and ends the previous one, in one request.
            await manager.send(session, replace(each, level="breach", previous_level="warning"))
    severities = {
        (a["labels"]["conversation"], a["labels"]["severity"]) for a in await stored(real_am)
    }
    assert severities == {(neutral(c).conversation, "critical") for c in firing}


@needs_alertmanager
async def test_splitting_isolates_what_the_real_alertmanager_refuses(real_am: str) -> None:
    """A 422 (nothing kept) and a 400 (the rest kept) inside one batch: the good all land."""
    now = datetime.now(UTC)
    good = [
        alertmanager_alert({"alertname": "Split", "n": str(n)}, {}, now, now + timedelta(hours=1))
        for n in range(6)
    ]
    not_a_uri = {**good[0], "labels": {"alertname": "Split", "n": "x"}, "generatorURL": "a b"}
    bad_name = {**good[0], "labels": {"alertname": "Split", "n-n": "y"}}
    batch = [*good[:3], not_a_uri, *good[3:5], bad_name, good[5]]
    async with aiohttp.ClientSession() as session:
        report = await AlertmanagerReceiver(real_am).push(session, batch)
    assert report == PushReport(pushed=6, refused=2)
    kept = sorted(a["labels"]["n"] for a in await stored(real_am))
    assert kept == [str(n) for n in range(6)]


@needs_alertmanager
@PROPERTY
@given(
    url=st.one_of(links, hostile_text),
    name=st.sampled_from(["alertname", "a-b", "_x", "1a", "ç", "ok_1"]),
    backwards=st.booleans(),
)
def test_the_fake_refuses_exactly_what_the_real_alertmanager_refuses(
    real_am: str, url: str | None, name: str, backwards: bool
) -> None:
    """The fake's verdict on generatorURL, names and times is the real one's (same status)."""
    alert: dict[str, Any] = {
        "labels": {"alertname": "Same", name: "v"},
        "startsAt": (NOW if backwards else T0).isoformat(),
        "endsAt": (T0 if backwards else NOW).isoformat(),
    }
    if url is not None:
        try:
            url.encode()
        except UnicodeEncodeError:
            url = url.encode("utf-8", "replace").decode()  # what Go's decoder would see
        alert["generatorURL"] = url
    assert post_sync(real_am, [alert]) == validate([alert])[0]


# -- The outbox: one failure stays where it is ------------------------------------------------


@dataclass
class Recorder:
    """Local HTTP endpoints (Slack, webhook) that keep what they get."""

    bodies: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            self.bodies.append((request.path, await request.json()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        return app

    def at(self, path: str) -> list[Any]:
        return [body for where, body in self.bodies if where == path]


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    keeper = Recorder()
    server = TestServer(keeper.app(), host="127.0.0.1")
    await server.start_server()
    yield keeper, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[list[bytes], int]]:
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield received, port
    controller.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield store
    store.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def rounds(outbox: Outbox, clock: Clock, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            await outbox.deliver_due(session)
            clock.now += timedelta(minutes=20)  # past any backoff


async def test_a_line_feed_in_an_account_name_neither_crashes_mail_nor_repeats_the_others(
    engine: Engine, recorder: tuple[Recorder, str], mailbox: tuple[list[bytes], int]
) -> None:
    """Slack, webhook and mail each get both alerts exactly once; the Subject stays one line."""
    keeper, url = recorder
    received, port = mailbox
    receivers: list[AlertReceiver] = [
        SlackReceiver("slack", url + "/slack"),
        WebhookReceiver("hook", url + "/hook"),
        EmailReceiver(
            "mail", "127.0.0.1", port, "rw@example.org", ("oncall@example.org",), starttls=False
        ),
    ]
    hostile = change("t2", account="shop\r\nBcc: victim@evil.example")
    clock = Clock()
    with engine.begin() as connection:
        enqueue(connection, [change("t1"), hostile], receivers, NOW)
    await rounds(Outbox(engine, receivers, clock), clock, 3)
    assert len(keeper.at("/slack")) == len(keeper.at("/hook")) == len(received) == 2
    mails = [message_from_bytes(raw, policy=policy.default) for raw in received]
    subjects = [str(m["Subject"]) for m in mails]
    assert subjects[1] == "[replywatch] warning: facebook/shop\\r\\nBcc: victim@evil.example"
    assert all(m.keys().count("Bcc") == 0 and m["To"] == "oncall@example.org" for m in mails)
    assert keeper.at("/hook")[1]["account"] == "shop\\r\\nBcc: victim@evil.example"
    with engine.connect() as connection:
        undelivered = connection.execute(select(OUTBOX.c.id).where(OUTBOX.c.delivered_at.is_(None)))
        assert undelivered.all() == []


@dataclass
class Buggy:
    """A receiver with a bug: raises something that is not DeliveryError."""

    name: str = "buggy"
    levels: tuple[str, ...] = ("warning",)
    calls: int = 0

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        self.calls += 1
        raise RuntimeError("failed posting to https://hooks.example/TEST-secret-path")


async def test_a_receiver_that_raises_anything_fails_only_its_own_delivery(
    engine: Engine, recorder: tuple[Recorder, str]
) -> None:
    """The rest is delivered once and recorded; the buggy one is retried, counted, not quoted."""
    keeper, url = recorder
    buggy = Buggy()
    receivers: list[AlertReceiver] = [buggy, WebhookReceiver("hook", url + "/hook")]
    clock = Clock()
    with engine.begin() as connection:
        enqueue(connection, [change("t1"), change("t2")], receivers, NOW)
    outbox = Outbox(engine, receivers, clock)
    async with aiohttp.ClientSession() as session:
        report = await outbox.deliver_due(session)
        assert (report.delivered, report.failed, report.crashed, report.pending) == (2, 2, 2, 2)
        clock.now += timedelta(minutes=20)
        again = await outbox.deliver_due(session)
    assert (again.delivered, again.failed) == (0, 2)
    assert len(keeper.at("/hook")) == 2 and buggy.calls == 4
    with engine.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.attempts, OUTBOX.c.last_error).where(OUTBOX.c.receiver == "buggy")
        ).all()
    assert {(r.attempts, r.last_error) for r in rows} == {
        (2, "buggy failed unexpectedly: RuntimeError")
    }


async def test_a_token_with_a_line_break_fails_as_a_delivery_error_without_the_token(
    recorder: tuple[Recorder, str],
) -> None:
    """aiohttp refuses such a header with ValueError; the receiver reports DeliveryError."""
    _keeper, url = recorder
    token = "hook-TEST-token\r\nX-Injected: 1"
    hook = WebhookReceiver("hook", url + "/hook", token)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryError) as caught:
            await hook.send(session, change())
    assert str(caught.value) == "webhook hook request not sent: ValueError"


@dataclass
class Cancelling:
    """A receiver whose send is cancelled (replywatch shutting down mid-round)."""

    name: str = "slow"
    levels: tuple[str, ...] = ("warning",)

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        raise asyncio.CancelledError


async def test_what_went_out_is_recorded_even_when_the_round_is_cancelled(
    engine: Engine, recorder: tuple[Recorder, str]
) -> None:
    """A shutdown mid-round must not make the next start re-send what already went out."""
    keeper, url = recorder
    hook = WebhookReceiver("hook", url + "/hook")
    clock = Clock()
    with engine.begin() as connection:
        enqueue(connection, [change("t1")], [hook, Cancelling()], NOW)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.CancelledError):
            await Outbox(engine, [hook, Cancelling()], clock).deliver_due(session)
        await Outbox(engine, [hook], clock).deliver_due(session)
    assert len(keeper.at("/hook")) == 1


# -- Each medium's escaping ---------------------------------------------------------------------


def test_slack_gets_no_channel_ping_and_no_disguised_link() -> None:
    """Names are text; the one link is ours, to the validated address, shown as itself."""
    slack = SlackReceiver("s", "http://unused")
    text = slack.message(change(account=PING, link=PING))
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|Reset your password&gt;" in text
    linked = slack.message(change(link="https://fb.example/t1?a=1&b=<x>|y"))
    assert linked.endswith(" <https://fb.example/t1?a=1&amp;b=%3Cx%3E%7Cy>")
    assert slack.message(change(link="javascript:alert(1)")).count("<") == 0


def test_telegram_reads_no_markup() -> None:
    """No parse_mode (Telegram then parses no entities): tags arrive as the text they are."""
    telegram = TelegramReceiver("t", "1", "123:TEST-token")
    body = telegram.body("<b>" + PING + "</b> *bold* [x](https://evil.example)")
    assert "parse_mode" not in body and "entities" not in body
    assert body["text"] == "<b>" + PING + "</b> *bold* [x](https://evil.example)"


@PROPERTY
@given(hostile_changes)
def test_slack_text_holds_no_markup_but_our_own_link(item: AlertChange) -> None:
    """Every "<" and ">" is escaped, every "&" is an entity, except one link we built."""
    text = SlackReceiver("s", "http://unused").message(item)
    ours = re.search(r" <(https?://[\x21-\x7e]+)>\Z", text)
    body = text if ours is None else text[: ours.start()]
    assert "<" not in body and ">" not in body
    assert "&" not in re.sub("&(amp|lt|gt);", "", body)
    assert not CONTROLS.search(text)
    expected = http_url(item.link)
    if expected is None:
        assert ours is None
    else:
        assert ours is not None and ours.group(1) == expected.replace("&", "&amp;")
        assert not re.search(r"[<>|\s]", ours.group(1))


@PROPERTY
@given(hostile_changes)
def test_mail_headers_hold_no_line_break(item: AlertChange) -> None:
    """The message is always written, its Subject is one line and no header is added."""
    mail = EmailReceiver("m", "127.0.0.1", 25, "rw@example.org", ("oncall@example.org",))
    raw = mail.message(item).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert sorted(parsed.keys()) == sorted(
        ["From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    )
    # A long word makes the email package fold right after "Subject:"; Python's parser then
    # keeps the folding space (RFC 5322 readers drop it), hence lstrip().
    subject = str(parsed["Subject"]).lstrip()
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("[replywatch] ")
    assert parsed["To"] == "oncall@example.org"


@PROPERTY
@given(hostile_changes)
def test_every_alertmanager_push_passes_its_validation(item: AlertChange) -> None:
    """Keep-alive and level-change alerts alike are accepted (status 200, all kept)."""
    manager = AlertmanagerReceiver("http://unused")
    alerts = [
        manager._alert(item, "warning", ends=None, now=NOW),
        manager._alert(item, "breach", ends=item.changed_at),
    ]
    assert validate(alerts)[:2] == (200, alerts)


@PROPERTY
@given(
    labels=st.dictionaries(hostile_text, hostile_text, max_size=4),
    annotations=st.dictionaries(hostile_text, hostile_text, max_size=4),
    starts=st.datetimes(timezones=st.sampled_from([UTC, None])),
    ends=st.datetimes(timezones=st.sampled_from([UTC, None])),
    link=links,
)
def test_any_alert_is_made_valid_for_alertmanager(
    labels: dict[str, str],
    annotations: dict[str, str],
    starts: datetime,
    ends: datetime,
    link: str | None,
) -> None:
    """Whatever names, values, times and link: one alert Alertmanager accepts."""
    alert = alertmanager_alert(labels, annotations, starts, ends, link)
    assert validate([alert])[:2] == (200, [alert])


@PROPERTY
@given(hostile_text, hostile_changes)
def test_telegram_text_is_plain_and_fits(text: str, item: AlertChange) -> None:
    """No parse_mode, no control character but line feeds, within 4096 UTF-16 units."""
    telegram = TelegramReceiver("t", "1", "123:TEST-token")
    for body in (telegram.body(text * 300), telegram.body(str(item))):
        assert "parse_mode" not in body and not CONTROLS.search(body["text"])
        assert len(body["text"].encode("utf-16-le")) // 2 <= 4096


@PROPERTY
@given(links)
def test_a_cleaned_link_is_plain_http_that_alertmanager_accepts(link: str | None) -> None:
    """http(s), printable ASCII without markup characters, stable when cleaned again."""
    cleaned = http_url(link)
    if cleaned is not None:
        assert re.fullmatch(r"https?://[\x21-\x7e]+", cleaned)
        assert not re.search(r'[<>|"{}\\^`]', cleaned)
        assert go_request_uri_ok(cleaned)
        assert http_url(cleaned) == cleaned


@PROPERTY
@given(hostile_changes)
def test_the_webhook_fields_hold_no_control_character(item: AlertChange) -> None:
    """Account, channel, conversation, key and link reach the webhook on one line each."""
    data = neutral(item).to_json()
    for name in ("key", "platform", "account", "channel", "conversation", "link"):
        value = data[name]
        assert value is None or not re.search(
            "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", value
        )
    json.dumps(data, ensure_ascii=False).encode()


async def test_slack_and_telegram_over_http_get_a_name_as_text(
    engine: Engine, recorder: tuple[Recorder, str]
) -> None:
    """What arrives: Slack entities instead of a channel ping, Telegram without parse_mode."""
    keeper, url = recorder
    receivers: list[AlertReceiver] = [
        SlackReceiver("slack", url + "/slack"),
        TelegramReceiver("tg", "-100", "123:TEST-bot-token", api_url=url),
    ]
    clock = Clock()
    with engine.begin() as connection:
        enqueue(connection, [change(account=PING, link=PING)], receivers, NOW)
    await rounds(Outbox(engine, receivers, clock), clock, 1)
    (slack,) = keeper.at("/slack")
    assert "<" not in slack["text"] and "&lt;!channel&gt;" in slack["text"]
    (telegram,) = keeper.at("/bot123:TEST-bot-token/sendMessage")
    assert "parse_mode" not in telegram and PING in telegram["text"]


# -- The weekly digest ------------------------------------------------------------------------

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # the summary of week 47 is due


def digest_config(tmp_path: Path, mail: bool = True) -> Config:
    path = tmp_path / "replywatch.toml"
    recipients = '[[summary.recipients]]\nto = ["lead@example.org"]' if mail else ""
    path.write_text(f"""
[summary]
timezone = "UTC"
smtp_host = "127.0.0.1"
from_address = "replywatch@example.org"
digest_receivers = ["team", "tg"]

{recipients}

[[alerts.receivers]]
name = "team"
kind = "slack"
secrets = {{ url = "env:X" }}

[[alerts.receivers]]
name = "tg"
kind = "telegram"
chat_id = "-100"
secrets = {{ bot_token = "env:Y" }}
""")
    return load_config(path)


def week_with(engine: Engine, account: str) -> None:
    week47 = MONDAY - timedelta(days=7)
    Ingestor(engine, AccountDirectory(Config.empty())).ingest(
        [
            Event("facebook", account, "dm", "t1", "q1", "customer", week47 + timedelta(hours=10)),
            Event("facebook", account, "dm", "t1", "a1", "business", week47 + timedelta(hours=11)),
        ]
    )


async def test_the_weekly_digest_shows_account_names_as_text(
    tmp_path: Path, engine: Engine, recorder: tuple[Recorder, str]
) -> None:
    """An account named like Slack markup pings nobody and links nowhere, in the digest too."""
    keeper, url = recorder
    week_with(engine, PING)
    config = digest_config(tmp_path, mail=False)
    chat: list[AlertReceiver] = [
        SlackReceiver("team", url + "/slack"),
        TelegramReceiver("tg", "-100", "123:TEST-bot-token", api_url=url),
    ]
    mailer = SummaryMailer(
        engine, AccountDirectory(config), config, chat, lambda: MONDAY + timedelta(hours=9)
    )
    async with aiohttp.ClientSession() as session:
        report = await mailer.send_due(session)
    assert report is not None and (report.sent, report.failed) == (2, 0)
    (slack,) = keeper.at("/slack")
    assert "<" not in slack["text"] and ">" not in slack["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|Reset your password&gt;:" in slack["text"]
    (telegram,) = keeper.at("/bot123:TEST-bot-token/sendMessage")
    assert "parse_mode" not in telegram and f"{PING}:" in telegram["text"]


async def test_a_summary_that_cannot_be_written_leaves_the_others_their_summary(
    tmp_path: Path, engine: Engine, recorder: tuple[Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever one recipient's mail raises is its failure, recorded; the digests still go out."""
    keeper, url = recorder
    week_with(engine, "shop")
    config = digest_config(tmp_path)

    async def unwritable(*_args: object) -> None:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(SummaryMailer, "_mail", unwritable)
    chat: list[AlertReceiver] = [SlackReceiver("team", url + "/slack")]
    mailer = SummaryMailer(
        engine, AccountDirectory(config), config, chat, lambda: MONDAY + timedelta(hours=9)
    )
    async with aiohttp.ClientSession() as session:
        report = await mailer.send_due(session)
    assert report is not None and (report.sent, report.failed) == (1, 1)
    assert len(keeper.at("/slack")) == 1
    with engine.connect() as connection:
        rows = dict(connection.execute(select(SENDS.c.recipient, SENDS.c.last_error)).all())
    assert rows == {"lead@example.org|*": "not written: UnicodeEncodeError", "digest:team": None}
