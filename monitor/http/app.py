"""The HTTP side of a running monitor: ``/healthz``, ``/metrics``, ``/hooks/*``."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from monitor.export.metrics import Metrics

__all__ = ["build_app", "parse_listen"]

log = logging.getLogger("monitor.http")


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:9874`` for IPv6) with a clear error."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:9874")
    return host.strip("[]") or "127.0.0.1", int(port)


MetricsHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    metrics: CollectorRegistry | MetricsHandler,
    health: Callable[[], tuple[bool, dict[str, Any]]],
    hooks: Iterable[web.RouteDef] = (),
    counts: Metrics | None = None,
) -> web.Application:
    """An aiohttp application serving health, metrics and the given webhook routes."""
    app = web.Application(middlewares=[_last_resort(counts)])
    handler = make_aiohttp_handler(metrics) if isinstance(metrics, CollectorRegistry) else metrics

    async def healthz(_request: web.Request) -> web.Response:
        healthy, body = health()
        return web.json_response(body, status=200 if healthy else 503)

    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", handler)])
    app.add_routes(list(hooks))
    return app


def _last_resort(counts: Metrics | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware answering 500 for a failure of the server's own; counted, logged once.

    What a client sends is refused where it is read (4xx with a reason); what reaches this is
    a bug or a broken dependency. The log names the route and the exception's type and frames,
    never its message or anything from the request, which may quote a header or the body.
    """

    @web.middleware
    async def last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as err:
            # Broad on purpose: the last resort of one request. Whatever a handler raised,
            # that request gets a 500 and the server goes on answering the others.
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "(no route)"
            frames = "".join(traceback.format_tb(err.__traceback__)).rstrip()
            log.error(
                "internal error answering %s (%s); where:\n%s",
                route,
                type(err).__name__,
                frames,
                extra={"event": "request_failed", "route": route, "error": type(err).__name__},
            )
            parts = route.split("/")
            if counts is not None and len(parts) > 2 and parts[1] == "hooks":
                counts.webhooks.labels(parts[2], "error").inc()
            return web.Response(status=500, text="internal error\n")

    return last_resort
