"""The fake Graph API in its own process, with customers writing to every Page.

Used by ``bench/poll.py`` and ``bench/soak.py``. Prints ``port <N>`` once listening. Pages are
``p0`` ... with the token ``bench-token-<i>``; every Page starts with a week of conversations
and gets one new customer message a minute on average, each answered a little later.

Options for the soak (off by default, so ``bench/poll.py`` sees exactly the plain fake):

* ``--fault-rate 0.05`` answers that share of data requests with a platform fault drawn at
  random from :data:`FAULTS` (one request each, through ``FakeMeta.fail_account``);
* ``--admin`` keeps a log of every data request (time, Page, first page or not, fault) and
  serves ``POST /_stop`` (no new messages, no pending replies, no more faults from now on),
  ``GET /_waiting`` (Pages whose polls have not started again since the stop),
  ``GET /_ground_truth`` (every message of every Page with its time and sender, the request
  log and the stop time) and ``GET /_polls`` (how many polls have started: first requests).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from connectors.fakes.meta import FakeMeta

EMPTY_PAGE = "empty_page_with_next"
# Platform faults the soak draws from, equally likely. Waits the platform asks for stay at
# two minutes or less (Graph's default for codes 17, 32, 613, 80001 without a hint is five),
# so a soak's last round ends in minutes; expired tokens are left out on purpose: they pause
# the account until its token changes, which no fault clearing brings back.
FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("server_error", {"status": 500, "code": 2}),
    ("server_error", {"status": 503, "html": True}),
    ("throttle", {"code": 4}),  # no hint: Graph's app limit, waited 60 s
    ("throttle", {"code": 80001, "regain_minutes": 1}),
    ("throttle", {"code": 613, "regain_minutes": 2}),
    ("http_429", {}),  # no Retry-After: 60 s
    ("http_429", {"retry_after": 90}),
    ("malformed", {}),
    ("truncated", {}),
    ("html", {}),
    ("missing_data", {}),
    (EMPTY_PAGE, {}),  # not a failure: the poll reads one more page
    ("invalid_cursor", {}),
    ("slow", {"seconds": 40}),  # past replywatch's 30 s request timeout
    ("reset", {}),
)


# Sent by bench/poll.py's bare client, whose requests reach the same Pages as the monitor's.
BARE_CLIENT_HEADER = "X-Bench-Bare-Client"


def page_id(index: int) -> str:
    """The id of the n-th Page."""
    return f"{1_000_000 + index}"


def token(index: int) -> str:
    """The access token of the n-th Page."""
    return f"bench-token-{index}"


async def traffic(
    fake: FakeMeta,
    accounts: int,
    per_minute: float,
    rng: random.Random,
    replies: list[asyncio.TimerHandle] | None = None,
) -> None:
    """New customer messages at ``per_minute`` per account, answered 1-10 minutes later."""
    rate = accounts * per_minute / 60
    if rate <= 0:
        return  # a quiet platform: the history only
    counter = 0
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        counter += 1
        owner = page_id(rng.randrange(accounts))
        now = datetime.now(UTC)
        customer = f"live{counter}"
        fake.customer_message(owner, customer, now)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(rng.uniform(60, 600), _reply, fake, owner, customer)
        if replies is not None:
            replies.append(handle)


def _reply(fake: FakeMeta, owner: str, customer: str) -> None:
    fake.business_reply(owner, customer, datetime.now(UTC))


class Admin:
    """Random faults, the request log, and the endpoints the soak reads its ground truth from."""

    def __init__(self, fake: FakeMeta, fault_rate: float, rng: random.Random) -> None:
        self.fake = fake
        self.fault_rate = fault_rate
        self.rng = rng
        # (Unix time, Page, first request of a poll?, fault kind or "")
        self.log: list[tuple[float, str, bool, str]] = []
        self.stopped_at: float | None = None
        self.traffic: asyncio.Task[None] | None = None
        self.replies: list[asyncio.TimerHandle] = []
        self._polled_since_stop: set[str] = set()
        self.polls = 0  # first requests: polls started, whoever made them
        self._last_kind: dict[str, str] = {}

    def install(self, app: web.Application) -> None:
        """Add the middleware and the admin routes (before the app is started)."""
        app.middlewares.append(self.middleware)
        app.router.add_post("/_stop", self.stop)
        app.router.add_get("/_waiting", self.waiting)
        app.router.add_get("/_ground_truth", self.ground_truth)
        app.router.add_get("/_polls", self.polls_started)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Log each data request and, at the fault rate, make it fail."""
        node = request.match_info.get("node")
        if node is None or node not in self.fake.owners:
            return await handler(request)
        # An empty page's "next" repeats the request without a cursor: not a new poll.
        first = "after" not in request.query and self._last_kind.get(node) != EMPTY_PAGE
        if request.headers.get(BARE_CLIENT_HEADER):
            # bench/poll.py's bare client: counted, never failed, kept out of the log, which
            # holds the monitor's polls only (their schedule is judged from it).
            self.polls += first
            return await handler(request)
        kind = ""
        if self.stopped_at is None and self.rng.random() < self.fault_rate:
            kind, options = self.rng.choice(FAULTS)
            self.fake.fail_account(node, kind, 1, **options)
        elif self.stopped_at is not None and first:
            self._polled_since_stop.add(node)
        self._last_kind[node] = kind
        self.log.append((time.time(), node, first, kind))
        self.polls += first
        return await handler(request)

    async def stop(self, _request: web.Request) -> web.Response:
        """Freeze the ground truth: no new messages or replies, no more faults."""
        if self.stopped_at is None:
            self.stopped_at = time.time()
            if self.traffic is not None:
                self.traffic.cancel()
            for handle in self.replies:
                handle.cancel()
        return web.json_response({"stopped_at": self.stopped_at})

    async def polls_started(self, _request: web.Request) -> web.Response:
        """How many polls have reached this fake (their first request), from any process."""
        return web.json_response({"polls": self.polls})

    async def waiting(self, _request: web.Request) -> web.Response:
        """Pages not polled again since the stop (every Page's poll that starts after it)."""
        missing = [p for p in self.fake.owners if p not in self._polled_since_stop]
        return web.json_response({"stopped_at": self.stopped_at, "waiting": missing})

    async def ground_truth(self, _request: web.Request) -> web.Response:
        """Every message per Page as [customer, id, from the business?, time], and the log."""
        pages = {
            owner.id: [
                [customer, m.mid, m.sender == owner.id, m.created.isoformat()]
                for customer, messages in owner.conversations.items()
                for m in messages
            ]
            for owner in self.fake.owners.values()
        }
        body = {"stopped_at": self.stopped_at, "pages": pages, "requests": self.log}
        return web.json_response(body)


