"""Adding a platform is one client module, one fake and fixtures: nothing else needs editing.

The test writes a made-up platform (TinyChat) the way connectors/README.md says, into a
directory outside the package, puts that directory on ``connectors.__path__`` and
``connectors.fakes.__path__`` and rebuilds the registry. Then the config accepts an account on
it (with its ids and secrets, its alias, its default channel and poll interval, its launch
day), the CSV import knows it, the demo runs it, and a poll through the real connector
factory, coordinator and store keeps its fake's messages. Any of these that still needed a
list edited somewhere else would fail here.
"""

from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

import connectors
import connectors.fakes
from connectors import CONNECTORS, PLATFORMS, canonical_platform
from connectors.base import FetchResult
from connectors.registry import fake_module, refresh
from monitor.cli.demo.demo import demo_config_text
from monitor.cli.demo.platforms import demo_platforms
from monitor.cli.main import main
from monitor.config.loading import ConfigError, load_config
from monitor.core.polls import PollOutcome
from monitor.intake.csv_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RowParser
from monitor.polling.connector_factory import Unavailable, build_connector
from monitor.polling.coordinator import PollCoordinator
from monitor.store.context import AppContext
from monitor.store.cursors import decode_cursor
from monitor.store.tables import ACCOUNTS, CURSORS, EVENTS

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "tiny-secret-api-key-0001"

CLIENT = '''
"""TinyChat: mentions and direct messages of one room (a platform made up for a test)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import ClassVar

import aiohttp

from connectors._http import refusal, send
from connectors.base import ConnectorSettings, Event, FetchResult, dm_thread
from connectors.platform import PlatformSpec


class TinyChatConnector:
    """Polls one TinyChat room."""

    record: ClassVar[PlatformSpec] = PlatformSpec(
        "tinychat",
        ids=("room_id",),
        secrets=("api_key",),
        channels=("mention", "dm"),
        default_channel="mention",
        poll_interval_seconds=42.0,
        launched=date(2015, 6, 1),
        aliases=("tc",),
    )
    platform: ClassVar[str] = record.name

    def __init__(self, settings: ConnectorSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session

    async def aclose(self) -> None:
        """The session belongs to the caller."""

    async def fetch_since(self, cursor: Mapping[str, str]) -> FetchResult:
        """Messages after the last id seen."""
        where = f"tinychat/{self.settings.account}"
        after = cursor.get("after", "0")
        reply = await send(
            self.session,
            "GET",
            f"{self.settings.base_url}/rooms/{self.settings.ids['room_id']}/messages",
            where=where,
            timeout=self.settings.request_timeout,
            params={"after": after},
            headers={"X-Api-Key": self.settings.secrets["api_key"]},
        )
        if reply.status >= 300:
            raise refusal(reply.status, f"{where}: HTTP {reply.status}", wait=60.0)
        messages = reply.json()["messages"]
        events = tuple(
            Event(
                platform=self.platform,
                account=self.settings.account,
                channel="dm",
                thread_id=dm_thread(m["customer"]),
                message_id=str(m["id"]),
                author_role="business" if m["team"] else "customer",
                created_at=datetime.fromisoformat(m["at"]),
            )
            for m in messages
        )
        newest = max([int(after), *(m["id"] for m in messages)])
        return FetchResult(events, {"after": str(newest)})
'''

FAKE = '''
"""A fake TinyChat API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connectors.fakes._demo import DemoTraffic


class FakeTinyChat:
    """One room's messages behind an API key."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.messages: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/rooms/{room}/messages", self._messages)

    def write(self, customer: str, at: datetime, *, team: bool = False) -> int:
        """A message in the room; returns its id."""
        ident = len(self.messages) + 1
        self.messages.append(
            {"id": ident, "customer": customer, "team": team, "at": at.isoformat()}
        )
        return ident

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != self.api_key:
            return web.json_response({"error": "unauthorized"}, status=401)
        after = int(request.query.get("after", "0"))
        return web.json_response({"messages": [m for m in self.messages if m["id"] > after]})


def demo_traffic() -> DemoTraffic:
    """The demo's tea shop on TinyChat."""
    fake = FakeTinyChat("demo-tiny-key")
    return DemoTraffic(
        "teashop-tinychat",
        "tinychat",
        fake.app,
        {"room_id": "r1"},
        {"api_key": "demo-tiny-key"},
        lambda n, at: fake.write(f"c{n}", at),
        lambda handle, at: fake.write(f"c{handle}", at, team=True),
        3,
        (5, 10),
    )
'''

CONFIG = """
[[accounts]]
name = "tea"
platform = "TC"
ids = { room_id = "r1" }
secrets = { api_key = "env:TINY_TEST_KEY" }
"""


@pytest.fixture
def tinychat(tmp_path: Path) -> Iterator[None]:
    """TinyChat's client module and fake, found by a rebuilt registry; removed afterwards."""
    client_dir, fake_dir = tmp_path / "client", tmp_path / "fakes"
    client_dir.mkdir()
    fake_dir.mkdir()
    (client_dir / "tinychat.py").write_text(textwrap.dedent(CLIENT), encoding="utf-8")
    (fake_dir / "tinychat.py").write_text(textwrap.dedent(FAKE), encoding="utf-8")
    connectors.__path__.append(str(client_dir))
    connectors.fakes.__path__.append(str(fake_dir))
    try:
        refresh()
        yield
    finally:
        connectors.__path__.remove(str(client_dir))
        connectors.fakes.__path__.remove(str(fake_dir))
        for name in ("connectors.tinychat", "connectors.fakes.tinychat"):
            sys.modules.pop(name, None)
        refresh()


