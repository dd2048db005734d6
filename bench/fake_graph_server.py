"""The fake Graph API in its own process, with customers writing to every Page.

Used by ``bench/poll.py``. Prints ``port <N>`` once listening. Pages are ``p0`` ... with the
token ``bench-token-<i>``; every Page starts with a week of conversations and gets one new
customer message a minute on average, each answered a little later.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from datetime import UTC, datetime, timedelta

from aiohttp import web

from connectors.fakes.meta import FakeMeta


def page_id(index: int) -> str:
    """The id of the n-th Page."""
    return f"{1_000_000 + index}"


def token(index: int) -> str:
    """The access token of the n-th Page."""
    return f"bench-token-{index}"


async def traffic(fake: FakeMeta, accounts: int, per_minute: float, rng: random.Random) -> None:
    """New customer messages at ``per_minute`` per account, answered 1-10 minutes later."""
    rate = accounts * per_minute / 60
    counter = 0
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        counter += 1
        owner = page_id(rng.randrange(accounts))
        now = datetime.now(UTC)
        customer = f"live{counter}"
        fake.customer_message(owner, customer, now)
        loop = asyncio.get_running_loop()
        loop.call_later(rng.uniform(60, 600), _reply, fake, owner, customer)


def _reply(fake: FakeMeta, owner: str, customer: str) -> None:
    fake.business_reply(owner, customer, datetime.now(UTC))


async def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--history", type=int, default=3, help="conversations per Page")
    parser.add_argument("--per-minute", type=float, default=1.0)
    args = parser.parse_args()
    rng = random.Random(5000)
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
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    await traffic(fake, args.accounts, args.per_minute, rng)


if __name__ == "__main__":
    asyncio.run(main())
