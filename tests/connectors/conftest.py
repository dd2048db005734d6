"""Fixtures for connector tests: the fake Meta server and connectors pointed at it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import Channel, ConnectorSettings
from connectors.fakes.meta import FakeMeta

FIXTURES = Path(__file__).parent.parent / "fixtures"
TOKEN = "EAA-TEST-SECRET-TOKEN-1234"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fixture_json(platform: str, name: str) -> Any:
    """A recorded payload from tests/fixtures/<platform>/<name>."""
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def fixture_bytes(platform: str, name: str) -> bytes:
    """A recorded payload's exact bytes."""
    return (FIXTURES / platform / name).read_bytes()


@pytest.fixture
def fake_meta() -> FakeMeta:
    """A fake Graph API with one Page (100) and one Instagram account (178) on Page 900."""
    fake = FakeMeta()
    fake.add_page("100", TOKEN)
    fake.add_ig_account("178", "900", TOKEN)
    return fake


@pytest.fixture
async def meta_url(fake_meta: FakeMeta) -> AsyncIterator[str]:
    """The fake Graph API served on 127.0.0.1."""
    # No access log: request lines carry the access_token query parameter.
    server = TestServer(fake_meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield str(server.make_url("/")).rstrip("/")
    fake_meta.release_slow()
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session the connectors share."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def settings_for(meta_url: str) -> Callable[..., ConnectorSettings]:
    """Build connector settings pointed at the fake."""

    def build(
        ids: dict[str, str], channels: tuple[Channel, ...] = ("dm", "comment"), **overrides: Any
    ) -> ConnectorSettings:
        values: dict[str, Any] = {
            "account": "shop",
            "ids": ids,
            "secrets": {"access_token": TOKEN},
            "channels": channels,
            "backfill_since": NOW - timedelta(days=7),
            "base_url": meta_url,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        return ConnectorSettings(**values)

    return build
