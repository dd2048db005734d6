"""The round alerts and the watchdog: one grace with /healthz, routed to the right receivers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alerts.catalog import HEARTBEAT_RECEIVER, WATCHDOG, Metric
from monitor.core.round_health import GRACE_INTERVALS
from tests.alerts.test_alertmanager_config import CONFIG, needs_amtool, routed

ALERTS = Path(__file__).resolve().parents[2] / "alerts"


def rule(name: str) -> dict[str, Any]:
    for path in (ALERTS / "rules").glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for found in group["rules"]:
                if found.get("alert") == name:
                    return found  # type: ignore[no-any-return]
    raise AssertionError(f"no rule {name}")


def test_the_stalled_round_rule_uses_the_health_grace() -> None:
    """Prometheus pages after the same number of intervals /healthz turns 503 after."""
    expr = " ".join(str(rule("ReplywatchRoundStalled")["expr"]).split())
    assert f"{GRACE_INTERVALS} * {Metric.ROUND_INTERVAL}" in expr
    assert f"time() - {Metric.ROUND_LAST_SUCCESS}" in expr


@needs_amtool
def test_the_watchdog_reaches_the_heartbeat_and_nobody_else() -> None:
    """Always firing: only the heartbeat service hears it, never the pager, chat or webhook."""
    assert rule(WATCHDOG)["labels"]["severity"] == "none"
    assert routed({"alertname": WATCHDOG, "severity": "none"}) == [HEARTBEAT_RECEIVER]
    for other in ("ReplywatchRoundStalled", "ReplywatchDown"):
        assert HEARTBEAT_RECEIVER not in routed({"alertname": other, "severity": "page"})


@needs_amtool
def test_a_stalled_round_pages() -> None:
    """ReplywatchRoundStalled goes to the pager (and the webhook, as every alert does)."""
    labels = {"alertname": "ReplywatchRoundStalled", "severity": "page", "round": "alerts"}
    assert sorted(routed(labels)) == ["replywatch-pager", "replywatch-webhook"]


def matches(matcher: str, value: str) -> bool:
    """Whether an Alertmanager matcher on alertname holds for ``value`` (regexes anchored)."""
    found = re.fullmatch(r'alertname(=~|!~|=|!=)"(.*)"', matcher)
    assert found is not None, matcher
    operator, pattern = found.groups()
    if operator in ("=", "!="):
        return (value == pattern) == (operator == "=")
    return (re.fullmatch(pattern, value) is not None) == (operator == "=~")


def test_replywatch_down_does_not_hide_the_watchdog() -> None:
    """The watchdog watches Prometheus and Alertmanager: a down replywatch must not mute it."""
    config = yaml.safe_load(CONFIG.read_text())
    down = [
        inhibit
        for inhibit in config["inhibit_rules"]
        if any("ReplywatchDown" in m for m in inhibit["source_matchers"])
    ]
    assert len(down) == 1
    targets = down[0]["target_matchers"]
    assert all(matches(m, "ReplywatchRoundStalled") for m in targets)  # hidden, as it should
    assert not all(matches(m, WATCHDOG) for m in targets)
