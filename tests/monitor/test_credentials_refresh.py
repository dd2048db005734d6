"""A replaced token takes effect without a restart: file secrets re-read, paused accounts resume."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from connectors.fakes.meta import FakeMeta
from monitor.config.secrets import LiveSecrets
from monitor.core.polls import AccountState, PollOutcome
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext

OLD, NEW = "EAA-OLD-TEST-TOKEN-1", "EAA-NEW-TEST-TOKEN-2"


def test_a_file_secret_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    """New content is used at once; a vanished file keeps the last good value."""
    token = tmp_path / "token"
    token.write_text(OLD)
    secrets = LiveSecrets({"access_token": "file:token"}, tmp_path)
    before = secrets.fingerprint()
    assert secrets["access_token"] == OLD
    token.write_text(NEW + "\n")
    os.utime(token, ns=(1, 2))  # a different mtime even on coarse clocks
    assert secrets["access_token"] == NEW
    assert secrets.fingerprint() != before and NEW not in secrets.fingerprint()
    token.unlink()
    assert secrets["access_token"] == NEW
    assert OLD not in repr(secrets) and NEW not in repr(secrets)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta()
    meta.add_page("100", NEW)  # the old token is no longer valid
    meta.customer_message("100", "c1", datetime.now(UTC) - timedelta(minutes=5))
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_paused_account_resumes_when_its_token_file_is_replaced(
    tmp_path: Path, fake: tuple[FakeMeta, str]
) -> None:
    """Refused with the old token, paused; the file gets the new token; the next poll works."""
    _meta, url = fake
    (tmp_path / "token").write_text(OLD)
    (tmp_path / "replywatch.toml").write_text(f"""
[[accounts]]
name = "shop"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
base_url = "{url}"
secrets = {{ access_token = "file:token" }}
""")
    context = AppContext.open(tmp_path / "replywatch.toml", f"sqlite:///{tmp_path / 'r.db'}")
    runtime = Runtime(context, port=0, first_poll_spread=0)
    await runtime.start()
    try:
        coordinator = runtime.coordinators["shop"]
        await runtime.polling.poll(coordinator.account)
        assert coordinator.state is AccountState.AUTH_FAILED
        assert runtime.scheduler.get_job("shop").next_run_time is None  # paused
        await runtime.polling.resume_refreshed_credentials()
        assert coordinator.paused  # nothing changed yet: stays paused
        (tmp_path / "token").write_text(NEW)
        os.utime(tmp_path / "token", ns=(3, 4))
        await runtime.polling.resume_refreshed_credentials()
        assert runtime.scheduler.get_job("shop").next_run_time is not None
        record = await coordinator.poll()
        assert record.outcome is PollOutcome.SUCCESS and record.stored == 1
    finally:
        await runtime.stop()
        context.close()
