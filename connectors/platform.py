"""A platform's record: what replywatch knows about it, as data (style rule 7).

Each connector class carries its record as ``record``; a platform that is only pushed or
imported declares a module-level ``RECORD`` instead. ``connectors.registry`` collects them,
so the record is the one place a platform's ids, secrets, channels, default poll interval,
launch day, aliases, webhook route and fake server are written down.

This module is pure (no HTTP library): ``monitor.core`` and the config read records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from connectors.base import Channel

__all__ = ["DEFAULT_LAUNCH", "PlatformSpec", "WebhookRoute"]

# Platforms replywatch has no launch day for: no plausible message is older.
DEFAULT_LAUNCH = date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """How a platform pushes: its ``[webhooks.<name>]`` section and the route it posts to."""

    # The config section and the route's name (one webhook may serve several platforms).
    name: str
    # Where the monitor mounts it; ``<account>`` stands for an account name.
    path: str
    # What ``[webhooks.<name>.secrets]`` must hold.
    secrets: tuple[str, ...]
    # The account id a delivery names its account by (Meta: the Page or Instagram user id);
    # None when the route itself names the account.
    account_id: str | None = None

    def for_account_id(self, key: str) -> WebhookRoute:
        """The same route for a platform whose deliveries name their account by ``key``."""
        return replace(self, account_id=key)


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """The ids and secrets an account on this platform needs, its channels, how it is served."""

    name: str
    ids: tuple[str, ...]
    secrets: tuple[str, ...]
    channels: tuple[Channel, ...]
    default_channel: Channel
    poll_interval_seconds: float = 60.0
    # The channels an account gets when its config names none (default: all of them).
    default_channels: tuple[Channel, ...] | None = None
    # No message on the platform can be older: intake refuses earlier times as implausible.
    launched: date = DEFAULT_LAUNCH
    # Other names a config or an imported file may use (``twitter`` for ``x``).
    aliases: tuple[str, ...] = ()
    webhook: WebhookRoute | None = None
    # The module under ``connectors/fakes/`` serving this platform's fake API (tests, demo);
    # None: the platform's own name. Its ``demo_traffic()``, if any, is what the demo runs.
    fake: str | None = None

    @property
    def unconfigured_channels(self) -> tuple[Channel, ...]:
        """What an account polls when its config does not say."""
        return self.default_channels or self.channels

    @property
    def fake_module(self) -> str:
        """The name of the fake server's module under ``connectors.fakes``."""
        return self.fake or self.name
