"""SIGKILL at random points during polling and webhook intake, 50 times: nothing lost or doubled.

``replywatch run`` polls three fake Pages while signed webhooks arrive for some of the same
messages. Each round kills it with SIGKILL at a random point: after a random number of
responses from the fake (so mid-poll, mid-page, between the fetch and the store, or during a
webhook), and restarts it. New customer messages and replies appear between rounds. At the end
the store must hold exactly the events and waits that a clean, never-killed run stores from the
same traffic, with no duplicate and an intact SQLite file.

The kill points come from the fake's own response counter (an event the test awaits), not
from timers, and the random choices are seeded, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.fakes.meta import FakeMeta
from tests.stack import free_port

ROUNDS = 50
PAGES = ("100", "200", "300")
TOKEN = "EAA-CRASH-TEST-SECRET-TOKEN-3"
APP_SECRET = "crash-test-app-secret"
STEP_TIMEOUT = 60.0


@dataclass
class Traffic:
    """The fake Graph API, its response counter, and the traffic the test creates."""

    fake: FakeMeta = field(default_factory=FakeMeta)
    responses: int = 0
    target: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(20261127))
    customers: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)  # (page, mid)

    def __post_init__(self) -> None:
        for page in PAGES:
            self.fake.add_page(page, TOKEN)
        self.fake.app.on_response_prepare.append(self._count)

    async def _count(self, _request: web.Request, _response: web.StreamResponse) -> None:
        self.responses += 1
        if self.target is not None and self.responses >= self.target:
            self.reached.set()

    def kill_after(self, responses: int) -> None:
        self.target = self.responses + responses
        self.reached.clear()

    def write_some(self) -> None:
        """A few customers write now; some are answered a few seconds later, some never."""
        now = datetime.now(UTC)
        for _ in range(self.rng.randint(1, 4)):
            self.customers += 1
            page = self.rng.choice(PAGES)
            customer = f"c{self.customers:04d}"
            self.messages.append((page, self.fake.customer_message(page, customer, now)))
            if self.rng.random() < 0.7:
                reply = now + timedelta(seconds=self.rng.uniform(1, 30))
                self.messages.append((page, self.fake.business_reply(page, customer, reply)))

    def total(self) -> int:
        return len(self.messages)


@pytest.fixture
async def traffic() -> AsyncIterator[tuple[Traffic, str]]:
    state = Traffic()
    server = TestServer(state.fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield state, str(server.make_url("")).rstrip("/")
    state.fake.release_slow()
    await server.close()


def write_config(folder: Path, url: str) -> Path:
    accounts = "".join(
        f"""
[[accounts]]
name = "page-{page}"
platform = "facebook"
ids = {{ page_id = "{page}" }}
channels = ["dm"]
poll_interval = "0.3s"
base_url = "{url}"
secrets = {{ access_token = "env:CRASH_TOKEN" }}
"""
        for page in PAGES
    )
    path = folder / "replywatch.toml"
    path.write_text(f"""
[replywatch]
refresh_interval = "1s"

[webhooks.meta.secrets]
app_secret = "env:CRASH_APP_SECRET"
verify_token = "env:CRASH_VERIFY"
{accounts}""")
    return path


async def start(config: Path, database: Path, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "CRASH_TOKEN": TOKEN, "CRASH_APP_SECRET": APP_SECRET, "CRASH_VERIFY": "v"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "--config",
        str(config),
        "--database",
        f"sqlite:///{database}",
        "run",
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def send_webhooks(state: Traffic, url: str, count: int) -> None:
    """Signed deliveries of random stored messages (the monitor may be dying meanwhile)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            page, mid = state.rng.choice(state.messages)
            body, headers = state.fake.signed_webhook(
                APP_SECRET, state.fake.message_webhook(page, mid)
            )
            try:
                async with session.post(f"{url}/hooks/meta", data=body, headers=headers) as r:
                    await r.read()
            except aiohttp.ClientError:
                return  # killed mid-delivery: Meta would deliver again; polling finds it anyway


def stored(database: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Events and waits, without the columns that depend on when they were first seen."""
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        events = connection.execute(
            "SELECT a.name, e.thread_id, e.message_id, e.author_role, e.created_at "
            "FROM events e JOIN accounts a ON a.id = e.account_id ORDER BY 1, 3"
        ).fetchall()
        waits = connection.execute(
            "SELECT a.name, w.thread_id, w.opened_at, w.opened_by, w.closed_at, w.closed_by "
            "FROM waits w JOIN accounts a ON a.id = w.account_id ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        connection.close()
    return events, waits


async def run_until_caught_up(config: Path, database: Path, state: Traffic) -> None:
    """Run without killing until every message of the fake is stored, then stop cleanly."""
    process = await start(config, database, free_port())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT
    while not (database.exists() and len(stored(database)[0]) >= state.total()):
        assert loop.time() < deadline, "the monitor did not catch up with the fake's messages"
        # The monitor is another process: wait for one more of its polls to reach the fake.
        state.kill_after(3)
        await asyncio.wait_for(state.reached.wait(), STEP_TIMEOUT)
    process.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(process.communicate(), STEP_TIMEOUT)
    assert process.returncode == 0, err.decode()[-2000:]
    assert TOKEN.encode() not in err


async def test_fifty_kills_lose_nothing_and_double_nothing(
    tmp_path: Path, traffic: tuple[Traffic, str]
) -> None:
    """The killed-and-restarted store equals a clean run's, event for event, wait for wait."""
    state, url = traffic
    config = write_config(tmp_path, url)
    crashed = tmp_path / "crashed.db"
    kills = 0
    for _round in range(ROUNDS):
        state.write_some()
        port = free_port()
        process = await start(config, crashed, port)
        state.kill_after(state.rng.randint(1, 12))
        hooks = asyncio.create_task(send_webhooks(state, f"http://127.0.0.1:{port}", 3))
        try:
            await asyncio.wait_for(state.reached.wait(), STEP_TIMEOUT)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await hooks
        kills += process.returncode == -signal.SIGKILL
    assert kills == ROUNDS
    await run_until_caught_up(config, crashed, state)
    clean = tmp_path / "clean.db"
    await run_until_caught_up(config, clean, state)
    crashed_events, crashed_waits = stored(crashed)
    clean_events, clean_waits = stored(clean)
    assert len(clean_events) == state.total()
    assert crashed_events == clean_events
    assert crashed_waits == clean_waits
    assert len({row[2] for row in crashed_events}) == len(crashed_events)  # no duplicate ids
