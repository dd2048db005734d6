"""The HTTP side of a running monitor: ``/healthz``, ``/metrics``, ``/hooks/*``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

__all__ = ["build_app", "parse_listen"]


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:9874`` for IPv6) with a clear error."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:9874")
    return host.strip("[]") or "127.0.0.1", int(port)


MetricsHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    metrics: CollectorRegistry | MetricsHandler,
    health: Callable[[], tuple[bool, dict[str, Any]]],
    hooks: Iterable[web.RouteDef] = (),
) -> web.Application:
    """An aiohttp application serving health, metrics and the given webhook routes."""
    app = web.Application()
    handler = make_aiohttp_handler(metrics) if isinstance(metrics, CollectorRegistry) else metrics

    async def healthz(_request: web.Request) -> web.Response:
        healthy, body = health()
        return web.json_response(body, status=200 if healthy else 503)

    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", handler)])
    app.add_routes(list(hooks))
    return app
