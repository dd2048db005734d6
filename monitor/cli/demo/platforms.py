"""The demo's other platforms: X, Telegram and four review sites, each on its own fake server.

Each :class:`DemoPlatform` knows its fake (the one the tests use), the account it adds to the
demo config, and how a customer writes and the team answers there. The demo's simulation
drives them all the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.fakes.app_store import FakeAppStore
from connectors.fakes.google_business import FakeGoogleBusiness
from connectors.fakes.google_play import FakeGooglePlay
from connectors.fakes.telegram import FakeTelegram
from connectors.fakes.trustpilot import FakeTrustpilot
from connectors.fakes.x import FakeX

__all__ = ["DemoPlatform", "demo_platforms"]

Handle = Any


@dataclass
class DemoPlatform:
    """One simulated business on one platform."""

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


def _x() -> DemoPlatform:
    token = "demo-x-token"
    fake = FakeX(app_token=token)
    fake.add_user("900001", "airline_help")

    def write(n: int, at: datetime) -> Handle:
        customer = f"91{n:06d}"
        fake.add_user(customer, f"traveller{n}")
        return fake.customer_mention("900001", customer, at)

    return DemoPlatform(
        "airline-x",
        "x",
        fake.app,
        {"user_id": "900001"},
        {"bearer_token": token},
        write,
        lambda post, at: fake.business_reply("900001", post, at),
        5,
        (6, 30),
        0.1,
        channels=("mention",),
    )


def _telegram() -> DemoPlatform:
    token = "7000000001:AAHdemoTOKENfor_the_replywatch_demo_0123"
    fake = FakeTelegram(token)
    connection = fake.add_business_connection(
        5100000001, datetime.now(UTC), connection_id="BCdemo0001AAAAdTb6"
    )
    rng = random.Random(7)

    def write(n: int, at: datetime) -> Handle:
        customer = 6100000000 + n
        fake.customer_message(connection, customer, at)
        if rng.random() < 0.2:  # an away message: automated, never an answer
            fake.away_message(connection, customer, at)
        return customer

    return DemoPlatform(
        "florist-telegram",
        "telegram",
        fake.app,
        {},
        {"bot_token": token},
        write,
        lambda customer, at: fake.business_reply(connection, customer, at),
        4,
        (4, 20),
    )


def _google_business() -> DemoPlatform:
    token = "ya29.demo-business-token"
    fake = FakeGoogleBusiness(datetime.now(UTC))
    fake.add_location("1122334455", "9988776655", token)
    rng = random.Random(8)

    def write(_n: int, at: datetime) -> Handle:
        stars = rng.choice((1, 2, 3, 4, 5, 5, 5))
        return fake.add_review("1122334455", "9988776655", at, stars)

    return DemoPlatform(
        "hotel-google",
        "google_business",
        fake.app,
        {"account_id": "1122334455", "location_id": "9988776655"},
        {"access_token": token},
        write,
        fake.reply,
        2,
        (10, 60),
        0.15,
        tick=_clock_of(fake),
    )


def _google_play() -> DemoPlatform:
    token = "ya29.demo-play-token"
    fake = FakeGooglePlay(datetime.now(UTC))
    fake.add_app("com.example.game", token)
    rng = random.Random(9)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("com.example.game", at, rng.choice((1, 2, 4, 5, 5)))

    return DemoPlatform(
        "game-android",
        "google_play",
        fake.app,
        {"package_name": "com.example.game"},
        {"access_token": token},
        write,
        fake.reply,
        2,
        (15, 45),
        0.2,
        tick=_clock_of(fake),
    )


def _app_store() -> DemoPlatform:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    fake = FakeAppStore(
        issuer_id="57246542-96fe-1a63-e053-0824d011072a",
        key_id="DEMOKEY001",
        public_key=key.public_key(),
    )
    fake.add_app("1234567890")
    rng = random.Random(10)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("1234567890", at, rating=rng.choice((1, 3, 4, 5, 5)))

    return DemoPlatform(
        "game-ios",
        "app_store",
        fake.app,
        {"app_id": "1234567890", "issuer_id": fake.issuer_id, "key_id": fake.key_id},
        {"private_key": pem},
        write,
        fake.respond,
        2,
        (15, 50),
        0.1,
    )


def _trustpilot() -> DemoPlatform:
    api_key, access = "demo-trustpilot-key", "demo-trustpilot-token"
    fake = FakeTrustpilot(api_key=api_key, access_token=access)
    fake.add_business_unit("5c1a2b3c4d5e6f0001234567")
    rng = random.Random(11)

    def write(_n: int, at: datetime) -> Handle:
        return fake.add_review("5c1a2b3c4d5e6f0001234567", at, stars=rng.choice((1, 2, 4, 5)))

    return DemoPlatform(
        "shop-trustpilot",
        "trustpilot",
        fake.app,
        {"business_unit_id": "5c1a2b3c4d5e6f0001234567"},
        {"api_key": api_key, "access_token": access},
        write,
        fake.reply,
        2,
        (10, 40),
        0.1,
    )


def _clock_of(fake: FakeGoogleBusiness | FakeGooglePlay) -> Callable[[datetime], None]:
    def tick(now: datetime) -> None:
        # The Google fakes keep their own clock (Date headers, Play's 7-day window).
        fake.now = now

    return tick


def demo_platforms() -> list[DemoPlatform]:
    """One business on every platform besides Meta."""
    return [_x(), _telegram(), _google_business(), _google_play(), _app_store(), _trustpilot()]
