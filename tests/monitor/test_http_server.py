"""The HTTP server: header and idle timeouts, the connection limit, malformed requests, 500s.

Timeouts are driven by short configured values and waited for with bounds (the server closing
a connection is the event); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from monitor.export.metrics import Metrics
from monitor.http.app import build_app
from monitor.http.server import ServerLimits, connection_limit_for, start_server

TOKEN = "rw-TEST-token-in-a-broken-line"
BOUND = 10.0  # seconds: far beyond every timer here; reached only when something is wrong


@dataclass
class Server:
    """A running server, its counters and a switch that holds ``/slow`` requests."""

    port: int
    metrics: Metrics
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def closed(self, reason: str) -> float:
        """Connections the server closed for ``reason``."""
        value = self.metrics.registry.get_sample_value(
            "replywatch_http_connections_closed_total", {"reason": reason}
        )
        return value or 0.0

    def deliveries(self, platform: str, outcome: str) -> float:
        """Counted deliveries of one platform and outcome."""
        value = self.metrics.registry.get_sample_value(
            "replywatch_webhook_deliveries_total", {"route": platform, "outcome": outcome}
        )
        return value or 0.0


Serve = Callable[[ServerLimits], Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start servers with given limits (each stopped after the test)."""
    runners: list[web.AppRunner] = []

    async def start(limits: ServerLimits) -> Server:
        metrics = Metrics()
        metrics.prepare_webhooks("events")
        server = Server(0, metrics)

        async def slow(_request: web.Request) -> web.Response:
            server.started.set()
            await server.release.wait()
            return web.Response(text="done\n")

        async def broken(_request: web.Request) -> web.Response:
            raise RuntimeError(f"a message quoting {TOKEN}")

        hooks = [web.get("/slow", slow), web.post("/hooks/events", broken)]
        app = build_app(Metrics().registry, lambda: (True, {"status": "ok"}), hooks, metrics)
        runner, _guard = await start_server(app, "127.0.0.1", 0, limits, metrics)
        runners.append(runner)
        server.port = int(runner.addresses[0][1])
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


class Connection:
    """A raw client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to the server."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, bytes]:
        """One response with a Content-Length body: its status and body."""
        async with asyncio.timeout(BOUND):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1]), body

    async def closed_by_server(self) -> bool:
        """Wait (bounded) until the server closes the connection."""
        async with asyncio.timeout(BOUND):
            return await self.reader.read() == b""

    async def close(self) -> None:
        """Close from this side."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):  # the server closed it first
            await self.writer.wait_closed()


def get(path: str, keep_alive: bool = True) -> bytes:
    """A GET request's bytes."""
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: " + connection + b"\r\n\r\n"
    )


