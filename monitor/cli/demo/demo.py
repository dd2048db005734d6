"""``replywatch demo``: the whole product against simulated platforms, in one command.

Local fake Meta servers (the same ones the tests use) host a few businesses. Simulated
customers write direct messages and comments; a simulated team answers each business at its
own pace: some fast, one slipping further behind every minute. Some messages also arrive as
signed webhook deliveries, so both intake paths (and their de-duplication) are exercised. The
monitor polls the fakes with the same connector code that talks to the real Graph API,
stores into an embedded SQLite file, and a live table shows each account's figures.

The demo judges accounts with a ``demo`` profile whose targets are seconds instead of
minutes (answer within 30 s, a 10-minute window), so the numbers move while you watch.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.table import Table

from connectors.fakes.meta import FakeMeta
from monitor.cli.demo.platforms import DemoPlatform, demo_platforms
from monitor.http.app import parse_listen
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from monitor.store.stats import StatsRow, account_stats

__all__ = ["DEMO_CONFIG", "DemoBusiness", "Simulation", "run_demo"]

APP_SECRET = "demo-app-secret"
VERIFY_TOKEN = "demo-verify-token"


@dataclass(frozen=True)
class DemoBusiness:
    """One simulated business: who it is and how its team answers."""

    name: str
    platform: str
    platform_id: str
    channels: tuple[str, ...]
    arrivals_per_minute: float
    reply_seconds: tuple[float, float]
    slips_per_minute: float = 0.0
    unanswered_share: float = 0.0


BUSINESSES = (
    DemoBusiness("cafe-facebook", "facebook", "100001", ("dm", "comment"), 6, (3, 15)),
    DemoBusiness("shoes-instagram", "instagram", "178400001", ("dm", "comment"), 5, (5, 25)),
    DemoBusiness("bakery-facebook", "facebook", "100002", ("dm",), 3, (10, 40), 0, 0.05),
    DemoBusiness("gym-instagram", "instagram", "178400002", ("dm",), 4, (8, 20), 12.0, 0.1),
)

DEMO_CONFIG = """
[replywatch]
backfill = "1h"

[defaults]
profile = "demo"

[profiles.demo]
extends = "strict"
window = "10m"
response_target = "30s"
reply_deadline = "2m"
warn_after = "20s"
escalate_after = "1m"
min_waits = 3

[webhooks.meta.secrets]
app_secret = "env:REPLYWATCH_DEMO_APP_SECRET"
verify_token = "env:REPLYWATCH_DEMO_VERIFY_TOKEN"
{accounts}
"""

_ACCOUNT = """
[[accounts]]
name = "{name}"
platform = "{platform}"
ids = {{ {id_key} = "{platform_id}"{page} }}
channels = [{channels}]
poll_interval = "3s"
secrets = {{ access_token = "env:REPLYWATCH_DEMO_TOKEN_{index}" }}
"""


_OTHER_ACCOUNT = """
[[accounts]]
name = "{name}"
platform = "{platform}"
ids = {{ {ids} }}
poll_interval = "3s"
secrets = {{ {secrets} }}
"""


def secret_variable(platform: DemoPlatform, key: str) -> str:
    """The environment variable holding one of a demo platform's secrets."""
    return f"REPLYWATCH_DEMO_{platform.name.upper().replace('-', '_')}_{key.upper()}"


def demo_config_text(others: Sequence[DemoPlatform] = ()) -> str:
    """The TOML config the demo runs with (tokens come from the environment)."""
    parts = []
    for index, business in enumerate(BUSINESSES):
        id_key = "page_id" if business.platform == "facebook" else "ig_user_id"
        page = "" if business.platform == "facebook" else f', page_id = "9{business.platform_id}"'
        parts.append(
            _ACCOUNT.format(
                name=business.name,
                platform=business.platform,
                id_key=id_key,
                platform_id=business.platform_id,
                page=page,
                channels=", ".join(f'"{c}"' for c in business.channels),
                index=index,
            )
        )
    for other in others:
        ids = ", ".join(f'{k} = "{v}"' for k, v in other.ids.items())
        secrets = ", ".join(f'{k} = "env:{secret_variable(other, k)}"' for k in other.secrets)
        parts.append(
            _OTHER_ACCOUNT.format(
                name=other.name, platform=other.platform, ids=ids, secrets=secrets
            )
        )
    return DEMO_CONFIG.format(accounts="".join(parts))


def demo_token(index: int) -> str:
    """The fake access token of the demo's n-th business."""
    return f"demo-token-{index}"


