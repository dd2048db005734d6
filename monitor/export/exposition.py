"""``/metrics`` that stays fast at 10,000 accounts: pre-rendered bytes plus scrape-time ages.

Rendering a million samples with prometheus_client takes seconds, far too long for a scrape
and for the event loop. So the registry is rendered in the background (after each figures
refresh, in a worker thread) and a scrape serves those bytes, with only the open-wait count
and the oldest wait's age rendered at scrape time, so they are always current. Background
renders are spaced so they cost at most a tenth of a core: at 10,000 accounts the counters
in a scrape can be a minute or so old, the ages never are. A small
deployment, whose registry renders in a few milliseconds, is rendered afresh at every scrape
instead, so its counters are never even a refresh old.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

__all__ = ["ExpositionCache"]

_EOF = b"# EOF\n"
# Below this render time a scrape renders afresh; above it, it serves the background render.
_CHEAP_RENDER_SECONDS = 0.05
# Background renders take at most a tenth of a core: a 3 s render runs every 30 s or less often.
_RENDER_DUTY = 10.0


class ExpositionCache:
    """The registry's exposition in both formats, rendered off the scrape path."""

    def __init__(
        self,
        registry: CollectorRegistry,
        live: Callable[[bool], bytes],
        static: Callable[[bool], bytes] = lambda _openmetrics: b"",
    ) -> None:
        self.registry = registry
        self.live = live
        # Families rendered by their owner straight to text (the figures snapshot), appended
        # to the registry's own render.
        self.static = static
        self._text: bytes | None = None
        self._openmetrics: bytes | None = None
        self._openmetrics_wanted = False
        self.render_seconds = 0.0
        self._rendered_at = -math.inf
        self._lock = threading.Lock()

    @property
    def expensive(self) -> bool:
        """Whether scrapes serve the background render (rendering takes too long to repeat)."""
        return self.render_seconds >= _CHEAP_RENDER_SECONDS

    def background_due(self) -> bool:
        """Whether a background render should run now (only when scrapes do not render)."""
        if not self.expensive:
            return False
        return time.monotonic() - self._rendered_at >= _RENDER_DUTY * self.render_seconds

    def refresh(self) -> None:
        """Render the registry now (call from a worker thread)."""
        start = time.perf_counter()
        text = generate_latest(self.registry) + self.static(False)
        openmetrics = None
        if self._openmetrics_wanted:
            rendered: bytes = generate_openmetrics(self.registry)  # type: ignore[no-untyped-call]
            openmetrics = rendered.removesuffix(_EOF) + self.static(True)
        with self._lock:
            self._text, self._openmetrics = text, openmetrics
            self.render_seconds = time.perf_counter() - start
            self._rendered_at = time.monotonic()

    def stale(self, openmetrics: bool) -> bool:
        """Whether a scrape in this format must render first (nothing cached, or cheap)."""
        if openmetrics and not self._openmetrics_wanted:
            self._openmetrics_wanted = True
            self._openmetrics = None
        cached = self._openmetrics if openmetrics else self._text
        return cached is None or not self.expensive

    def body(self, openmetrics: bool) -> bytes:
        """The full exposition: the last render plus the scrape-time series."""
        with self._lock:
            cached = self._openmetrics if openmetrics else self._text
        assert cached is not None, "call refresh() first"
        return cached + self.live(openmetrics) + (_EOF if openmetrics else b"")

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler for ``/metrics`` (OpenMetrics when the scraper asks for it)."""
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        if self.stale(openmetrics):
            await asyncio.to_thread(self.refresh)
        response = web.Response(body=self.body(openmetrics))
        response.headers["Content-Type"] = OPENMETRICS_TYPE if openmetrics else CONTENT_TYPE_LATEST
        response.enable_compression()
        return response