@pytest.fixture
def tea_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with one TinyChat account, its key in the environment."""
    monkeypatch.setenv("TINY_TEST_KEY", KEY)
    path = tmp_path / "replywatch.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_the_registry_finds_the_new_module_and_its_fake(tinychat: None) -> None:
    """CONNECTORS, PLATFORMS, the aliases and the fake lookup all know TinyChat."""
    assert CONNECTORS["tinychat"].platform == "tinychat"
    assert PLATFORMS["tinychat"].launched == date(2015, 6, 1)
    assert canonical_platform("TC") == "tinychat"
    assert hasattr(fake_module("tinychat"), "FakeTinyChat")


def test_without_the_module_the_platform_is_unknown() -> None:
    """Without its module TinyChat is no platform (and the fixture above left none behind)."""
    assert "tinychat" not in PLATFORMS and "tinychat" not in CONNECTORS
    assert canonical_platform("tc") == "tc"


def test_the_config_takes_an_account_with_its_ids_and_secrets(
    tinychat: None, tea_config: Path, tmp_path: Path
) -> None:
    """Alias, default channel, poll interval and launch day come from the record."""
    config = load_config(tea_config)
    account = config.accounts["tea"]
    assert account.platform == "tinychat"
    assert account.channels == ("mention", "dm")
    assert account.poll_interval == timedelta(seconds=42)
    assert config.intake.earliest_for("tinychat") == datetime(2015, 6, 1, tzinfo=UTC)
    broken = tmp_path / "broken.toml"
    broken.write_text(CONFIG.replace('room_id = "r1"', "").replace("api_key", "token"))
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    fields = {problem.field for problem in caught.value.problems}
    assert {"ids.room_id", "secrets.api_key"} <= fields


def test_the_csv_import_knows_it(tinychat: None, tea_config: Path) -> None:
    """Rows name it by alias, get its default channel, and respect its launch day."""
    parser = RowParser(
        [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], load_config(tea_config), None, clock=lambda: NOW
    )
    event = parser(["TC", "tea", "t1", "m1", "customer", "2026-11-20T10:00:00Z", "", "", ""])
    assert (event.platform, event.channel) == ("tinychat", "mention")
    with pytest.raises(ValueError, match="earliest time accepted for tinychat"):
        parser(["tc", "tea", "t1", "m2", "customer", "2015-05-31T23:00:00Z", "", "", ""])


def test_the_demo_runs_its_fake(tinychat: None, tmp_path: Path) -> None:
    """The fake's demo_traffic() adds a business to the demo, whose config checks out."""
    others = demo_platforms()
    assert "teashop-tinychat" in {other.name for other in others}
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "demo.toml"
    path.write_text(demo_config_text(others), encoding="utf-8")
    assert main(["--config", str(path), "check-config", "--no-secrets"], out, err) == 0, err


@pytest.fixture
async def tiny_fake(tinychat: None) -> AsyncIterator[tuple[Any, str]]:
    """The TinyChat fake, served on 127.0.0.1, with two messages already written."""
    fake = fake_module("tinychat").FakeTinyChat(KEY)
    fake.write("ann", NOW - timedelta(minutes=30))
    fake.write("ann", NOW - timedelta(minutes=20), team=True)
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield fake, str(server.make_url("/")).rstrip("/")
    await server.close()


async def test_a_poll_through_the_coordinator_stores_its_fakes_messages(
    tiny_fake: tuple[Any, str], tea_config: Path, tmp_path: Path
) -> None:
    """The real factory, coordinator and store poll it twice: backfill, then what is new."""
    fake, url = tiny_fake
    context = AppContext.open(tea_config, f"sqlite:///{tmp_path / 'store.db'}")
    account = context.config.accounts["tea"]
    ingestor = context.ingestor()

    async def load_cursor() -> Mapping[str, str]:
        return stored_cursor(context, "tea")

    async def store(result: FetchResult, cursor: Mapping[str, str]) -> int:
        outcome = ingestor.ingest(result.events, cursor=("tinychat", "tea", cursor), seen_at=NOW)
        return outcome.stored

    try:
        async with aiohttp.ClientSession() as session:
            built = build_connector(
                context.config, account, session, now=NOW, base_url=url, request_timeout=5.0
            )
            assert not isinstance(built, Unavailable), built
            connector, _settings = built
            coordinator = PollCoordinator(
                "tinychat",
                "tea",
                connector,
                account.poll_interval,
                load_cursor,
                store,
                clock=lambda: NOW,
                jitter=0.0,
            )
            first = await coordinator.poll()
            fake.write("bob", NOW - timedelta(minutes=5))
            second = await coordinator.poll()
        assert (first.outcome, first.items, first.stored) == (PollOutcome.SUCCESS, 2, 2)
        assert (second.outcome, second.items, second.stored) == (PollOutcome.SUCCESS, 1, 1)
        assert stored_cursor(context, "tea") == {"after": "3"}
        with context.engine.connect() as connection:
            count = connection.execute(
                select(func.count())
                .select_from(EVENTS.join(ACCOUNTS, ACCOUNTS.c.id == EVENTS.c.account_id))
                .where(ACCOUNTS.c.platform == "tinychat")
            ).scalar_one()
        assert count == 3
    finally:
        context.close()


def stored_cursor(context: AppContext, account: str) -> dict[str, str]:
    """The cursor the store keeps for an account (empty before its first poll)."""
    with context.engine.connect() as connection:
        value = connection.execute(
            select(CURSORS.c.value)
            .join(ACCOUNTS, ACCOUNTS.c.id == CURSORS.c.account_id)
            .where(ACCOUNTS.c.name == account)
        ).scalar_one_or_none()
    return decode_cursor(None if value is None else str(value))
