"""Every panel's PromQL, run against a real Prometheus that scrapes replywatch on the fakes.

replywatch polls a fake Page with answered, late and waiting customers; Prometheus scrapes it
every second and evaluates the shipped rules (the burn-rate panels read their recording rules).
Each query must run without error, name only series the exporter has, and return data, except
the few panels that are empty by design in this scenario (no webhooks configured, no alert
firing yet).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from connectors.fakes.meta import FakeMeta
from dashboards.build import build_all
from tests.stack import PROMETHEUS, free_port, needs_prometheus, shortened_rules, start, stop

pytestmark = needs_prometheus
TOKEN = "EAA-PANELS-SECRET-TOKEN-5151"
# Grafana's variables, as a user with account "shop-fb" selected would send them.
VARIABLES = {
    "$account": "shop-fb",
    "$channel": ".*",
    "$profile": "strict",
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "15s",
}
EMPTY_BY_DESIGN = {
    ("replywatch-oncall", "Alerts firing"),  # no rule has fired within the test
    ("replywatch-connectors", "Webhook deliveries by outcome"),  # no webhook configured
}
READY_TIMEOUT = 60.0


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every target of every dashboard."""
    return [
        (uid, panel["title"], target["expr"])
        for uid, model in build_all().items()
        for panel in model["panels"]
        for target in panel.get("targets", [])
    ]


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A scraped replywatch with traffic; yields (Prometheus URL, replywatch /metrics URL)."""
    fake = FakeMeta()
    fake.add_page("100", TOKEN)
    now = datetime.now(UTC).replace(microsecond=0)
    for i, minutes in enumerate([2, 5, 9, 14, 30, 90]):
        opened = now - timedelta(hours=3, minutes=10 * i)
        fake.customer_message("100", f"c{i}", opened)
        fake.business_reply("100", f"c{i}", opened + timedelta(minutes=minutes))
    fake.customer_message("100", "waiting", now - timedelta(minutes=40))
    fake_server = TestServer(fake.app, host="127.0.0.1")
    await fake_server.start_server(access_log=None)
    rw_port, prom_port = free_port(), free_port()
    config = tmp_path / "replywatch.toml"
    config.write_text(f"""
[replywatch]
refresh_interval = "1s"

[[accounts]]
name = "shop-fb"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
poll_interval = "2s"
base_url = "{str(fake_server.make_url("")).rstrip("/")}"
secrets = {{ access_token = "env:SHOP_TOKEN" }}
""")
    prometheus_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": shortened_rules(tmp_path),
        "scrape_configs": [
            {"job_name": "replywatch", "static_configs": [{"targets": [f"127.0.0.1:{rw_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))
    processes = [
        await start(
            sys.executable,
            "-m",
            "monitor.cli",
            "--config",
            str(config),
            "--database",
            f"sqlite:///{tmp_path / 'rw.db'}",
            "run",
            "--listen",
            f"127.0.0.1:{rw_port}",
            env={**os.environ, "SHOP_TOKEN": TOKEN},
        ),
        await start(
            PROMETHEUS or "",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ),
    ]
    yield f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{rw_port}/metrics"
    for process in processes:
        await stop(process)
    await fake_server.close()


async def instant(session: aiohttp.ClientSession, url: str, expr: str) -> dict[str, Any]:
    async with session.get(f"{url}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
        return body


async def wait_until_scraped(session: aiohttp.ClientSession, url: str) -> None:
    """Until Prometheus holds a few scrapes with decided outcomes (so rate() has two points)."""
    ready = (
        'count_over_time(replywatch_sli_outcomes_total{outcome="missed"}[1m]) >= 4 '
        "and on () count_over_time(platform_account:replywatch_sli_missed:ratio_rate5m[1m]) >= 2"
    )
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        try:
            body = await instant(session, url, ready)
            if body.get("data", {}).get("result"):
                return
        except aiohttp.ClientError:
            pass  # Prometheus still starting
        await asyncio.sleep(0.5)  # an external process: poll its API, there is no event to await
    raise AssertionError(f"Prometheus had no decided outcomes within {READY_TIMEOUT}s")


async def test_every_panel_query_runs_and_finds_data(prometheus: tuple[str, str]) -> None:
    """No query errors, names an unknown series, or comes back empty where data exists."""
    url, metrics_url = prometheus
    async with aiohttp.ClientSession() as session:
        await wait_until_scraped(session, url)
        async with session.get(metrics_url) as response:
            exposed = await response.text()
        # Sample names, and families declared without samples yet (e.g. no webhook configured).
        pattern = r"^(?:# TYPE )?(replywatch_[a-z0-9_]+)"
        names = set(re.findall(pattern, exposed, flags=re.MULTILINE))
        names |= {f"{n}_{s}" for n in names for s in ("bucket", "count", "sum")}
        problems = []
        queries = panel_queries()
        assert len(queries) >= 30
        for uid, title, expr in queries:
            for name in set(re.findall(r"(?<![:a-z_])replywatch_[a-z0-9_]+", expr)):
                if name not in names:
                    problems.append(f"{uid} / {title}: {name} is not exported")
            body = await instant(session, url, substitute(expr))
            if body["status"] != "success":
                problems.append(f"{uid} / {title}: {body.get('error')}")
            elif not body["data"]["result"] and (uid, title) not in EMPTY_BY_DESIGN:
                problems.append(f"{uid} / {title}: no series for {substitute(expr)}")
    assert not problems, "\n".join(problems)
