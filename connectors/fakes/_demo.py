"""What ``replywatch demo`` needs from a fake: one simulated business and its traffic.

A fake module that the demo should run defines ``demo_traffic() -> DemoTraffic``; the demo finds
it through the platform's record (``connectors.registry.fake_module``) and drives every one the
same way: a customer writes (``write``), the team answers later (``answer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

__all__ = ["DemoTraffic", "Handle"]

# Whatever ``write`` returns for ``answer`` to find the message again.
Handle = Any


@dataclass
class DemoTraffic:
    """One simulated business on one platform's fake server."""

    name: str
    platform: str
    app: web.Application
    ids: dict[str, str]
    secrets: dict[str, str]  # secret key -> value (the demo puts them in the environment)
    write: Callable[[int, datetime], Handle]
    answer: Callable[[Handle, datetime], object]
    arrivals_per_minute: float
    reply_seconds: tuple[float, float]
    unanswered_share: float = 0.0
    tick: Callable[[datetime], None] = lambda _now: None
    channels: tuple[str, ...] = field(default=())
