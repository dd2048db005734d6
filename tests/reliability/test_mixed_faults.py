"""Platform faults mixed at random over many accounts: the others are unaffected, all recover.

Eight Pages are polled round after round while the fake injects a random fault (5xx, 429 with
and without a hint, malformed and truncated JSON, HTML instead of JSON, missing data, an
expired paging cursor) into about a third of the polls. Accounts without a fault must succeed
in the same round; every fault must show up as a failed poll in the metrics; once the faults
stop, every account recovers by itself and the store holds every message the fake has.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from connectors.fakes.meta import FakeMeta
from monitor.core.polls import AccountState, PollOutcome
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from monitor.store.tables import EVENTS

PAGES = [str(100 + i) for i in range(8)]
TOKEN = "EAA-MIXED-TEST-SECRET-TOKEN-9"
FAULTS = (
    "server_error",
    "throttle",
    "http_429",
    "malformed",
    "truncated",
    "html",
    "missing_data",
    "invalid_cursor",
)
ROUNDS = 12


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    for page in PAGES:
        meta.add_page(page, TOKEN)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_faults_stay_with_their_account_and_everything_recovers(
    tmp_path: Path, fake: tuple[FakeMeta, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per round: faulted polls fail, the rest succeed; at the end all are stored and OK."""
    meta, url = fake
    monkeypatch.setenv("MIXED_TOKEN", TOKEN)
    accounts = "".join(
        f"""
[[accounts]]
name = "page-{page}"
platform = "facebook"
ids = {{ page_id = "{page}" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "env:MIXED_TOKEN" }}
"""
        for page in PAGES
    )
    (tmp_path / "replywatch.toml").write_text(accounts)
    context = AppContext.open(tmp_path / "replywatch.toml", f"sqlite:///{tmp_path / 'm.db'}")
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600)
    await runtime.start()
    rng = random.Random(99)
    written = injected = 0
    try:
        for round_ in range(ROUNDS + 2):
            now = datetime.now(UTC) - timedelta(minutes=30) + timedelta(seconds=round_)
            for page in rng.sample(PAGES, 3):
                customer = f"c{round_}-{page}"
                meta.customer_message(page, customer, now)
                written += 1
                if rng.random() < 0.6:
                    meta.business_reply(page, customer, now + timedelta(seconds=20))
                    written += 1
            faulty_round = round_ < ROUNDS  # the last two rounds are calm: time to recover
            for page in PAGES:
                coordinator = runtime.coordinators[f"page-{page}"]
                fault = rng.choice(FAULTS) if faulty_round and rng.random() < 0.35 else None
                if fault is not None:
                    meta.fail_next(fault)
                    injected += 1
                record = await coordinator.poll()
                if fault is None:
                    assert record.outcome is PollOutcome.SUCCESS, (round_, page, record)
                else:
                    assert record.outcome is not PollOutcome.SUCCESS, (round_, page, fault)
        assert injected >= 20
        for coordinator in runtime.coordinators.values():
            assert coordinator.state is AccountState.OK
        # Polls are counted per platform and outcome (every page here is on Facebook).
        failed = sum(
            runtime.metrics.registry.get_sample_value(
                "replywatch_polls_total", {"platform": "facebook", "outcome": outcome.value}
            )
            or 0.0
            for outcome in PollOutcome
            if outcome is not PollOutcome.SUCCESS
        )
        assert failed == injected  # every fault is visible in a metric
        with context.engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        assert stored == written  # nothing lost behind a cursor that moved too far
    finally:
        await runtime.stop()
        context.close()