@dataclass
class Simulation:
    """Customers writing and teams answering, on the fake platform's state."""

    fake: FakeMeta
    others: Sequence[DemoPlatform] = ()
    rng: random.Random = field(default_factory=lambda: random.Random(2026))
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    webhook_url: str | None = None
    webhook_share: float = 0.3
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _customers: int = 0
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def setup(self) -> None:
        """Create the businesses on the fake platform."""
        for index, business in enumerate(BUSINESSES):
            if business.platform == "facebook":
                self.fake.add_page(business.platform_id, demo_token(index))
            else:
                self.fake.add_ig_account(
                    business.platform_id, f"9{business.platform_id}", demo_token(index)
                )

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Generate traffic until ``stop`` is set."""
        loops = [self._business_loop(b, session, stop) for b in BUSINESSES]
        loops += [self._other_loop(other, stop) for other in self.others]
        await asyncio.gather(*loops)
        for task in list(self._pending):
            task.cancel()

    def reply_delay(self, business: DemoBusiness) -> float:
        """How long this team takes right now; a slipping team gets slower every minute."""
        low, high = business.reply_seconds
        minutes = (self.clock() - self.started).total_seconds() / 60
        return self.rng.uniform(low, high) + business.slips_per_minute * minutes

    async def _business_loop(
        self, business: DemoBusiness, session: aiohttp.ClientSession, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            gap = self.rng.expovariate(business.arrivals_per_minute / 60)
            try:
                await asyncio.wait_for(stop.wait(), timeout=gap)
                return
            except TimeoutError:
                pass
            self._customers += 1
            customer = f"{business.platform_id}{self._customers:05d}"
            channel = self.rng.choice(business.channels)
            written = await self._customer_writes(business, customer, channel, session)
            if self.rng.random() >= business.unanswered_share:
                delay = self.reply_delay(business)
                task = asyncio.create_task(
                    self._team_answers(business, customer, channel, written, delay, session)
                )
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _other_loop(self, other: DemoPlatform, stop: asyncio.Event) -> None:
        while not stop.is_set():
            gap = self.rng.expovariate(other.arrivals_per_minute / 60)
            try:
                await asyncio.wait_for(stop.wait(), timeout=gap)
                return
            except TimeoutError:
                pass
            self._customers += 1
            other.tick(self.clock())
            handle = other.write(self._customers, self.clock())
            if self.rng.random() < other.unanswered_share:
                continue
            delay = self.rng.uniform(*other.reply_seconds)
            task = asyncio.create_task(self._other_answers(other, handle, delay))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _other_answers(self, other: DemoPlatform, handle: object, delay: float) -> None:
        await asyncio.sleep(delay)
        other.tick(self.clock())
        other.answer(handle, self.clock())

    async def _customer_writes(
        self,
        business: DemoBusiness,
        customer: str,
        channel: str,
        session: aiohttp.ClientSession,
    ) -> str:
        at = self.clock()
        owner = business.platform_id
        if channel == "dm":
            mid = self.fake.customer_message(owner, customer, at)
            await self._maybe_webhook(session, self.fake.message_webhook(owner, mid))
            return mid
        comment = self.fake.customer_comment(owner, customer, at)
        await self._maybe_webhook(session, self.fake.comment_webhook(owner, comment))
        return comment

    async def _team_answers(
        self,
        business: DemoBusiness,
        customer: str,
        channel: str,
        written: str,
        delay: float,
        session: aiohttp.ClientSession,
    ) -> None:
        await asyncio.sleep(delay)
        at = self.clock()
        owner = business.platform_id
        if channel == "dm":
            mid = self.fake.business_reply(owner, customer, at)
            await self._maybe_webhook(session, self.fake.message_webhook(owner, mid))
        else:
            self.fake.business_comment_reply(owner, written, at)

    async def _maybe_webhook(self, session: aiohttp.ClientSession, body: bytes) -> None:
        if self.webhook_url is None or self.rng.random() >= self.webhook_share:
            return
        body, headers = self.fake.signed_webhook(APP_SECRET, body)
        try:
            async with session.post(self.webhook_url, data=body, headers=headers) as response:
                await response.read()
        except aiohttp.ClientError:
            pass  # the poller will see the message anyway


def _table(rows: list[StatsRow], states: dict[str, str], address: str) -> Table:
    table = Table(title=f"replywatch demo: serving {address}  (Ctrl-C to stop)")
    for header in (
        "account",
        "platform",
        "poll",
        "open",
        "oldest wait",
        "waits",
        "answered",
        "rate",
        "in 30 s",
        "mean",
        "p90",
        "badge",
    ):
        table.add_column(header, justify="left" if header in ("account", "platform") else "right")
    for row in rows:
        f = row.figures

        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}s"

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value * 100:.0f}%"

        badge = {True: "[green]met[/]", False: "[red]missed[/]", None: "-"}[f.target_met]
        table.add_row(
            row.account,
            row.platform,
            states.get(row.account, "-"),
            str(f.open_waits),
            secs(f.oldest_open_wait_seconds),
            str(f.waits),
            str(f.answered),
            pct(f.response_rate),
            pct(f.within_target_share),
            secs(f.mean_response_seconds),
            secs(f.p90_response_seconds),
            badge,
        )
    return table


def _plain(rows: list[StatsRow]) -> str:
    parts = []
    for row in rows:
        f = row.figures
        rate = "-" if f.response_rate is None else f"{f.response_rate * 100:.0f}%"
        mean = "-" if f.mean_response_seconds is None else f"{f.mean_response_seconds:.0f}s"
        parts.append(
            f"{row.account}: waits {f.waits}, open {f.open_waits}, rate {rate}, "
            f"mean {mean}, badge {f.target_met}"
        )
    return "; ".join(parts)


async def _demo(
    listen: str, out: TextIO, seconds: float | None, plain: bool, database: Path
) -> None:
    import os

    for index in range(len(BUSINESSES)):
        os.environ[f"REPLYWATCH_DEMO_TOKEN_{index}"] = demo_token(index)
    os.environ["REPLYWATCH_DEMO_APP_SECRET"] = APP_SECRET
    os.environ["REPLYWATCH_DEMO_VERIFY_TOKEN"] = VERIFY_TOKEN
    others = demo_platforms()
    for other in others:
        for key, value in other.secrets.items():
            os.environ[secret_variable(other, key)] = value
    config_path = database.with_suffix(".toml")
    config_path.write_text(demo_config_text(others), encoding="utf-8")
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)

    fake = FakeMeta()
    fake_runner = web.AppRunner(fake.app, access_log=None)
    await fake_runner.setup()
    fake_site = web.TCPSite(fake_runner, "127.0.0.1", 0)
    await fake_site.start()
    fake_url = f"http://127.0.0.1:{fake_runner.addresses[0][1]}"
    runners = [fake_runner]
    urls: dict[str, str] = {}
    for other in others:
        runner = web.AppRunner(other.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        urls[other.name] = f"http://127.0.0.1:{runner.addresses[0][1]}"

    host, port = parse_listen(listen)
    context = AppContext.open(config_path, f"sqlite:///{database}")
    runtime = Runtime(
        context,
        host=host,
        port=port,
        base_url_for=lambda account: urls.get(account.name, fake_url),
        first_poll_spread=1.0,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)

    simulation = Simulation(fake, others)
    simulation.setup()
    await runtime.start()
    simulation.webhook_url = f"{runtime.address}/hooks/meta"
    print(
        f"replywatch demo: fake Meta, X, Telegram, Google Business, Google Play, App Store and "
        f"Trustpilot servers on 127.0.0.1, monitor serving "
        f"{runtime.address} (/healthz, /metrics); store {database}",
        file=out,
        flush=True,
    )
    async with aiohttp.ClientSession() as session:
        traffic = asyncio.create_task(simulation.run(session, stop))
        try:
            await _show(runtime, out, plain, stop)
        finally:
            stop.set()
            await traffic
            await runtime.stop()
            for runner in runners:
                await runner.cleanup()
            context.close()
    print(
        f"demo stopped; inspect it with: replywatch --database sqlite:///{database} stats", file=out
    )


def _snapshot(runtime: Runtime) -> tuple[list[StatsRow], dict[str, str]]:
    with runtime.context.engine.connect() as connection:
        rows = account_stats(connection, runtime.context.accounts, as_of=datetime.now(UTC))
    states = {name: c.state.value for name, c in runtime.coordinators.items()}
    return rows, states


async def _show(runtime: Runtime, out: TextIO, plain: bool, stop: asyncio.Event) -> None:
    if plain:
        while not stop.is_set():
            rows, _states = await asyncio.to_thread(_snapshot, runtime)
            print(f"{datetime.now(UTC):%H:%M:%S} {_plain(rows)}", file=out, flush=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=10)
            except TimeoutError:
                continue
        return
    console = Console(file=out)
    with Live(console=console, refresh_per_second=2) as live:
        while not stop.is_set():
            rows, states = await asyncio.to_thread(_snapshot, runtime)
            live.update(_table(rows, states, runtime.address))
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except TimeoutError:
                continue


def run_demo(
    listen: str,
    out: TextIO,
    *,
    seconds: float | None = None,
    plain: bool = False,
    database: Path | None = None,
) -> int:
    """Run the demo until Ctrl-C (or ``seconds``); returns the exit code."""
    target = database or Path("replywatch-demo.db").resolve()
    try:
        asyncio.run(_demo(listen, out, seconds, plain, target))
    except OSError as error:
        print(f"replywatch demo: cannot listen on {listen}: {error.strerror}", file=sys.stderr)
        return 2
    return 0
