"""Alert rules: generated from alerts/rules.py, promtool checks and tests, house style, runbook
anchors, and only series replywatch exports by default."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules as generator
from alerts.catalog import PROCESS_METRICS, WATCHDOG, Metric
from monitor.config.schema import MetricsModel
from monitor.export.specs import SPECS, spec_of_series
from tests.monitor.test_metric_specs import scraped_metrics

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
RULE_FILES = sorted((ALERTS / "rules").glob("*.yaml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*-test.yaml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/services)"
)
# A series name as a query writes it, not part of a recording rule's name (level:metric:op).
SERIES = re.compile(r"(?<![:a-z0-9_])replywatch_[a-z0-9_]+(?![:a-z0-9_])")
RECORDED = re.compile(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+")
# Labels Prometheus adds to every scraped series.
SCRAPE_LABELS = {"job", "instance"}


def every_rule() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in every_rule() if "alert" in rule]


def test_the_committed_yaml_is_what_alerts_rules_generates() -> None:
    """Editing alerts/rules/*.yaml by hand, or changing a name without `make rules`, fails."""
    assert generator.drifted() == [], "run `make rules` and commit alerts/rules/"
    assert [p.stem for p in RULE_FILES] == sorted(f.name for f in generator.build())


def test_the_generated_text_reads_back_as_the_rules() -> None:
    """The hand-written YAML (block scalars, folded descriptions) loads as the rule objects."""
    for rule_file in generator.build():
        text = rule_file.text()
        assert yaml.safe_load(text) == rule_file.as_dict(), rule_file.name
        assert text.startswith("# ") and "make rules" in text.split("groups:")[0]
        assert all(len(line) <= 100 for line in text.splitlines() if line.lstrip().startswith("#"))


def test_drift_is_reported_for_an_edited_missing_or_extra_file(tmp_path: Path) -> None:
    """drifted() names a file edited by hand, one deleted, and one nothing generates."""
    generator.write_all(tmp_path)
    assert generator.drifted(tmp_path) == []
    path = tmp_path / "connectors.yaml"
    path.write_text(path.read_text().replace("for: 15m", "for: 30m"))
    (tmp_path / "rounds.yaml").unlink()
    (tmp_path / "old.yaml").write_text("groups: []\n")
    assert generator.drifted(tmp_path) == ["connectors", "old", "rounds"]
    assert generator.main(["--check"]) == 0


def test_a_renamed_metric_leaves_no_rule_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name in the rules comes from the catalog: rename them all and none of the old stays."""
    names = {
        attribute: value
        for attribute, value in vars(Metric).items()
        if attribute.isupper() and isinstance(value, str) and value.startswith("replywatch_")
    }
    for attribute, name in names.items():
        monkeypatch.setattr(Metric, attribute, name.replace("replywatch_", "replywatch_new_", 1))
    built = generator.build()
    text = "\n".join(str(rule.expr) for f in built for g in f.groups for rule in g.rules)
    assert SERIES.findall(text)
    assert set(SERIES.findall(text)).isdisjoint(names.values())
    # Each file reads some metric, so each one is out of date until it is regenerated.
    assert generator.drifted(files=built) == sorted(f.name for f in built)


def test_renaming_one_metric_in_the_table_fails_the_committed_yaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renamed account_state reaches the connector rules and nothing else, at the next build."""
    monkeypatch.setattr(Metric, "ACCOUNT_STATE", "replywatch_connector_state")
    built = generator.build()
    (connectors,) = (f for f in built if f.name == "connectors")
    assert "replywatch_connector_state{" in connectors.text()
    assert "replywatch_account_state" not in connectors.text()
    assert generator.drifted(files=built) == ["connectors"]


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
    assert alerts()
    for rule in alerts():
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
        used = set(SERIES.findall(str(rule["expr"])))
        if used - PROCESS_METRICS:
            # Per-account alerts name the account and platform (style.md rule 13).
            assert "$labels.account" in annotations["description"], name
            assert "$labels.platform" in annotations["description"], name
        assert annotations["runbook_url"] == f"alerts/runbook.md#{name.lower()}"
        assert name.lower() in anchors, f"runbook has no section for {name}"
        assert f"alertname: {name}" in tested, f"{name} has no promtool test"


def read_series() -> set[str]:
    """Every replywatch_* series name the rules read."""
    return {name for rule in every_rule() for name in SERIES.findall(str(rule["expr"]))}


def test_rules_only_read_series_replywatch_exports_by_default() -> None:
    """Every series a rule reads is in the metric table and needs no [metrics] switch.

    The shipped rules must work on a default install: a rule on a breakdown family or an
    account_details series would silently never fire there.
    """
    used = read_series()
    assert used
    for name in sorted(used):
        spec = spec_of_series(name)
        assert spec is not None, f"{name} is not in monitor/export/specs.py"
        assert spec.detail is None, f"{name} needs [metrics] {spec.detail}"
    every = [str(rule["expr"]) for rule in every_rule()]
    recorded = {rule["record"] for rule in every_rule() if "record" in rule}
    wanted = {name for expr in every for name in RECORDED.findall(expr)}
    assert wanted and wanted <= recorded, wanted - recorded


@pytest.mark.parametrize("mode", ["run", "serve"])
async def test_a_default_scrape_has_every_series_the_rules_read(mode: str, sqlite_url: str) -> None:
    """A real /metrics with no [metrics] switch holds each family the rules read."""
    typed: set[str] = set()
    async for scrape in scraped_metrics(mode, sqlite_url, MetricsModel()):
        typed = set(re.findall(r"^# TYPE (\S+) ", scrape.text, flags=re.MULTILINE))
    families = {family(name) for name in typed}
    used = {family(name) for name in read_series()}
    assert families and used <= families, used - families


def family(series: str) -> str:
    """A sample name without the counter or histogram suffix the text format may add."""
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def test_rules_use_only_labels_their_series_carry() -> None:
    """Every label a rule selects, joins or groups on is a label of a series it reads.

    Catches a rule left selecting a label the exporter dropped (channel="all", tier="all").
    """
    for rule in every_rule():
        expr = str(rule["expr"])
        carried = set(SCRAPE_LABELS)
        for name in SERIES.findall(expr):
            spec = spec_of_series(name)
            assert spec is not None, name
            carried |= set(spec.labels)
        if RECORDED.search(expr):
            carried |= {"platform", "account"}
        used = set()
        for listed in re.findall(
            r"\b(?:on|by|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
        ):
            used |= {label.strip() for label in listed.split(",") if label.strip()}
        for matchers in re.findall(r"[a-z_]\{([^}]*)\}", expr):
            used |= set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers))
        assert used <= carried, (rule.get("alert") or rule.get("record"), used - carried)


def test_the_runbook_names_only_series_of_the_metric_table() -> None:
    """A query the runbook suggests names a series replywatch has (maybe behind a switch)."""
    runbook = (ALERTS / "runbook.md").read_text()
    named = set(SERIES.findall(runbook))
    assert named
    families = {spec.name for spec in SPECS}
    assert {n for n in named if n not in families and spec_of_series(n) is None} == set()


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