async def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--history", type=int, default=3, help="conversations per Page")
    parser.add_argument("--per-minute", type=float, default=1.0)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of data requests that fail"
    )
    parser.add_argument("--admin", action="store_true", help="request log and /_ endpoints")
    parser.add_argument("--seed", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    fake = FakeMeta(usage_headers=True, app_call_limit=10**9)
    now = datetime.now(UTC)
    for index in range(args.accounts):
        fake.add_page(page_id(index), token(index))
        for n in range(args.history):
            opened = now - timedelta(hours=rng.uniform(1, 160))
            fake.customer_message(page_id(index), f"h{index}-{n}", opened)
            fake.business_reply(
                page_id(index), f"h{index}-{n}", opened + timedelta(minutes=rng.uniform(1, 60))
            )
    admin = None
    if args.admin or args.fault_rate > 0:
        # Faults draw from their own generator, so the traffic is the same with or without.
        admin = Admin(fake, args.fault_rate, random.Random(args.seed + 1))
        admin.install(fake.app)
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    if admin is None:
        await traffic(fake, args.accounts, args.per_minute, rng)
        return
    admin.traffic = asyncio.create_task(
        traffic(fake, args.accounts, args.per_minute, rng, admin.replies)
    )
    await asyncio.wait({admin.traffic})
    if not admin.traffic.cancelled():
        admin.traffic.result()  # only /_stop ends the traffic; anything else is a crash: raise
    await asyncio.Event().wait()  # stopped: keep serving the frozen state until killed


if __name__ == "__main__":
    asyncio.run(main())
