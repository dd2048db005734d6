"""Hostile HTTP at the monitor's server: random header bytes, nesting, surrogates, encodings.

Property: whatever a client sends, the answer is never a 500 and the request is counted
exactly once in ``replywatch_webhook_deliveries_total``. The server runs in a thread with its
own event loop; hypothesis drives a plain socket client. CI runs 2,000 cases per target;
``REPLYWATCH_FUZZ_EXAMPLES`` sets another number.

And a flood: more idle connections than the process may open files, against a server started
with a lowered RLIMIT_NOFILE in a subprocess: ``/healthz`` and a hook still answer, and the log
stays a few lines long.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import json
import os
import socket
import sys
import textwrap
import threading
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Event
from connectors.telegram_webhook import SECRET_HEADER
from monitor.config.loading import Config, load_config
from monitor.core.intake_bounds import check_identifier, has_lone_surrogate
from monitor.export.metrics import Metrics
from monitor.http.app import build_app
from monitor.http.events_hook import EventsHook
from monitor.http.server import ServerLimits, start_server
from monitor.http.webhooks import MetaWebhook, TelegramWebhook
from tests.monitor.test_hostile_intake import deliveries_counted
from tests.reliability.test_fuzz_intake import FUZZ

TOKEN = "fuzz-events-TEST-token"
APP_SECRET = "fuzz-app-TEST-secret"
TG_SECRET = "fuzz-tg-TEST-secret"
ROOT = Path(__file__).resolve().parents[2]
CONFIG_TEXT = """
[[accounts]]
name = "helpdesk"
platform = "whatsapp"
source = "push"
"""
# A time the plausibility window accepts: in the past, after every platform's launch.
CREATED_MS = int(datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp() * 1000)
PATHS = ("/hooks/events", "/hooks/meta", "/hooks/telegram/shop-tg")


class ServerThread:
    """The three hooks behind the monitor's HTTP server, in a thread of their own."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.stored: list[Event] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()

        async def store(events: Sequence[Event]) -> int:
            self.stored.extend(events)
            return len(events)

        async def remember(_account: str, _owners: Any) -> None:
            return None

        metrics = self.metrics
        events = EventsHook(TOKEN, self.config, store, metrics, body_timeout=5)
        meta = MetaWebhook(APP_SECRET, "v", {("facebook", "100"): "shop"}, store, metrics)
        telegram = TelegramWebhook(TG_SECRET, {"shop-tg": {}}, {}, store, remember, metrics)
        hooks = events.routes() + meta.routes() + telegram.routes()
        app = build_app(Metrics().registry, lambda: (True, {}), hooks, metrics)
        runner, _guard = await start_server(app, "127.0.0.1", 0, ServerLimits(), metrics)
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def counted(self) -> float:
        """Every delivery counted so far, whatever its platform and outcome."""
        return deliveries_counted(self.metrics)

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request (the server closes after it); its status and body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as client:
            client.sendall(request)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        status = answer.split(b" ", 2)[1]
        return int(status), answer.partition(b"\r\n\r\n")[2]

    def check(self, request: bytes) -> tuple[int, bytes]:
        """Never a 500; counted exactly once."""
        before = self.counted()
        status, body = self.exchange(request)
        assert status < 500, (status, body[:200], request[:300])
        assert self.counted() == before + 1, (status, body[:200], request[:300])
        return status, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """One server for the whole module."""
    path = tmp_path_factory.mktemp("hostile") / "replywatch.toml"
    path.write_text(CONFIG_TEXT)
    with ServerThread(load_config(path)) as running:
        yield running


