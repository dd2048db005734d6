"""The demo's other platforms: every platform whose fake server offers demo traffic.

Each platform's record names its fake (``connectors/fakes/<module>.py``); a fake that defines
``demo_traffic()`` gives one simulated business: the account it adds to the demo config and how
a customer writes and the team answers there. The demo's simulation drives them all the same
way. Meta is the exception: the demo's own businesses (``demo.BUSINESSES``) run on its fake,
with webhook deliveries besides polls.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.fakes._demo import DemoTraffic
from connectors.registry import CONNECTORS, fake_module

__all__ = ["DemoPlatform", "demo_platforms"]

# The demo's name for one simulated business on one platform.
DemoPlatform = DemoTraffic


def demo_platforms() -> list[DemoPlatform]:
    """One business on every platform whose fake makes demo traffic (all but Meta's)."""
    makers: dict[str, Callable[[], DemoTraffic]] = {}
    for platform in CONNECTORS:
        module = fake_module(platform)
        maker = getattr(module, "demo_traffic", None)
        if maker is not None:
            # Platforms sharing one fake share its one business.
            makers.setdefault(module.__name__, maker)
    return [make() for make in makers.values()]