class LogWaiter(logging.Handler):
    """Sets an event when a record containing ``words`` is logged."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.seen.set()


async def test_a_connection_that_sends_nothing_is_closed(serve: Serve) -> None:
    """No request line within the header timeout: closed and counted."""
    server = await serve(ServerLimits(header_timeout=0.1, idle_timeout=60))
    connection = await Connection.open(server.port)
    assert await connection.closed_by_server()
    await connection.close()
    assert server.closed("header_timeout") == 1


async def test_headers_that_never_end_are_cut(serve: Serve) -> None:
    """A request line and some headers, never the blank line: closed at the header timeout."""
    server = await serve(ServerLimits(header_timeout=0.1, idle_timeout=60))
    connection = await Connection.open(server.port)
    await connection.send(b"POST /hooks/events HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n")
    assert await connection.closed_by_server()
    await connection.close()
    assert server.closed("header_timeout") == 1


async def test_an_idle_keep_alive_connection_is_closed(serve: Serve) -> None:
    """After its answer, a keep-alive connection without a next request closes when idle."""
    server = await serve(ServerLimits(header_timeout=60, idle_timeout=0.1))
    connection = await Connection.open(server.port)
    await connection.send(get("/healthz"))
    assert (await connection.response())[0] == 200
    assert await connection.closed_by_server()
    await connection.close()
    assert server.closed("idle_timeout") == 1 and server.closed("header_timeout") == 0


async def test_a_request_in_progress_is_not_cut(serve: Serve) -> None:
    """A slow answer outlives both timers: only connections without a request are closed."""
    server = await serve(ServerLimits(header_timeout=0.1, idle_timeout=0.1))
    busy = await Connection.open(server.port)
    await busy.send(get("/slow"))
    async with asyncio.timeout(BOUND):
        await server.started.wait()
    # Opened later, so its timer ends later than the busy connection's would have.
    idle = await Connection.open(server.port)
    assert await idle.closed_by_server()
    server.release.set()
    assert await busy.response() == (200, b"done\n")
    await idle.close()
    await busy.close()


async def test_the_limit_closes_the_stalest_idle_connection(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """Over the limit the least recently active idle connection makes room; logged once."""
    server = await serve(ServerLimits(header_timeout=60, idle_timeout=60, max_connections=3))
    below = LogWaiter("below the limit again")
    logging.getLogger("monitor.http").addHandler(below)
    try:
        connections = []
        for _ in range(3):
            connection = await Connection.open(server.port)
            await connection.send(get("/healthz"))
            assert (await connection.response())[0] == 200
            connections.append(connection)
        for index in range(3):
            newcomer = await Connection.open(server.port)
            await newcomer.send(get("/healthz"))
            assert (await newcomer.response())[0] == 200
            assert await connections[index].closed_by_server()
            connections.append(newcomer)
        assert server.closed("evicted") == 3
        for connection in connections:
            await connection.close()
        async with asyncio.timeout(BOUND):
            await below.seen.wait()
    finally:
        logging.getLogger("monitor.http").removeHandler(below)
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.http"]
    assert sum("connection limit reached" in m for m in messages) == 1
    assert sum("below the limit again" in m for m in messages) == 1


async def test_when_every_connection_is_busy_a_new_one_is_closed_at_once(
    serve: Serve,
) -> None:
    """Requests in progress are never evicted: the newcomer is refused instead."""
    server = await serve(ServerLimits(header_timeout=60, idle_timeout=60, max_connections=1))
    busy = await Connection.open(server.port)
    await busy.send(get("/slow"))
    async with asyncio.timeout(BOUND):
        await server.started.wait()
    refused = await Connection.open(server.port)
    assert await refused.closed_by_server()
    assert server.closed("refused") == 1
    server.release.set()
    assert await busy.response() == (200, b"done\n")
    await refused.close()
    await busy.close()


async def test_a_malformed_header_line_is_400_counted_and_logged_without_it(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """A header line without its colon carries a token: neither the answer nor a log has it."""
    server = await serve(ServerLimits())
    connection = await Connection.open(server.port)
    await connection.send(
        b"POST /hooks/events HTTP/1.1\r\nHost: t\r\nAuthorization Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: 2\r\n\r\n[]"
    )
    status, body = await connection.response()
    await connection.close()
    assert status == 400 and b"malformed HTTP request" in body
    assert TOKEN.encode() not in body
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "refused a malformed HTTP request" in logged
    assert TOKEN not in logged and "Bearer" not in logged
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.WARNING)
    assert server.deliveries("http", "malformed") == 1


async def test_a_failure_of_the_server_is_500_counted_and_logged_without_its_message(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """The last resort: the route and the exception type are logged, never its text."""
    server = await serve(ServerLimits())
    connection = await Connection.open(server.port)
    await connection.send(
        b"POST /hooks/events HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n[]"
    )
    status, body = await connection.response()
    await connection.close()
    assert (status, body) == (500, b"internal error\n")
    assert server.deliveries("events", "error") == 1
    errors = [r for r in caplog.records if r.name == "monitor.http" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "/hooks/events" in errors[0].getMessage() and "RuntimeError" in errors[0].getMessage()
    assert TOKEN not in errors[0].getMessage() and errors[0].exc_info is None


@pytest.mark.parametrize(
    ("open_files", "expected"),
    [(1024, 768), (256, 64), (200, 8), (1 << 16, 3 * (1 << 14))],
)
def test_the_limit_keeps_a_reserve_of_descriptors(open_files: int, expected: int) -> None:
    """A quarter of the open files (at least the backlog and 64) stays for everything else."""
    assert connection_limit_for(open_files, backlog=128) == expected


def test_the_default_limit_follows_this_process_open_files() -> None:
    """No max_connections: derived from RLIMIT_NOFILE."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert ServerLimits().connection_limit() == connection_limit_for(soft, 128)
    assert ServerLimits(max_connections=5).connection_limit() == 5