def request(path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A POST with the given headers (raw bytes), a right Content-Length, and no keep-alive."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: fuzz"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def credentials(path: str, body: bytes) -> tuple[bytes, bytes]:
    """The right credential header of a hook for ``body``."""
    if path == "/hooks/events":
        return b"Authorization", b"Bearer " + TOKEN.encode()
    if path == "/hooks/meta":
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return b"X-Hub-Signature-256", b"sha256=" + digest.encode()
    return SECRET_HEADER.encode(), TG_SECRET.encode()


# Headers that change how a request is framed would make one test request into two.
_FRAMING = {b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
header_names = st.one_of(
    st.sampled_from(
        [
            b"Authorization",
            b"X-Hub-Signature-256",
            SECRET_HEADER.encode(),
            b"Content-Encoding",
            b"Content-Type",
            b"Host",
            b"Accept",
        ]
    ),
    st.binary(min_size=1, max_size=20).filter(
        lambda name: not any(c in name for c in b"\r\n:") and name.lower() not in _FRAMING
    ),
)
# Any bytes but a line break: 0x00-0x1F, 0x7F, 0x80-0xFF and UTF-8 all included.
header_values = st.binary(max_size=60).filter(
    lambda value: b"\r" not in value and b"\n" not in value
)


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    headers=st.lists(st.tuples(header_names, header_values), max_size=4),
    authenticated=st.booleans(),
    body=st.sampled_from([b"{}", b"[]", b'{"events": []}', b"\xff\xfe", b""]),
)
def test_random_header_bytes_are_never_a_500_and_always_counted(
    server: ServerThread,
    path: str,
    headers: list[tuple[bytes, bytes]],
    authenticated: bool,
    body: bytes,
) -> None:
    """Any header names and values, with or without the right credential."""
    if authenticated:
        headers = [credentials(path, body), *headers]
    server.check(request(path, headers, body))


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    depth=st.one_of(st.integers(0, 2000), st.integers(900, 1100), st.just(100_000)),
    kind=st.sampled_from([b"[]", b'{"a":}']),
)
def test_any_nesting_depth_is_never_a_500(
    server: ServerThread, path: str, depth: int, kind: bytes
) -> None:
    """Authenticated bodies nested to any depth: an answer, counted, never a RecursionError."""
    opening, closing = (b"[", b"]") if kind == b"[]" else (b'{"a":', b"}")
    body = opening * depth + b"1" * (depth > 0) + closing * depth
    server.check(request(path, [credentials(path, body)], body))


ids = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"), st.characters(categories=["Cs"]), st.sampled_from("a1_\x00")
    ),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(
    message_ids=st.lists(ids, min_size=1, max_size=6),
    thread_id=ids,
    text=st.text(alphabet=st.characters(categories=["Cs", "Ll", "So", "Cc"]), max_size=20),
)
def test_surrogates_reject_only_their_own_events(
    server: ServerThread, message_ids: list[str], thread_id: str, text: str
) -> None:
    """Lone surrogates and controls in ids and text: per-item results; nothing unstorable kept."""
    items = [
        {
            "platform": "whatsapp",
            "account": "helpdesk",
            "thread_id": thread_id,
            "message_id": message_id,
            "author_role": "customer",
            "created_at": "2026-11-20T09:00:00Z",
            "text": text,
        }
        for message_id in message_ids
    ]
    body = json.dumps({"events": items}).encode()
    before = len(server.stored)
    status, answer = server.check(
        request("/hooks/events", [credentials("/hooks/events", body)], body)
    )
    assert status == 200
    results = json.loads(answer)["results"]
    assert len(results) == len(items)
    for item, result in zip(items, results, strict=True):
        if not all(_storable(v.strip()) for v in (item["message_id"], thread_id)):
            assert result["status"] == "rejected", (item, result)
    for stored in server.stored[before:]:
        for value in (stored.thread_id, stored.message_id, stored.text_excerpt or ""):
            assert not has_lone_surrogate(value)


@FUZZ
@given(
    mids=st.lists(ids, min_size=1, max_size=4),
)
def test_surrogates_in_a_signed_meta_delivery_are_skipped_alone(
    server: ServerThread, mids: list[str]
) -> None:
    """A signed delivery with unstorable message ids: 200, the storable ones kept."""
    messaging = [
        {
            "sender": {"id": "7"},
            "recipient": {"id": "100"},
            "timestamp": CREATED_MS,
            "message": {"mid": mid},
        }
        for mid in mids
    ]
    document = {"object": "page", "entry": [{"id": "100", "time": 1, "messaging": messaging}]}
    body = json.dumps(document).encode()
    before = len(server.stored)
    status, _answer = server.check(request("/hooks/meta", [credentials("/hooks/meta", body)], body))
    assert status == 200
    kept = server.stored[before:]
    assert all(not has_lone_surrogate(e.message_id) for e in kept)
    assert {e.message_id for e in kept} == {m for m in mids if _storable(m)}


