"""The whole alerting path: replywatch, a real Prometheus, a real Alertmanager, a webhook.

One account on the fake Graph API falls behind: a customer writes and nobody answers. The
shipped rules (``for:`` shortened, targets of seconds instead of minutes) fire in Prometheus,
Alertmanager routes them to a local receiver, and replywatch pushes its own per-conversation
alert; the test sees warning, breach, escalation, then the resolution when the team answers.
Waiting is event-driven: the receiver sets an event when the awaited notification arrives.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from alerts.catalog import Metric
from alerts.rules import build
from connectors.fakes.meta import FakeMeta
from tests.stack import (
    ALERTMANAGER,
    PROMETHEUS,
    free_port,
    needs_alertmanager,
    needs_prometheus,
    shortened_rules,
    start,
    stop,
)

TOKEN = "EAA-E2E-SECRET-TOKEN-4242"
STEP_TIMEOUT = 90.0

pytestmark = [needs_prometheus, needs_alertmanager]


@dataclass
class Notifications:
    """What Alertmanager delivered, by receiver path, with a way to await a match."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            body = await request.json()
            async with self.changed:
                for alert in body["alerts"]:
                    self.received.append((request.path, alert))
                self.changed.notify_all()
            return web.Response()

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        return app

    async def wait_for(
        self, what: str, match: Callable[[str, dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The first delivered alert that matches, waiting for it if needed."""

        def found() -> dict[str, Any] | None:
            return next((a for p, a in self.received if match(p, a)), None)

        async with self.changed:
            try:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: found() is not None), STEP_TIMEOUT
                )
            except TimeoutError:
                seen = [
                    (p, a["labels"].get("alertname"), a["labels"].get("severity"), a["status"])
                    for p, a in self.received
                ]
                raise AssertionError(f"no {what} within {STEP_TIMEOUT}s; got {seen}") from None
            result = found()
            assert result is not None
            return result


def alert(name: str, status: str, path: str = "/oncall", **labels: str) -> Callable[..., bool]:
    def match(at: str, item: dict[str, Any]) -> bool:
        wanted = {"alertname": name, **labels}
        return (
            at == path
            and item["status"] == status
            and all(item["labels"].get(k) == v for k, v in wanted.items())
        )

    return match


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    fake = FakeMeta()
    fake.add_page("100", TOKEN)
    fake.add_page("200", TOKEN)
    fake_server = TestServer(fake.app, host="127.0.0.1")
    await fake_server.start_server(access_log=None)
    notifications = Notifications()
    receiver = TestServer(notifications.app(), host="127.0.0.1")
    await receiver.start_server()
    hook = str(receiver.make_url("")).rstrip("/")

    am_port, rw_port, prom_port = free_port(), free_port(), free_port()
    am_config = {
        "route": {
            "receiver": "oncall",
            "group_by": ["alertname", "platform", "account", "conversation"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"matchers": ['severity="page"', 'escalated="true"'], "receiver": "pager"}],
        },
        "receivers": [
            {
                "name": "oncall",
                "webhook_configs": [{"url": f"{hook}/oncall", "send_resolved": True}],
            },
            {"name": "pager", "webhook_configs": [{"url": f"{hook}/pager", "send_resolved": True}]},
        ],
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    prometheus_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": shortened_rules(tmp_path),
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [
            {"job_name": "replywatch", "static_configs": [{"targets": [f"127.0.0.1:{rw_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))
    config = tmp_path / "replywatch.toml"
    config.write_text(f"""
[replywatch]
refresh_interval = "1s"

[alerts]
resend_interval = "2s"
alertmanager = {{ url = "http://127.0.0.1:{am_port}" }}

[[accounts]]
name = "shop-fb"
platform = "facebook"
ids = {{ page_id = "100" }}
channels = ["dm"]
poll_interval = "1s"
base_url = "{str(fake_server.make_url("")).rstrip("/")}"
secrets = {{ access_token = "env:SHOP_TOKEN" }}
targets = {{ warn_after = "6s", response_target = "12s", escalate_after = "18s" }}

[[accounts]]
name = "night-fb"
platform = "facebook"
ids = {{ page_id = "200" }}
channels = ["dm"]
poll_interval = "1s"
base_url = "{str(fake_server.make_url("")).rstrip("/")}"
secrets = {{ access_token = "env:SHOP_TOKEN" }}
targets = {{ warn_after = "6s", response_target = "12s", escalate_after = "18s" }}

# Closed all day today and tomorrow (UTC): its customer waits in business time, which has
# not started, so nothing may page however long the calendar wait grows.
[accounts.business_hours]
{_closed_now_day()} = ["09:00-10:00"]
""")
    processes = {
        "alertmanager": await start(
            ALERTMANAGER or "",
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ),
        "prometheus": await start(
            PROMETHEUS or "",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ),
        "replywatch": await start(
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
    }
    yield {
        "fake": fake,
        "notifications": notifications,
        "metrics": f"http://127.0.0.1:{rw_port}/metrics",
        "prometheus": f"http://127.0.0.1:{prom_port}",
    }
    errors = {name: await stop(process) for name, process in processes.items()}
    await receiver.close()
    await fake_server.close()
    assert TOKEN.encode() not in errors["replywatch"]


def _closed_now_day() -> str:
    """A weekday three days from today (UTC): an account open only then is closed now."""
    return (datetime.now(UTC) + timedelta(days=3)).strftime("%A").lower()


async def test_warning_breach_escalation_and_resolution_reach_alertmanager(
    stack: dict[str, Any],
) -> None:
    """Both paths (rules in Prometheus, pushes from replywatch) alert, escalate and resolve."""
    fake: FakeMeta = stack["fake"]
    notes: Notifications = stack["notifications"]
    fake.customer_message("100", "cust-1", datetime.now(UTC))
    # The same wait on an account whose business hours are closed now.
    fake.customer_message("200", "cust-2", datetime.now(UTC))
    labels = {"platform": "facebook", "account": "shop-fb"}

    warning = await notes.wait_for(
        "rule warning",
        alert("ReplywatchCustomerWaitingWarning", "firing", severity="ticket", **labels),
    )
    assert "shop-fb" in warning["annotations"]["description"]
    assert warning["annotations"]["runbook_url"].endswith("#replywatchcustomerwaitingwarning")
    pushed = await notes.wait_for(
        "pushed warning",
        alert(
            "ReplywatchConversationWaiting", "firing", severity="warning", channel="dm", **labels
        ),
    )
    assert pushed["labels"]["conversation"]

    await notes.wait_for(
        "rule breach", alert("ReplywatchCustomerWaitingBreach", "firing", severity="page", **labels)
    )
    await notes.wait_for(
        "pushed breach",
        alert("ReplywatchConversationWaiting", "firing", severity="critical", **labels),
    )
    await notes.wait_for(
        "escalation to the second receiver",
        alert(
            "ReplywatchConversationWaiting",
            "firing",
            path="/pager",
            severity="page",
            escalated="true",
            **labels,
        ),
    )

    # By now the in-hours account has paged and escalated; the out-of-hours one, whose
    # customer has waited as long by the calendar, has raised nothing at all.
    night = [a for _p, a in notes.received if a["labels"].get("account") == "night-fb"]
    assert night == [], night
    async with aiohttp.ClientSession() as session, session.get(stack["metrics"]) as response:
        live = await response.text()
    # ... although its customer is past the target by the calendar (what the rule used to read).
    age = re.search(
        r'replywatch_oldest_open_wait_seconds\{[^}]*account="night-fb"[^}]*\} (\S+)', live
    )
    assert age is not None and float(age.group(1)) > 12, live

    fake.business_reply("100", "cust-1", datetime.now(UTC))
    await notes.wait_for(
        "rule breach resolved", alert("ReplywatchCustomerWaitingBreach", "resolved", **labels)
    )
    await notes.wait_for(
        "escalation resolved",
        alert(
            "ReplywatchConversationWaiting", "resolved", path="/pager", severity="page", **labels
        ),
    )

    async with aiohttp.ClientSession() as session, session.get(stack["metrics"]) as response:
        metrics = await response.text()
    assert 'outcome="missed"' in metrics
    assert re.search(r'replywatch_sli_outcomes_total\{platform="facebook",account="shop-fb",'
                     r'outcome="missed"\} 1(\.0)?$', metrics, flags=re.MULTILINE)  # fmt: skip
    assert TOKEN not in metrics
    await rules_evaluate_on_the_live_series(stack["prometheus"])


async def rules_evaluate_on_the_live_series(prometheus: str) -> None:
    """Every shipped rule evaluates cleanly on real scrapes, and its joins find each account.

    promtool tests feed hand-written series; here Prometheus evaluates the generated rules on
    what replywatch really exports (labels, the scrape's job and instance), where a join on a
    label the exporter dropped, or a many-to-many match, would show as the rule's lastError.
    """
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{prometheus}/api/v1/rules") as response:
            groups = (await response.json())["data"]["groups"]
        evaluated = [
            (r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
        ]
        assert len(evaluated) == sum(len(g.rules) for f in build() for g in f.groups), evaluated
        assert all(health == "ok" and not error for _name, health, error in evaluated), evaluated
        # The burn-rate alerts' min-waits guard: each account reaches its profile's setting
        # through the profile label of its target series.
        query = f"0 * {Metric.TARGET_RATE} + on (profile) group_left () {Metric.PROFILE_MIN_WAITS}"
        async with session.get(f"{prometheus}/api/v1/query", params={"query": query}) as response:
            result = (await response.json())["data"]["result"]
    found = {(r["metric"]["account"], r["metric"].get("profile"), r["value"][1]) for r in result}
    assert {account for account, _profile, _value in found} == {"shop-fb", "night-fb"}, found
    assert all(profile and value == "5" for _account, profile, value in found), found
