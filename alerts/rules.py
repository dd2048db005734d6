"""Every alert and recording rule, written once here and generated to ``alerts/rules/*.yaml``.

The kubernetes-mixin way: series names come from :class:`alerts.catalog.Metric` (which reads the
exporter's own table, ``monitor/export/specs.py``), the burn windows from
:data:`alerts.catalog.BURN_WINDOWS`, the recording-rule names from
:func:`alerts.catalog.missed_ratio` and :func:`alerts.catalog.decided_waits`, the stale and
round graces from the constants the exporter and ``/healthz`` use. Renaming a metric in the
table changes every rule that reads it at the next ``make rules`` (``python -m alerts.rules``);
until then ``tests/alerts/test_rules.py`` fails, because the committed YAML no longer matches.

This module writes the YAML itself rather than through ``yaml.safe_dump``: that gives stable,
readable files (literal blocks for expressions, folded descriptions, the ``why`` of each rule as
a comment), and a test checks that loading the text gives back exactly
:meth:`RuleFile.as_dict`.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.catalog import (
    BURN_WINDOWS,
    DEFAULT_TARGETS,
    JOB,
    WATCHDOG,
    BurnWindow,
    Metric,
    decided_waits,
    missed_ratio,
)
from monitor.core.durations import parse_duration
from monitor.core.round_health import GRACE_INTERVALS
from monitor.export.specs import STALE_AFTER_INTERVALS

__all__ = [
    "RULES_DIR",
    "Alert",
    "Group",
    "Record",
    "RuleFile",
    "build",
    "drifted",
    "main",
    "write_all",
]

RULES_DIR = Path(__file__).parent / "rules"
"""Where the generated rule files live (Prometheus loads ``rules/*.yaml``)."""

# The labels every per-account series carries (the target series add "profile").
_ACCOUNT = "platform, account"
# The width the generated YAML keeps to (pyproject's line length).
_WIDTH = 100
# Words YAML 1.1 reads as booleans or null: never written plain.
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"})
# Holds a template's spaces while a description is wrapped.
_HELD = "\x00"
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Record:
    """A recording rule."""

    record: str
    expr: str
    why: str = ""
    """Written as a comment above the rule."""

    def as_dict(self) -> dict[str, Any]:
        """The rule as Prometheus reads it."""
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Alert:
    """An alerting rule in the house style (style.md rule 13)."""

    alert: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str | None
    """None only for the watchdog, which fires at once."""
    labels: tuple[tuple[str, str], ...] = ()
    """Labels beyond severity (the burn-rate window)."""
    why: str = ""
    """Written as a comment above the rule."""

    @property
    def runbook_url(self) -> str:
        """The alert's section of the runbook."""
        return f"alerts/runbook.md#{self.alert.lower()}"

    def as_dict(self) -> dict[str, Any]:
        """The rule as Prometheus reads it."""
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ is not None:
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **dict(self.labels)}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
        }
        return rule


@dataclass(frozen=True)
class Group:
    """A rule group: evaluated together, in order."""

    name: str
    rules: tuple[Record | Alert, ...]
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The group as Prometheus reads it."""
        return {"name": self.name, "rules": [rule.as_dict() for rule in self.rules]}


@dataclass(frozen=True)
class RuleFile:
    """One generated file, ``alerts/rules/<name>.yaml``."""

    name: str
    about: str
    groups: tuple[Group, ...]

    def as_dict(self) -> dict[str, Any]:
        """The file as Prometheus reads it."""
        return {"groups": [group.as_dict() for group in self.groups]}

    def text(self) -> str:
        """The YAML text committed in ``alerts/rules/``."""
        lines = _comment(self.about, "")
        lines += [
            "#",
            *_comment(
                "Generated from alerts/rules.py, which takes every series name from the exporter's "
                "metric table (monitor/export/specs.py, through alerts/catalog.py): do not edit "
                "this file. Change alerts/rules.py and run `make rules` "
                "(.venv/bin/python -m alerts.rules).",
                "",
            ),
        ]
        lines.append("groups:")
        for number, group in enumerate(self.groups):
            if number:
                lines.append("")
            lines += _comment(group.why, "  ")
            lines += [f"  - name: {_scalar(group.name)}", "    rules:"]
            for rule in group.rules:
                lines += _comment(rule.why, "      ")
                lines += _rule_lines(rule)
        return "\n".join(lines) + "\n"


def _lines(*parts: str) -> str:
    return "\n".join(parts)


def _indent(expr: str, by: str = "  ") -> str:
    return textwrap.indent(expr, by)


# Burn rates (metrics.md section 6) -------------------------------------------------------------


def _burn_rate(window: str) -> str:
    # The missed share divided by the budget (1 - the rate target). The empty () after
    # group_left keeps PromQL from reading the parenthesised budget as a label list.
    return _lines(
        missed_ratio(window),
        f"/ on ({_ACCOUNT}) group_left () (1 - {Metric.TARGET_RATE})",
    )


def _min_waits() -> str:
    # min_waits is a profile setting: each account reaches its own through the profile label of
    # its target series, giving {platform, account, profile} = the profile's min waits.
    return _lines(
        f"0 * {Metric.TARGET_RATE}",
        f"+ on (profile) group_left () {Metric.PROFILE_MIN_WAITS}",
    )


def _burn_alert(window: BurnWindow, for_: str, summary: str, description: str) -> Alert:
    factor = f"{window.factor:g}"
    expr = _lines(
        "(",
        _indent(_lines(_burn_rate(window.long), f"> {factor}")),
        ")",
        f"and on ({_ACCOUNT})",
        "(",
        _indent(_lines(_burn_rate(window.short), f"> {factor}")),
        ")",
        f"and on ({_ACCOUNT})",
        "(",
        _indent(_lines(decided_waits(window.long), f">= on ({_ACCOUNT})", "(")),
        _indent(_min_waits(), "    "),
        "  )",
        ")",
    )
    return Alert(
        window.alert,
        expr,
        window.severity,
        summary,
        description,
        for_,
        labels=(("window", window.long),),
    )


def _budget_line(window: BurnWindow) -> str:
    # What share of the week's budget the long window spends at the factor, and from which
    # missed share it fires with the default 90% target.
    week = parse_duration("7d").total_seconds()
    share = window.factor * parse_duration(window.long).total_seconds() / week * 100
    return (
        f"  {window.severity:<7} {window.long:>2} / {window.short:<3}  {window.factor:<5g} "
        f"({share:.3g}% of the budget in {window.long}, fires from "
        f"{window.factor * (1 - DEFAULT_TARGETS.rate_target) * 100:.3g}% missed)"
    )


def _window(alert: str) -> BurnWindow:
    return next(window for window in BURN_WINDOWS if window.alert == alert)


def _burn_rate_file() -> RuleFile:
    spans = sorted({s for w in BURN_WINDOWS for s in (w.long, w.short)}, key=parse_duration)
    missed = f'{Metric.SLI_OUTCOMES}{{outcome="missed"}}'
    records: list[Record] = [
        Record(
            missed_ratio(span),
            _lines(
                f"sum by ({_ACCOUNT}) (rate({missed}[{span}]))",
                f"/ sum by ({_ACCOUNT}) (rate({Metric.SLI_OUTCOMES}[{span}]))",
            ),
            why=(
                "Share of decided waits that missed the target. No decided wait in the window "
                "gives 0/0 = NaN, which no comparison passes: an idle account never burns budget."
                if not number
                else ""
            ),
        )
        for number, span in enumerate(spans)
    ]
    longs = sorted({w.long for w in BURN_WINDOWS}, key=parse_duration)
    records += [
        Record(
            decided_waits(span),
            f"sum by ({_ACCOUNT}) (increase({Metric.SLI_OUTCOMES}[{span}]))",
            why="Decided waits in each long window, for the min-waits guard." if not n else "",
        )
        for n, span in enumerate(longs)
    ]
    fast, slow, ticket = (
        _window(f"ReplywatchErrorBudgetBurn{k}") for k in ("Fast", "Slow", "Ticket")
    )
    alerts = (
        _burn_alert(
            fast,
            "2m",
            "An account is missing its reply target fast enough to page.",
            "{{ $labels.platform }} account {{ $labels.account }} is using its error budget "
            "{{ $value | humanize }} times as fast as the 7-day target allows over the last "
            f"hour, and still over the last 5 minutes; from {fast.factor:g} times on, 2% of the "
            "week's budget goes every hour.",
        ),
        _burn_alert(
            slow,
            "15m",
            "An account has been missing its reply target for hours.",
            "{{ $labels.platform }} account {{ $labels.account }} is using its error budget "
            "{{ $value | humanize }} times as fast as the 7-day target allows over the last "
            f"6 hours, and still over the last 30 minutes; from {slow.factor:g} times on, 5% of "
            "the week's budget goes every 6 hours.",
        ),
        _burn_alert(
            ticket,
            "1h",
            "An account is on track to miss its weekly response-rate target.",
            "{{ $labels.platform }} account {{ $labels.account }} is using its error budget "
            "{{ $value | humanize }} times as fast as the 7-day target allows over the last day, "
            "and still over the last 2 hours; kept up, its 7-day response rate ends below the "
            "target.",
        ),
    )
    table = "\n".join(_budget_line(w) for w in BURN_WINDOWS)
    return RuleFile(
        "burn-rate",
        "Multi-window burn-rate alerts on the response-rate error budget (metrics.md section "
        "6). The SLI is the share of decided waits that missed the response-time target; the "
        f"budget is 1 - {Metric.TARGET_RATE} (10% for a 90% target), spent over a 7-day "
        "period. A burn rate of 1 spends the whole budget in exactly 7 days. With a 10% budget "
        "the fastest possible burn is 10, so the SRE Workbook's 14.4 could never fire; the "
        "factors (alerts/catalog.py BURN_WINDOWS) are re-derived from budget shares over "
        "7 days (168 h):\n"
        f"{table}\n"
        "Both windows of a pair must exceed the factor, and the long window needs at least the "
        f"profile's min waits ({Metric.PROFILE_MIN_WAITS}, reached through the profile label "
        "of the account's target series) decided waits; quieter accounts are left to the "
        "per-conversation alerts and responsiveness.yaml.",
        (
            Group("replywatch-burn-rate-recording", tuple(records)),
            Group(
                "replywatch-burn-rate",
                alerts,
                why="The first operand of each expression is the long-window burn rate, so "
                "$value in the description is that burn rate.",
            ),
        ),
    )


# Connectors and replywatch itself --------------------------------------------------------------


def _connectors_file() -> RuleFile:
    state = Metric.ACCOUNT_STATE
    stale = _WORDS[STALE_AFTER_INTERVALS]
    connectors = Group(
        "replywatch-connectors",
        (
            Alert(
                "ReplywatchConnectorFailing",
                f'max by ({_ACCOUNT}) ({state}{{state=~"failing|rate_limited"}}) == 1',
                "ticket",
                "A connector has been failing for 15 minutes.",
                "Polls of {{ $labels.platform }} account {{ $labels.account }} have failed or "
                "been throttled for 15 minutes; its figures are going stale.",
                "15m",
                why="An account has one state series, its label the current state. A switch "
                "between failing and rate_limited replaces the series; max by keeps one alert "
                "whose for: does not start again.",
            ),
            Alert(
                "ReplywatchTokenExpired",
                f'{state}{{state="auth_failed"}} == 1',
                "page",
                "A platform refused replywatch's credentials; the account is not watched.",
                "The token of {{ $labels.platform }} account {{ $labels.account }} expired or "
                "was revoked. Polling is paused until the token is replaced and replywatch "
                "restarted.",
                "1m",
            ),
            Alert(
                "ReplywatchDataStale",
                f'{state}{{state="{Metric.STALE_STATE}"}} == 1',
                "ticket",
                f"No poll has ended for {stale} poll intervals.",
                "No poll of {{ $labels.platform }} account {{ $labels.account }} has ended for "
                f"more than {stale} poll intervals, and the last one went well: the poller is "
                "stuck or gone, and the account's figures are going stale.",
                "5m",
                why="replywatch marks an ok (or starting) account stale itself when no poll has "
                f"ended for {stale} of its poll intervals, so the rule needs none of the "
                "[metrics] account_details series. A failing or paused account keeps its own "
                "state (the alerts above).",
            ),
        ),
    )
    up = f'up{{job="{JOB}"}}'
    itself = Group(
        "replywatch-self",
        (
            Alert(
                "ReplywatchDown",
                f"{up} == 0",
                "page",
                "replywatch does not answer scrapes.",
                "Prometheus cannot scrape replywatch at {{ $labels.instance }}; nobody sees "
                "customers waiting.",
                "2m",
            ),
            Alert(
                "ReplywatchAbsent",
                f"absent({up})",
                "page",
                "Prometheus has no replywatch target at all.",
                f"No series {up} exists: replywatch is not in the scrape configuration or its "
                "service discovery lost it.",
                "5m",
            ),
        ),
    )
    return RuleFile(
        "connectors",
        "Connector health and replywatch itself. Thresholds and names follow style.md rule 13.",
        (connectors, itself),
    )


# Customers waiting and window figures ----------------------------------------------------------


def _responsiveness_file() -> RuleFile:
    def target_join(figure: str, compare: str, target: str) -> str:
        # Figures are per account only (platform, account); the target series add the profile,
        # which group_left copies into the alert for its description.
        return _lines(figure, f"{compare} on ({_ACCOUNT}) group_left (profile) {target}")

    return RuleFile(
        "responsiveness",
        "Customers waiting and window figures against each account's own targets. Targets come "
        "from the config as replywatch_target_* gauges, so rules, dashboards and code cannot "
        "disagree.",
        (
            Group(
                "replywatch-responsiveness",
                (
                    Alert(
                        "ReplywatchCustomerWaitingWarning",
                        f"time() - {Metric.WARNING_AT} >= 0",
                        "ticket",
                        "A customer has waited longer than the warning threshold.",
                        "A customer on {{ $labels.platform }} account {{ $labels.account }} "
                        "passed the warning threshold {{ $value | humanizeDuration }} ago "
                        "(business time when the account has hours); answer before the target "
                        "is breached.",
                        "1m",
                        why="Deadlines, not ages: replywatch computes when each account's first "
                        "open wait reaches warn_after and the response target, in business time "
                        "when the account has hours (the per-conversation alerts' own "
                        "deadlines). A calendar age compared with a business-time target would "
                        "page at night for a customer nobody is due to answer until morning. "
                        "The value is how long ago the deadline passed; +Inf deadlines (nobody "
                        "waiting) never do.",
                    ),
                    Alert(
                        "ReplywatchCustomerWaitingBreach",
                        f"time() - {Metric.BREACH_AT} >= 0",
                        "page",
                        "A customer has waited longer than the response-time target.",
                        "A customer on {{ $labels.platform }} account {{ $labels.account }} "
                        "passed the response-time target {{ $value | humanizeDuration }} ago "
                        "(business time when the account has hours).",
                        "1m",
                    ),
                    Alert(
                        "ReplywatchResponseRateBelowTarget",
                        target_join(Metric.RESPONSE_RATE, "<", Metric.TARGET_RATE),
                        "ticket",
                        "The response rate over the profile's window is below target.",
                        "{{ $labels.platform }} account {{ $labels.account }} answered "
                        "{{ $value | humanizePercentage }} of decided waits in time over the "
                        "{{ $labels.profile }} window.",
                        "15m",
                        why="The account's own figures (the channel and tier breakdowns are "
                        "families of their own, off by default).",
                    ),
                    Alert(
                        "ReplywatchResponseTimeAboveTarget",
                        target_join(Metric.MEAN_RESPONSE, ">", Metric.TARGET_RESPONSE),
                        "ticket",
                        "The mean response time over the profile's window is above target.",
                        "{{ $labels.platform }} account {{ $labels.account }} takes "
                        "{{ $value | humanizeDuration }} on average to answer over the "
                        "{{ $labels.profile }} window.",
                        "15m",
                    ),
                ),
            ),
        ),
    )


# replywatch's own rounds and the watchdog ------------------------------------------------------


def _rounds_file() -> RuleFile:
    grace = _WORDS[GRACE_INTERVALS]
    rounds = Group(
        "replywatch-rounds",
        (
            Alert(
                "ReplywatchRoundStalled",
                _lines(
                    f'time() - {Metric.ROUND_LAST_SUCCESS}{{round!="summary"}}',
                    f"> on (job, instance, round) {GRACE_INTERVALS} * {Metric.ROUND_INTERVAL}",
                ),
                "page",
                f"A replywatch round has not succeeded for more than {grace} intervals.",
                "The {{ $labels.round }} round of replywatch at {{ $labels.instance }} has not "
                f"completed for more than {grace} intervals: window figures are stale or no "
                "per-conversation alert goes out, for every account.",
                "5m",
                why=f"{grace.capitalize()} intervals, as /healthz judges it "
                "(monitor/core/round_health.py GRACE_INTERVALS); the weekly summary retries "
                "every 15 minutes and only opens a ticket (RoundErrors).",
            ),
            Alert(
                "ReplywatchRoundErrors",
                f"increase({Metric.ROUND_FAILURES}[30m]) > 0",
                "ticket",
                "A replywatch round keeps failing or skipping items.",
                "The {{ $labels.round }} round of replywatch at {{ $labels.instance }} has "
                "failed, or skipped items it cannot handle, for 30 minutes; the log names them.",
                "30m",
            ),
        ),
    )
    watchdog = Group(
        "replywatch-watchdog",
        (
            Alert(
                WATCHDOG,
                "vector(1)",
                "none",
                "Always firing, so that its silence shows the alerting path is broken.",
                "This alert fires all the time. Alertmanager sends it to a heartbeat service "
                "(a dead man's switch), which pages when it stops arriving: Prometheus no longer "
                "evaluates rules, or Alertmanager no longer sends.",
                None,
                why="Always firing, as kube-prometheus ships it: route it to a heartbeat "
                "service, which pages when the heartbeats stop "
                "(alerts/alertmanager.example.yml).",
            ),
        ),
    )
    return RuleFile(
        "rounds",
        "replywatch's own background rounds, and the dead man's switch of the whole alerting "
        "path. A round (window figures, SLI outcomes, conversation alerts, alert delivery, "
        "weekly summary) that stops succeeding leaves /metrics and the per-conversation alerts "
        "silent while the process still answers scrapes, so ReplywatchDown cannot see it.",
        (rounds, watchdog),
    )


def build() -> tuple[RuleFile, ...]:
    """Every rule file, built from the catalog as it is now."""
    return (_burn_rate_file(), _connectors_file(), _responsiveness_file(), _rounds_file())


# Rendering -------------------------------------------------------------------------------------


def _comment(text: str, indent: str) -> list[str]:
    """``text`` as YAML comment lines; lines of a table (leading spaces) are kept as they are."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        if paragraph.startswith(" "):
            lines.append(f"{indent}#{paragraph}")
            continue
        lines += textwrap.wrap(
            paragraph,
            _WIDTH,
            initial_indent=f"{indent}# ",
            subsequent_indent=f"{indent}# ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return lines


def _scalar(value: str) -> str:
    """A plain YAML scalar where one surely reads back as the same string, else double-quoted.

    Plain: starting with a letter (or a duration such as 15m), with no ": " or " #" and no
    word YAML 1.1 reads as a boolean or null. JSON's double-quoted strings are YAML too.
    """
    plain = (
        re.fullmatch(r"[A-Za-z][^\n\t]*|\d+[smhdwy]", value) is not None
        and ": " not in value
        and " #" not in value
        and not value.endswith((":", " "))
        and value.lower() not in _YAML_WORDS
    )
    return value if plain else json.dumps(value)


def _folded(key: str, value: str, indent: str) -> list[str]:
    # Folding turns each line break back into one space, so wrapping must never split a word
    # (break_on_hyphens would turn "per-conversation" into "per- conversation"). A template
    # ({{ $value | humanize }}) is kept on one line for the reader: its spaces are held by a
    # character no description contains while wrapping.
    held = re.sub(r"\{\{.*?\}\}", lambda m: m.group(0).replace(" ", _HELD), value)
    body = textwrap.wrap(
        held,
        _WIDTH - len(indent) - 2,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [f"{indent}{key}: >-", *(f"{indent}  {line.replace(_HELD, ' ')}" for line in body)]


def _literal(key: str, value: str, indent: str) -> list[str]:
    line = f"{indent}{key}: {_scalar(value)}"
    if "\n" not in value and len(line) <= _WIDTH:
        return [line]
    return [f"{indent}{key}: |-", *(f"{indent}  {line}" for line in value.splitlines())]


def _rule_lines(rule: Record | Alert) -> list[str]:
    at = "        "
    if isinstance(rule, Record):
        return [f"      - record: {_scalar(rule.record)}", *_literal("expr", rule.expr, at)]
    lines = [f"      - alert: {_scalar(rule.alert)}", *_literal("expr", rule.expr, at)]
    if rule.for_ is not None:
        lines.append(f"{at}for: {_scalar(rule.for_)}")
    lines.append(f"{at}labels:")
    labels = {"severity": rule.severity, **dict(rule.labels)}
    lines += [f"{at}  {key}: {_scalar(value)}" for key, value in labels.items()]
    lines.append(f"{at}annotations:")
    lines.append(f"{at}  summary: {_scalar(rule.summary)}")
    lines += _folded("description", rule.description, f"{at}  ")
    lines.append(f"{at}  runbook_url: {_scalar(rule.runbook_url)}")
    return lines


# Writing and checking --------------------------------------------------------------------------


def write_all(target: Path = RULES_DIR, files: Sequence[RuleFile] | None = None) -> list[Path]:
    """Write each rule file to ``<target>/<name>.yaml``; return the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for rule_file in build() if files is None else files:
        path = target / f"{rule_file.name}.yaml"
        path.write_text(rule_file.text(), encoding="utf-8")
        written.append(path)
    return written


def drifted(target: Path = RULES_DIR, files: Sequence[RuleFile] | None = None) -> list[str]:
    """Rule files whose committed YAML differs from what this module builds, or is extra."""
    built = {f.name: f.text() for f in (build() if files is None else files)}
    stale = [
        name
        for name, text in built.items()
        if not (target / f"{name}.yaml").is_file()
        or (target / f"{name}.yaml").read_text(encoding="utf-8") != text
    ]
    extra = [p.stem for p in target.glob("*.yaml") if p.stem not in built]
    return sorted(stale + extra)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alerts.rules`` writes the files; ``--check`` only reports drift."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--check"]:
        stale = drifted()
        for name in stale:
            print(f"alerts/rules/{name}.yaml differs from alerts/rules.py: run `make rules`")
        return 1 if stale else 0
    if args:
        print("usage: python -m alerts.rules [--check]", file=sys.stderr)
        return 2
    for path in write_all():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