def _storable(value: str) -> bool:
    try:
        check_identifier("id", value)
    except ValueError:
        return False
    return True


def _encoded(coding: bytes, payload: bytes, mangle: bool) -> bytes:
    if coding.strip().lower() == b"gzip":
        data = gzip.compress(payload)
    elif coding.strip().lower() == b"deflate":
        data = zlib.compress(payload)
    else:
        data = payload
    return data[: len(data) // 2] if mangle else data


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    coding=st.one_of(
        st.sampled_from([b"gzip", b"GZIP", b"deflate", b"identity", b"br", b"zstd", b"gzip, br"]),
        header_values,
    ),
    mangle=st.booleans(),
    authenticated=st.booleans(),
)
def test_any_content_encoding_is_never_a_500(
    server: ServerThread, path: str, coding: bytes, mangle: bool, authenticated: bool
) -> None:
    """Real, truncated, unknown and random encodings: an answer with a reason, counted."""
    body = _encoded(coding, b'{"events": []}', mangle)
    headers = [(b"Content-Encoding", coding)]
    if authenticated:
        headers.append(credentials(path, body))
    server.check(request(path, headers, body))


FLOOD_SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from collections.abc import Sequence

    soft = int(sys.argv[1])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")

    from monitor.http.app import build_app
    from monitor.config.loading import load_config
    from monitor.http.events_hook import EventsHook
    from monitor.http.server import ServerLimits, start_server
    from monitor.export.metrics import Metrics

    async def main() -> None:
        config = load_config(sys.argv[2])

        async def store(events: Sequence[object]) -> int:
            return len(events)

        metrics = Metrics()
        hook = EventsHook(sys.argv[3], config, store, metrics)
        app = build_app(metrics.registry, lambda: (True, {"status": "ok"}), hook.routes(), metrics)
        limits = ServerLimits(header_timeout=600, idle_timeout=600)
        runner, guard = await start_server(app, "127.0.0.1", 0, limits, metrics)
        print(runner.addresses[0][1], guard.limit, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.fixture
async def flood_server(
    tmp_path: Path,
) -> AsyncIterator[tuple[int, int, asyncio.subprocess.Process]]:
    """A server limited to 256 open files, in a subprocess: (port, connection limit, process)."""
    script = tmp_path / "flood_server.py"
    script.write_text(FLOOD_SERVER)
    config = tmp_path / "replywatch.toml"
    config.write_text(CONFIG_TEXT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "256",
        str(config),
        TOKEN,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    async with asyncio.timeout(60):
        port, limit = (int(part) for part in (await process.stdout.readline()).split())
    yield port, limit, process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_a_flood_of_idle_connections_leaves_health_and_hooks_answering(
    flood_server: tuple[int, int, asyncio.subprocess.Process],
) -> None:
    """400 idle connections against 256 open files: /healthz and a hook answer; 2 log lines."""
    port, limit, process = flood_server
    assert limit < 256
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        # Bounded: a server that stopped accepting leaves connects hanging in the backlog.
        async with asyncio.timeout(60):
            for _ in range(400):
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            health = await _exchange(
                port, b"GET /healthz HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"
            )
            body = json.dumps([]).encode()
            hook = await _exchange(
                port,
                request("/hooks/events", [credentials("/hooks/events", body)], body),
            )
    finally:
        for _reader, writer in idle:
            writer.close()
        for _reader, writer in idle:
            with contextlib.suppress(ConnectionError):  # evicted by the server
                await writer.wait_closed()
    assert health.startswith(b"HTTP/1.1 200") and hook.startswith(b"HTTP/1.1 200")
    process.kill()
    await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode(errors="replace").splitlines()
    assert sum("connection limit reached" in line for line in log) == 1, log[:20]
    assert len(log) < 10, log[:20]
    assert not any("out of system resource" in line for line in log)


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer
