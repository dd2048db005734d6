"""``replywatch serve`` beside workers: webhooks go to the shared store, numbers come from it.

Two serving runtimes on one PostgreSQL database: a signed Meta delivery to the first is
stored once (the second replica and the workers see the same row), both replicas serve the
poll health the workers recorded in ``poll_state``, and neither takes the one-monitor lock,
so any number of them can run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from connectors.fakes.meta import FakeMeta
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.polling.cluster import poll_state
from monitor.polling.cluster.queue import ensure_queue_schema
from monitor.service.runtime import Runtime
from monitor.store.accounts import account_names
from monitor.store.context import AppContext
from monitor.store.tables import EVENTS
from tests.cluster.fleet import PER_PROCESS, samples

pytestmark = pytest.mark.postgres

TOKEN = "EAA-SERVE-TEST-SECRET-TOKEN-2"
APP_SECRET = "SERVE-TEST-APP-SECRET-3"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    meta.add_page("100", TOKEN)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_replicas_share_webhooks_and_serve_the_workers_numbers(
    tmp_path: Path,
    fake: tuple[FakeMeta, str],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delivery to one replica is stored once; both serve the same poll counts."""
    meta, url = fake
    monkeypatch.setenv("SERVE_TOKEN", TOKEN)
    monkeypatch.setenv("SERVE_APP_SECRET", APP_SECRET)
    (tmp_path / "c.toml").write_text(f"""
[webhooks.meta.secrets]
app_secret = "env:SERVE_APP_SECRET"
verify_token = "env:SERVE_APP_SECRET"

[[accounts]]
name = "shop"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "env:SERVE_TOKEN" }}
""")
    contexts = [AppContext.open(tmp_path / "c.toml", postgres_url) for _ in range(2)]
    replicas = [Runtime(c, port=0, serve_only=True, figures_interval=3600) for c in contexts]
    for replica in replicas:
        await replica.start()  # neither takes the one-monitor lock
    try:
        engine = contexts[0].engine
        with engine.connect() as connection:
            account_id = {v: k for k, v in account_names(connection).items()}[("facebook", "shop")]
        # What a worker records after two polls of the account.
        ensure_queue_schema(engine)
        poll_state.enroll(engine, [account_id], datetime.now(UTC), spread=0)
        for job, outcome in ((1, PollOutcome.SUCCESS), (2, PollOutcome.CONNECTION)):
            poll_state.take_due(engine, [account_id], timedelta(seconds=60))
            assert poll_state.claim(engine, account_id, job, datetime.now(UTC), timedelta(60))
            record = PollRecord(
                "facebook",
                "shop",
                outcome,
                datetime.now(UTC),
                0.5,
                0,
                0,
                0,
                None,
                datetime.now(UTC),
                AccountState.OK if job == 1 else AccountState.FAILING,
            )
            assert poll_state.finish(engine, account_id, job, record, failures=job - 1, error=None)
        mid = meta.customer_message("100", "c1", datetime.now(UTC) - timedelta(minutes=2))
        body, headers = FakeMeta.signed_webhook(APP_SECRET, meta.message_webhook("100", mid))
        async with aiohttp.ClientSession() as session:
            for replica in replicas:  # Meta delivers twice (a retry) through the balancer
                async with session.post(
                    replica.address + "/hooks/meta", data=body, headers=headers
                ) as reply:
                    assert reply.status == 200
            texts = []
            for replica in replicas:
                await replica.refresh_now()
                async with session.get(replica.address + "/metrics") as reply:
                    texts.append(await reply.text())
                async with session.get(replica.address + "/healthz") as reply:
                    assert (await reply.json())["role"] == "serve"
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        assert stored == 1  # the retry to the other replica added nothing
        first, second = (samples(t, PER_PROCESS) for t in texts)
        assert first == second
        polls = {
            dict(labels)["outcome"]: value
            for (name, labels), value in first.items()
            if name == "replywatch_polls_total"
        }
        assert polls["success"] == 1 and polls["connection"] == 1 and polls["auth"] == 0
        state = {
            dict(labels)["state"]: value
            for (name, labels), value in first.items()
            if name == "replywatch_account_state"
        }
        assert state == {"failing": 1}  # one series per account: the state it is in
        assert first[("replywatch_alert_outbox_pending", ())] == 0.0  # from the shared outbox
        assert ("replywatch_open_waits", (("account", "shop"), ("platform", "facebook"))) in first
        assert TOKEN not in texts[0] and APP_SECRET not in texts[0]
    finally:
        for replica in replicas:
            await replica.stop()
        for context in contexts:
            context.close()
