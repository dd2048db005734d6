"""Alertmanager example config: amtool accepts it, routes by severity, inhibits and renders."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from alerts.catalog import HEARTBEAT_RECEIVER

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
CONFIG = ALERTS / "alertmanager.example.yml"
SECRETS = "/etc/replywatch/secrets/"
KINDS = ("slack", "email", "pagerduty", "telegram", "webhook")
AMTOOL = shutil.which("amtool") or ""
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or ""
needs_amtool = pytest.mark.skipif(
    not AMTOOL,
    reason="amtool missing: apt-get install prometheus-alertmanager (scripts/services)",
)
needs_alertmanager = pytest.mark.skipif(
    not ALERTMANAGER,
    reason="alertmanager missing: apt-get install prometheus-alertmanager (scripts/services)",
)
CONVERSATION = {
    "alertname": "ReplywatchConversationWaiting",
    "account": "acme-shop",
    "platform": "instagram",
    "channel": "dm",
    "conversation": "c-42",
}


def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())  # type: ignore[no-any-return]


def receiver(kind: str) -> str:
    """The one receiver that has `<kind>_configs` (the watchdog's heartbeat aside)."""
    receivers = [r for r in config()["receivers"] if r["name"] != HEARTBEAT_RECEIVER]
    names = [r["name"] for r in receivers if r.get(f"{kind}_configs")]
    assert len(names) == 1, f"{kind}: {names}"
    return names[0]  # type: ignore[no-any-return]


def walk(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from walk(child)


def routed(labels: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={CONFIG}"]
        + [f"{k}={v}" for k, v in labels.items()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


@needs_amtool
def test_amtool_checks_the_config() -> None:
    """`amtool check-config` accepts the example (secret files need not exist yet)."""
    result = subprocess.run(
        [AMTOOL, "check-config", str(CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "kind"),
    [
        ({"alertname": "ReplywatchCustomerWaitingBreach", "severity": "page"}, "pagerduty"),
        ({"alertname": "ReplywatchDown", "severity": "page"}, "pagerduty"),
        ({**CONVERSATION, "severity": "page", "escalated": "true"}, "pagerduty"),
        ({"alertname": "ReplywatchDataStale", "severity": "ticket"}, "slack"),
        ({**CONVERSATION, "severity": "warning"}, "telegram"),
        ({**CONVERSATION, "severity": "critical"}, "telegram"),
        ({"alertname": "SomethingElse", "severity": "info"}, "email"),
    ],
    ids=["page", "down", "escalated", "ticket", "warning", "critical", "unknown-severity"],
)
def test_routes_by_severity(labels: dict[str, str], kind: str) -> None:
    """Each severity reaches exactly one group of people; every alert also hits the webhook."""
    labels = {"platform": "instagram", "account": "acme-shop", **labels}
    receivers = routed(labels)
    webhook = receiver("webhook")
    assert webhook in receivers, receivers
    assert [r for r in receivers if r != webhook] == [receiver(kind)], receivers


def test_tickets_wait_for_business_hours_and_pages_never_do() -> None:
    """The ticket route is active in business hours only; no route to the pager is muted."""
    routes = list(walk(config()["route"]))
    tickets = [r for r in routes if 'severity="ticket"' in r.get("matchers", [])]
    assert len(tickets) == 1, tickets
    assert tickets[0]["receiver"] == receiver("slack")
    assert tickets[0].get("active_time_intervals") == ["business-hours"]
    pager = [r for r in routes if r.get("receiver") == receiver("pagerduty")]
    assert pager
    for route in pager:
        assert not route.get("active_time_intervals") and not route.get("mute_time_intervals")


def in_interval(intervals: list[dict[str, Any]], utc: datetime) -> bool:
    """Whether `utc` falls in one of the intervals (weekdays, times and location only)."""
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for interval in intervals:
        assert set(interval) <= {"weekdays", "times", "location"}, interval
        local = utc.astimezone(ZoneInfo(interval.get("location", "UTC")))
        weekdays: set[int] = set()
        for spec in interval.get("weekdays", days):
            first, _, last = spec.partition(":")
            weekdays |= set(range(days.index(first), days.index(last or first) + 1))
        minute = local.hour * 60 + local.minute
        spans = [
            tuple(
                int(h) * 60 + int(m)
                for h, m in (t["start_time"].split(":"), t["end_time"].split(":"))
            )
            for t in interval.get("times", [{"start_time": "00:00", "end_time": "24:00"}])
        ]
        if local.weekday() in weekdays and any(start <= minute < end for start, end in spans):
            return True
    return False


def test_business_and_out_of_hours_are_complements() -> None:
    """Every half hour of a week is in exactly one of business-hours and out-of-hours."""
    named = {t["name"]: t["time_intervals"] for t in config()["time_intervals"]}
    business, off = named["business-hours"], named["out-of-hours"]
    zone = ZoneInfo(business[0]["location"])
    monday = datetime(2024, 7, 1, tzinfo=zone)  # a Monday
    assert in_interval(business, (monday + timedelta(hours=9)).astimezone(ZoneInfo("UTC")))
    assert not in_interval(business, (monday + timedelta(hours=17)).astimezone(ZoneInfo("UTC")))
    assert not in_interval(
        business, (monday + timedelta(days=5, hours=10)).astimezone(ZoneInfo("UTC"))
    )
    for step in range(7 * 48):
        moment = (monday + timedelta(minutes=30 * step)).astimezone(ZoneInfo("UTC"))
        assert in_interval(business, moment) != in_interval(off, moment), moment.astimezone(zone)


def test_every_receiver_kind_is_present_and_routed() -> None:
    """Slack, e-mail, PagerDuty, Telegram and webhook are configured, and each receiver is used."""
    used = {route["receiver"] for route in walk(config()["route"])}
    for kind in KINDS:
        assert receiver(kind) in used, kind
    assert {r["name"] for r in config()["receivers"]} == used


def test_no_secret_is_inline() -> None:
    """Secrets come from files under /etc/replywatch/secrets/, each named in the header."""
    text = CONFIG.read_text()
    header = text.split("\nglobal:", 1)[0]
    inline = {"api_url", "routing_key", "service_key", "auth_password", "auth_secret"}
    inline |= {"credentials", "password", "slack_api_url", "smtp_auth_password"}
    files = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in inline, f"inline secret {key}"
                if key.endswith("_file"):
                    files.append(value)
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(config())
    assert len(files) >= 4, files
    for path in files:
        assert path.startswith(SECRETS), path
        assert Path(path).name in header, f"header does not say what goes in {path}"
    for telegram in config()["receivers"]:
        for tc in telegram.get("telegram_configs", []):
            # 0.25 has no bot_token_file: only a placeholder may be committed.
            assert re.fullmatch(r"REPLACE_[A-Z_]+", tc["bot_token"]), tc["bot_token"]


def render(template: str, tmp_path: Path, data: dict[str, Any]) -> str:
    (tmp_path / "none.tmpl").touch()
    (tmp_path / "data.json").write_text(json.dumps(data))
    result = subprocess.run(
        [
            AMTOOL,
            "template",
            "render",
            f"--template.glob={tmp_path / 'none.tmpl'}",
            f"--template.text={template}",
            f"--template.data={tmp_path / 'data.json'}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_amtool
def test_messages_name_account_platform_and_links(tmp_path: Path) -> None:
    """Slack, e-mail and Telegram messages name account, platform, conversation link, runbook."""
    labels = {**CONVERSATION, "severity": "warning"}
    annotations = {
        "summary": "A customer has waited 12 minutes.",
        "link": "https://www.instagram.com/direct/t/c-42",
        "runbook_url": "alerts/runbook.md#replywatchconversationwaiting",
    }
    alert = {"status": "firing", "labels": labels, "annotations": annotations}
    alert |= {"startsAt": "2024-07-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
    group = {k: labels[k] for k in ("alertname", "platform", "account")}
    data = {"receiver": "r", "status": "firing", "alerts": [alert], "groupLabels": group}
    data |= {"commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://am"}
    ticket = next(r for r in config()["receivers"] if r["name"] == receiver("slack"))
    chat = next(r for r in config()["receivers"] if r["name"] == receiver("telegram"))
    slack = ticket["slack_configs"][0]
    assert ticket["email_configs"][0]["headers"]["Subject"] == slack["title"]
    assert slack["send_resolved"] is True
    title = render(slack["title"], tmp_path, data)
    assert "acme-shop" in title and "instagram" in title, title
    for template in (slack["text"], chat["telegram_configs"][0]["message"]):
        message = render(template, tmp_path, data)
        for expected in ("acme-shop", "instagram", "c-42", *annotations.values()):
            assert expected in message, (expected, message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # type: ignore[no-any-return]


def post(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}/api/v2/alerts", body, headers)
    urllib.request.urlopen(request, timeout=5).close()


def suppressed(url: str, expected: dict[str, bool]) -> dict[str, bool]:
    """Alert id -> suppressed, as soon as it equals `expected`.

    Alertmanager marks inhibited alerts when it reads them, from a cache its inhibitor fills
    right after the POST; a few immediate reads cover that, no waiting is needed.
    """
    state: dict[str, bool] = {}
    for _ in range(200):
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
            state = {
                a["labels"]["id"]: a["status"]["state"] == "suppressed" for a in json.load(response)
            }
        if state == expected:
            break
    return state


def wait_until_listening(process: subprocess.Popen[str], log: list[str]) -> threading.Thread:
    """Read Alertmanager's log until it says it listens (a watchdog ends a silent hang)."""
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if "Listening on" in line:
                # Keep draining the pipe so the server never blocks on a full one.
                drain = threading.Thread(target=lambda: log.extend(process.stdout or ()))
                drain.start()
                return drain
    finally:
        watchdog.cancel()
    pytest.fail("Alertmanager did not start: " + "".join(log))


@needs_alertmanager
def test_inhibit_rules_in_a_real_alertmanager(tmp_path: Path) -> None:
    """Breach hides the matching warning only; replywatch down hides every other alert."""
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    log: list[str] = []
    drain: threading.Thread | None = None
    try:
        drain = wait_until_listening(process, log)
        account = {"platform": "instagram", "account": "acme-shop"}
        other = {"platform": "instagram", "account": "other-shop"}
        alerts = [
            {"id": "conv-critical", **CONVERSATION, "severity": "critical"},
            {"id": "conv-warning", **CONVERSATION, "severity": "warning"},
            {"id": "conv-other", **CONVERSATION, "conversation": "c-43", "severity": "warning"},
            {"id": "breach", "alertname": "ReplywatchCustomerWaitingBreach", **account},
            {"id": "warning", "alertname": "ReplywatchCustomerWaitingWarning", **account},
            {"id": "warning-other", "alertname": "ReplywatchCustomerWaitingWarning", **other},
            {"id": "token", "alertname": "ReplywatchTokenExpired", **account},
            {"id": "stale", "alertname": "ReplywatchDataStale", **account},
            {"id": "stale-other", "alertname": "ReplywatchDataStale", **other},
        ]
        for alert in alerts[3:]:
            alert["severity"] = "page" if alert["id"] in ("breach", "token") else "ticket"
        post(url, alerts)
        hidden = {"conv-warning", "warning", "stale"}
        expected = {a["id"]: a["id"] in hidden for a in alerts}
        assert suppressed(url, expected) == expected
        down = [
            {"id": "down", "alertname": "ReplywatchDown", "severity": "page", "job": "replywatch"},
            {"id": "absent", "alertname": "ReplywatchAbsent", "severity": "page"},
        ]
        post(url, down)
        expected = {a["id"]: a["id"] not in ("down", "absent") for a in alerts + down}
        assert suppressed(url, expected) == expected
    finally:
        process.terminate()
        process.wait(timeout=10)
        if drain is not None:
            drain.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
