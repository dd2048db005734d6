"""The HTTP server under the app: bounded connections, timeouts, malformed requests answered.

aiohttp alone keeps a connection that never completes its request open for an hour, accepts
connections until the process runs out of file descriptors (and then asyncio logs every failed
accept, thousands of lines a second), and logs a malformed request with its raw header line,
which may carry a token. :func:`start_server` serves an application with:

- a header timeout: a connection completes its request line and headers within
  ``header_timeout`` of connecting, or of the first byte of its next request;
- an idle timeout: a keep-alive connection without a request is closed after ``idle_timeout``;
- a connection limit below the open-files limit (RLIMIT_NOFILE less a reserve for the store,
  outgoing requests and log files): a connection over it closes the least recently active
  idle one, or is closed at once when every connection is busy with a request. One log line
  says the limit was reached, one that the server is below it again;
- malformed HTTP answered 400 with a reason that quotes nothing the client sent, counted as
  ``replywatch_webhook_deliveries_total{platform="http", outcome="malformed"}`` and logged
  in one line without header values.

Connections the server closes itself are counted in ``replywatch_http_connections_closed``.
A request in progress is never cut by these timers; reading its body is bounded by the hooks
(:func:`monitor.http.webhooks.read_limited`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import resource
import sys
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import http_exceptions, web

from monitor.export.metrics import Metrics

__all__ = [
    "ConnectionGuard",
    "GuardedHandler",
    "ServerLimits",
    "connection_limit_for",
    "start_server",
    "track_requests",
]

log = logging.getLogger("monitor.http")

# Errors a client causes: answered or dropped, never logged with a traceback or their text
# (aiohttp's messages quote the raw request line or header).
_CLIENT_ERRORS = (http_exceptions.HttpProcessingError, web.RequestPayloadError, ConnectionError)
# aiohttp before 3.10 has no BadHttpMethod; then nothing is taken for "not HTTP".
_NOT_HTTP: tuple[type[Exception], ...] = tuple(
    getattr(http_exceptions, name) for name in ("BadHttpMethod",) if hasattr(http_exceptions, name)
)
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.LineTooLong, "a line or header is too long"),
    (http_exceptions.InvalidHeader, "an invalid header"),
    (http_exceptions.BadStatusLine, "an invalid request line"),
    (http_exceptions.InvalidURLError, "an invalid URL"),
    (http_exceptions.TransferEncodingError, "an invalid chunked body"),
    (http_exceptions.ContentLengthError, "an invalid Content-Length"),
)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long a connection may take over its request and how many may be open."""

    header_timeout: float = 15.0
    idle_timeout: float = 75.0
    # None: derived from the open-files limit (connection_limit_for).
    max_connections: int | None = None
    backlog: int = 128

    def connection_limit(self) -> int:
        """The most connections served at once."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return connection_limit_for(soft, self.backlog)


def connection_limit_for(open_files: int, backlog: int = 128) -> int:
    """The connections to allow under a soft open-files limit, keeping a reserve of descriptors."""
    if open_files == resource.RLIM_INFINITY or open_files > 1 << 20:
        open_files = 1 << 20
    # The reserve keeps descriptors for the store, outgoing sessions, log files, and for the
    # connections asyncio accepts in one go (up to the backlog) before any of them is checked.
    reserve = max(backlog + 64, open_files // 4)
    return max(8, open_files - reserve)


class _Phase(enum.Enum):
    WAITING = "waiting for a request"
    BUSY = "serving a request"
    IDLE = "idle"


class ConnectionGuard:
    """The open connections, least recently active first; enforces the limit and counts."""

    def __init__(self, limits: ServerLimits, metrics: Metrics | None = None) -> None:
        self.limits = limits
        self.limit = limits.connection_limit()
        # Hysteresis, so a server held at the limit logs one line, not one per connection.
        self.low_water = self.limit - max(1, self.limit // 10)
        self.metrics = metrics
        self._open: OrderedDict[GuardedHandler, None] = OrderedDict()
        self._full = False

    @property
    def open_connections(self) -> int:
        """How many connections are open now."""
        return len(self._open)

    def admit(self, connection: GuardedHandler) -> bool:
        """Make room for a new connection (closing the stalest idle one), or refuse it."""
        if len(self._open) >= self.limit:
            victim = next((c for c in self._open if c.phase is not _Phase.BUSY), None)
            if victim is None:
                self._count("refused")
                self._level()
                return False
            self._open.pop(victim)
            self._count("evicted")
            victim.close_now()
        self._open[connection] = None
        self._level()
        return True

    def touch(self, connection: GuardedHandler) -> None:
        """Mark the connection as the most recently active."""
        if connection in self._open:
            self._open.move_to_end(connection)

    def forget(self, connection: GuardedHandler) -> None:
        """The connection is closed."""
        if connection in self._open:
            del self._open[connection]
            self._level()

    def expire(self, connection: GuardedHandler, reason: str) -> None:
        """Close a connection that took too long."""
        self._count(reason)
        self.forget(connection)
        connection.close_now()

    def malformed(self) -> None:
        """Count a request refused before it reached the application."""
        if self.metrics is not None:
            self.metrics.webhooks.labels("http", "malformed").inc()

    def _count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.connections_closed.labels(reason).inc()

    def _level(self) -> None:
        count = len(self._open)
        if not self._full and count >= self.limit:
            self._full = True
            log.warning(
                "connection limit reached (%d open): new connections close the least "
                "recently active idle ones",
                count,
                extra={"event": "connection_limit_reached", "open": count},
            )
        elif self._full and count <= self.low_water:
            self._full = False
            log.info(
                "connections below the limit again (%d open of %d)",
                count,
                self.limit,
                extra={"event": "connection_limit_cleared", "open": count},
            )


class GuardedHandler(web.RequestHandler):
    """aiohttp's connection handler with the guard's timers, limit and quiet error handling."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **kwargs)
        self.guard = guard
        self.phase = _Phase.WAITING
        self._admitted = False
        self._serving = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection (or close it at once) and start the header timer."""
        if not self.guard.admit(self):
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm(_Phase.WAITING, self.guard.limits.header_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the timer and forget the connection."""
        if not self._admitted:
            return
        self._disarm()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """The first bytes of a new request start its header timer."""
        if data and self.phase is _Phase.IDLE:
            self._arm(_Phase.WAITING, self.guard.limits.header_timeout)
            self.guard.touch(self)
        super().data_received(data)

    def request_started(self) -> None:
        """A request reached the application: no timer cuts it."""
        self._serving += 1
        self.phase = _Phase.BUSY
        self._disarm()
        self.guard.touch(self)

    def request_finished(self) -> None:
        """The application answered: the connection idles until its next request."""
        self._serving -= 1
        if self._serving == 0:
            self._arm(_Phase.IDLE, self.guard.limits.idle_timeout)
            self.guard.touch(self)

    def close_now(self) -> None:
        """Close the connection without waiting for anything."""
        self._disarm()
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp could not parse: 400 with a reason that quotes nothing."""
        if not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), None)
        reason = reason or "a malformed request"
        self.guard.malformed()
        # Not HTTP at all (TLS to a plain port, scanners): counted, but not worth a warning.
        level = logging.DEBUG if isinstance(exc, _NOT_HTTP) else logging.WARNING
        log.log(
            level,
            "refused a malformed HTTP request (%d): %s",
            status,
            reason,
            extra={"event": "malformed_request_refused", "status": status},
        )
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        response = web.Response(status=status, text=f"malformed HTTP request: {reason}\n")
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """Log without the exception's text, which may quote a request line or header."""
        given = kwargs.get("exc_info")
        exc = given if isinstance(given, BaseException) else sys.exc_info()[1]
        if isinstance(exc, _CLIENT_ERRORS):
            log.debug(
                "a client's connection failed: %s",
                type(exc).__name__,
                extra={"event": "client_connection_failed", "error": type(exc).__name__},
            )
            return
        try:
            # aiohttp's own texts ("Error handling request from %s", the peer's address).
            what = str(args[0]) % args[1:] if args else "error"
        except (TypeError, ValueError):
            what = str(args[0])
        frames = "" if exc is None else "".join(traceback.format_tb(exc.__traceback__))
        name = "unknown" if exc is None else type(exc).__name__
        log.error(
            "HTTP server: %s (%s); where:\n%s",
            what,
            name,
            frames.rstrip(),
            extra={"event": "http_server_failed", "error": name},
        )

    def _arm(self, phase: _Phase, delay: float) -> None:
        self.phase = phase
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.phase is _Phase.BUSY:
            return
        reason = "header_timeout" if self.phase is _Phase.WAITING else "idle_timeout"
        self.guard.expire(self, reason)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def track_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Mark the connection busy while the application handles a request."""
    connection = request.protocol
    if not isinstance(connection, GuardedHandler):
        return await handler(request)
    connection.request_started()
    try:
        return await handler(request)
    finally:
        connection.request_finished()


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections are :class:`GuardedHandler` s."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner, backlog=guard.limits.backlog)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        """The URL this site serves."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen, with a guarded handler per connection."""
        await super().start()
        server = self._runner.server
        assert server is not None
        limits = self._guard.limits
        # aiohttp's own keep-alive timer only backs ours up (ours counts what it closes).
        backstop = 2 * max(limits.idle_timeout, limits.header_timeout)

        def connection() -> GuardedHandler:
            return GuardedHandler(
                server, self._guard, keepalive_timeout=backstop, access_log=None, logger=log
            )

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            connection, self._host, self._port, backlog=self._backlog
        )


async def start_server(
    app: web.Application,
    host: str,
    port: int,
    limits: ServerLimits | None = None,
    metrics: Metrics | None = None,
) -> tuple[web.AppRunner, ConnectionGuard]:
    """Serve ``app`` on ``host:port``; ``runner.cleanup()`` stops it."""
    guard = ConnectionGuard(limits or ServerLimits(), metrics)
    if metrics is not None:
        metrics.prepare_webhooks("http")
    if track_requests not in app.middlewares:
        # Outermost: a connection counts as busy for the whole of a request, or a timer
        # meant for idle connections would cut it.
        app.middlewares.insert(0, track_requests)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await _GuardedSite(runner, host, port, guard).start()
    except BaseException:
        # Even when cancelled: the runner's resources are released, then the error goes on.
        await runner.cleanup()
        raise
    return runner, guard
