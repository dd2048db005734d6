"""Alert rules: promtool checks and tests, house style, runbook anchors, real metric names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.catalog import PROCESS_METRICS, WATCHDOG

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
RULE_FILES = sorted((ALERTS / "rules").glob("*.yaml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*-test.yaml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/services)"
)


def rules() -> list[dict[str, Any]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [rule for rule in group["rules"] if "alert" in rule]
    return found


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts every rule file."""
    result = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, RULE_FILES)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    """Each group's tests cover both edges of every for:."""
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(test_file)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_follows_the_house_style() -> None:
    """CamelCase Replywatch name, for:, severity, summary, description, runbook anchor."""
    runbook = (ALERTS / "runbook.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    tested = "\n".join(p.read_text() for p in TEST_FILES)
    assert rules()
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"Replywatch[A-Z][A-Za-z]+", name), name
        if name == WATCHDOG:
            # The dead man's switch fires at once and always, and is routed to no person.
            assert str(rule["expr"]).strip() == "vector(1)" and not rule.get("for")
            assert rule["labels"]["severity"] == "none"
        else:
            assert rule.get("for"), name
            assert rule["labels"]["severity"] in ("page", "ticket"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and "{{" not in annotations["summary"], name
        used = set(re.findall(r"replywatch_[a-z_]+", str(rule["expr"])))
        if used - PROCESS_METRICS:
            # Per-account alerts name the account and platform (style.md rule 13).
            assert "$labels.account" in annotations["description"], name
            assert "$labels.platform" in annotations["description"], name
        assert annotations["runbook_url"] == f"alerts/runbook.md#{name.lower()}"
        assert name.lower() in anchors, f"runbook has no section for {name}"
        assert f"alertname: {name}" in tested, f"{name} has no promtool test"


def test_rules_only_use_metrics_replywatch_exports() -> None:
    """Every replywatch_* name in a rule is exported (so an alert cannot silently never fire)."""
    from monitor.export.figures_exporter import FiguresSnapshot
    from monitor.export.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    # describe() needs no store: it lists the window-figure families without querying.
    exported |= {m.name for m in FiguresSnapshot(None, None).describe()}  # type: ignore[arg-type]
    exported |= {f"{name}{suffix}" for name in exported for suffix in ("_total", "_bucket")}
    every_rule = [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    text = "\n".join(str(rule["expr"]) for rule in every_rule)
    # Names after a colon are parts of recording-rule names (level:metric:operation).
    used = set(re.findall(r"(?<![:a-z_])replywatch_[a-z_]+(?![:a-z_])", text))
    assert used and used <= exported, used - exported
    recorded = {rule["record"] for rule in every_rule if "record" in rule}
    wanted = set(re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", text))
    assert wanted <= recorded, wanted - recorded


def test_the_business_hours_fixture_holds_the_deadlines_replywatch_computes() -> None:
    """The promtool test's night and day deadlines are level_deadline's, not made up.

    responsiveness-test.yaml feeds the rules the deadlines of an account open Monday to Friday
    09:00-17:00 UTC (warn 10 min, breach 15 min) for customers writing at 00:50 and 10:00 on
    1970-01-01, promtool's day 0; this computes them with the conversation alerts' function.
    """
    from datetime import UTC, datetime, timedelta

    from monitor.core.hours import BusinessCalendar
    from monitor.core.profiles import BUILTIN_PROFILES
    from monitor.notify.conversation_alerts import level_deadline
    from monitor.store.accounts import AccountPolicy

    hours = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    profile = BUILTIN_PROFILES["strict"].with_targets(
        warn_after=timedelta(minutes=10), response_target=timedelta(minutes=15)
    )
    policy = AccountPolicy(profile, calendar=BusinessCalendar.build("UTC", hours))
    fixture = yaml.safe_load((ALERTS / "tests" / "responsiveness-test.yaml").read_text())
    values = "\n".join(s["values"] for t in fixture["tests"] for s in t["input_series"])
    day0 = datetime(1970, 1, 1, tzinfo=UTC)
    for wrote, due in ((timedelta(minutes=50), 33300), (timedelta(hours=10), 36900)):
        warning = level_deadline(policy, "dm", "standard", day0 + wrote, "warning")
        breach = level_deadline(policy, "dm", "standard", day0 + wrote, "breach")
        assert breach.timestamp() == due and warning.timestamp() == due - 300
        assert f" {due}x" in values and f" {due - 300}x" in values
