"""`replywatch run` as a user starts it: backfill, /healthz, /metrics, one instance, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import create_engine, text

from connectors.fakes.meta import FakeMeta

TOKEN = "EAA-RUN-TEST-SECRET-TOKEN-77"
LINE_TIMEOUT = 30.0


@pytest.fixture
async def fake_url() -> AsyncIterator[tuple[FakeMeta, str]]:
    """A fake Page with a week of conversations, served on 127.0.0.1."""
    fake = FakeMeta()
    fake.add_page("100", TOKEN)
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(12):
        fake.customer_message("100", f"c{i}", now - timedelta(hours=3 * i + 1))
        fake.business_reply("100", f"c{i}", now - timedelta(hours=3 * i + 1, minutes=-7))
    fake.customer_message("100", "old", now - timedelta(days=30))
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield fake, str(server.make_url("/")).rstrip("/")
    await server.close()


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "replywatch.toml"
    path.write_text(f"""
[replywatch]
backfill = "7d"

[[accounts]]
name = "shop-fb"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
poll_interval = "2s"
base_url = "{url}"
secrets = {{ access_token = "env:SHOP_TOKEN" }}

[[accounts]]
name = "shop-x"
platform = "x"
ids = {{ user_id = "1" }}
secrets = {{ bearer_token = "env:SHOP_X_TOKEN" }}
""")
    return path


# Every monitor a test started, so none outlives a failed test (see stop_leftovers).
_STARTED: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def stop_leftovers() -> AsyncIterator[None]:
    """Kill the monitors a test left running: an assertion can fail before it stops them."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def start(
    tmp_path: Path, url: str, database: str | None = None
) -> asyncio.subprocess.Process:
    """`replywatch run` as a subprocess against the fake, on SQLite unless told otherwise."""
    # SHOP_X_TOKEN is left unset: that account cannot be polled and says why.
    env = {k: v for k, v in os.environ.items() if k != "SHOP_X_TOKEN"}
    env["SHOP_TOKEN"] = TOKEN
    store = database or f"sqlite:///{tmp_path / 'rw.db'}"
    command = [
        "-m",
        "monitor.cli",
        "--config",
        str(write_config(tmp_path, url)),
        "--database",
        store,
        "run",
        "--listen",
        "127.0.0.1:0",
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _STARTED.append(process)
    return process


async def read_until(process: asyncio.subprocess.Process, words: str) -> list[str]:
    """Lines of stdout up to and including the first one containing ``words``."""
    assert process.stdout is not None
    lines = []
    while True:
        raw = await asyncio.wait_for(process.stdout.readline(), LINE_TIMEOUT)
        if not raw:
            raise AssertionError(f"process ended before {words!r}: {lines}")
        lines.append(raw.decode())
        if words in lines[-1]:
            return lines


async def test_run_backfills_serves_and_stops_cleanly(
    tmp_path: Path, fake_url: tuple[FakeMeta, str], store_url: str
) -> None:
    """The full life of a monitor, observed from outside, on SQLite and on PostgreSQL."""
    _fake, url = fake_url
    process = await start(tmp_path, url, store_url)
    lines = await read_until(process, "backfill finished")
    text_out = "".join(lines)
    address = next(ln for ln in lines if "serving" in ln).split("serving ")[1].split(" ")[0]
    assert (
        "shop-x: not polled: credentials unavailable: environment variable SHOP_X_TOKEN is not set"
        in text_out
    )
    assert "backfill 1/1: facebook/shop-fb done, 24 event(s) stored" in text_out
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{address}/healthz") as response:
            health = await response.json()
            assert response.status == 200
        async with session.get(f"{address}/metrics") as response:
            metrics = await response.text()
    assert health["scheduler"] == "running"
    assert health["accounts"]["shop-fb"]["state"] == "ok"
    assert health["accounts"]["shop-fb"]["last_success"] is not None
    assert 'replywatch_polls_total{outcome="success",platform="facebook"}' in metrics
    assert TOKEN not in metrics
    assert "# TYPE replywatch_response_rate_ratio gauge" in metrics
    assert (
        'replywatch_target_response_seconds{account="shop-fb",platform="facebook",profile="strict"}'
        " 900.0" in metrics
    )
    assert (
        'replywatch_account_state{account="shop-fb",platform="facebook",state="ok"} 1.0' in metrics
    )

    second = await start(tmp_path, url, store_url)
    _out, err = await asyncio.wait_for(second.communicate(), LINE_TIMEOUT)
    assert second.returncode == 2
    assert b"already running" in err

    process.send_signal(signal.SIGTERM)
    rest, err = await asyncio.wait_for(process.communicate(), LINE_TIMEOUT)
    assert process.returncode == 0, err.decode()
    assert b"stopping" in rest
    assert TOKEN.encode() not in rest + err
    engine = create_engine(store_url)
    with engine.connect() as connection:
        events = connection.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
        waits = connection.execute(text("SELECT COUNT(*), COUNT(closed_at) FROM waits")).one()
    engine.dispose()
    # 12 conversations of 2 messages in the last week; the 30-day-old one is outside backfill.
    assert events == 24 and tuple(waits) == (12, 12)


async def test_restart_resumes_from_the_stored_cursor(
    tmp_path: Path, fake_url: tuple[FakeMeta, str]
) -> None:
    """A second run has nothing to backfill and stores only what is new."""
    fake, url = fake_url
    first = await start(tmp_path, url)
    await read_until(first, "backfill finished")
    first.send_signal(signal.SIGINT)
    await asyncio.wait_for(first.communicate(), LINE_TIMEOUT)
    fake.customer_message("100", "late", datetime.now(UTC).replace(microsecond=0))
    second = await start(tmp_path, url)
    lines = await read_until(second, "watching")
    assert not any("backfilling" in line for line in lines)
    second.send_signal(signal.SIGTERM)
    await asyncio.wait_for(second.communicate(), LINE_TIMEOUT)
    assert second.returncode == 0
