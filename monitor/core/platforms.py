"""What replywatch knows about each platform, as a table rather than branches (style rule 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from connectors.base import Channel

__all__ = ["PLATFORMS", "PLATFORM_ALIASES", "PlatformSpec", "canonical_platform"]


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """The ids and secrets an account on this platform needs, and its channels."""

    name: str
    ids: tuple[str, ...]
    secrets: tuple[str, ...]
    channels: tuple[Channel, ...]
    default_channel: Channel
    poll_interval_seconds: float = 60.0
    # The channels an account gets when its config names none (default: all of them).
    default_channels: tuple[Channel, ...] | None = None
    # No message on the platform can be older: intake refuses earlier times as implausible.
    launched: date = date(2000, 1, 1)

    @property
    def unconfigured_channels(self) -> tuple[Channel, ...]:
        """What an account polls when its config does not say."""
        return self.default_channels or self.channels


PLATFORMS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        PlatformSpec(
            "facebook",
            ("page_id",),
            ("access_token",),
            ("dm", "comment"),
            "dm",
            launched=date(2004, 2, 4),
        ),
        PlatformSpec(
            "instagram",
            ("ig_user_id",),
            ("access_token",),
            ("dm", "comment"),
            "dm",
            launched=date(2010, 10, 6),
        ),
        # DMs need a user-context token; an app's bearer token reads mentions only, so mentions
        # are the default and DMs are asked for with channels = ["mention", "dm"].
        PlatformSpec(
            "x",
            ("user_id",),
            ("bearer_token",),
            ("mention", "dm"),
            "mention",
            default_channels=("mention",),
            launched=date(2006, 3, 21),
        ),
        PlatformSpec(
            "telegram", (), ("bot_token",), ("dm",), "dm", 5.0, launched=date(2013, 8, 14)
        ),
        PlatformSpec(
            "google_business",
            ("account_id", "location_id"),
            ("access_token",),
            ("review",),
            "review",
            300.0,
            # Google Places reviews, which Business Profile inherited.
            launched=date(2007, 1, 1),
        ),
        PlatformSpec(
            "google_play",
            ("package_name",),
            ("access_token",),
            ("review",),
            "review",
            900.0,
            launched=date(2008, 10, 22),
        ),
        PlatformSpec(
            "app_store",
            ("app_id", "issuer_id", "key_id"),
            ("private_key",),
            ("review",),
            "review",
            900.0,
            launched=date(2008, 7, 10),
        ),
        PlatformSpec(
            "trustpilot",
            ("business_unit_id",),
            ("api_key", "access_token"),
            ("review",),
            "review",
            600.0,
            launched=date(2007, 1, 1),
        ),
    )
}

PLATFORM_ALIASES = {"twitter": "x", "fb": "facebook", "ig": "instagram"}


def canonical_platform(name: str) -> str:
    """Lower-case a platform name and resolve aliases (``twitter`` is ``x``)."""
    key = name.strip().lower()
    return PLATFORM_ALIASES.get(key, key)
