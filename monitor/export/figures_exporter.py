"""Window figures for Prometheus, served from a snapshot so a scrape never queries the store.

A background refresh computes every account's figures (``monitor.store.stats``, the one
implementation of metrics.md section 4) for its own profile and window, per account
(``channel="all"``), per channel and per tier, and keeps the opening times of the waits still
open. The snapshot is rendered straight to exposition text (:meth:`render_static`): at 10,000
accounts that is about a million samples, and building prometheus_client objects for each
would take seconds. ``collect()`` parses that same text, so there is one renderer. The
open-wait count and the age of the oldest are rendered at scrape time (:meth:`render_live`)
from the opening times, so they are always current. Names, help texts, types and label order
are those of the table (``monitor.export.specs``).

The age of the oldest wait is calendar time, for dashboards. What the alert rules read is the
instant each account's first open wait reaches warning and breach, computed by the
per-conversation alerts' own function (``level_deadline``) with the account's business hours:
a customer who writes at night is not late until the business clock has run. Every stored
account has both series, +Inf while no customer waits (within the alerts' ``max_age``, as
the conversation alerts count them), so a rule's series never comes and goes with the waits.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine, select

from monitor.core.figures import Figures
from monitor.core.hours import ScheduleError
from monitor.export import specs
from monitor.export.specs import MetricSpec
from monitor.notify.conversation_alerts import level_deadline
from monitor.store.accounts import AccountDirectory, account_names
from monitor.store.sli import SliTotals
from monitor.store.stats import StatsRow, account_stats
from monitor.store.tables import WAITS

__all__ = ["FiguresSnapshot"]

# Label names in the order the text writes them: the table's, so parsers and the table agree.
_LABELS = specs.WINDOW_WAITS.labels
_SLI_LABELS = specs.RESPONSE_TIME.labels
_OPEN_LABELS = specs.OPEN_WAITS.labels
_ACCOUNT_LABELS = specs.OPEN_WAIT_BREACH_AT.labels
_DEADLINES = (specs.OPEN_WAIT_WARNING_AT, specs.OPEN_WAIT_BREACH_AT)
_FIGURES: tuple[tuple[MetricSpec, Callable[[Figures], float | None]], ...] = (
    (specs.WINDOW_WAITS, lambda f: f.waits),
    (specs.WINDOW_ANSWERED, lambda f: f.answered),
    (specs.RESPONSE_RATE, lambda f: f.response_rate),
    (specs.WITHIN_TARGET, lambda f: f.within_target_share),
    (specs.MEAN_RESPONSE, lambda f: f.mean_response_seconds),
    (specs.MEDIAN_RESPONSE, lambda f: f.median_response_seconds),
    (specs.P90_RESPONSE, lambda f: f.p90_response_seconds),
    (specs.TARGET_MET, lambda f: None if f.target_met is None else float(f.target_met)),
)


@dataclass(frozen=True)
class _Snapshot:
    taken_at: datetime
    # Each row with its (channel, tier) labels: "all" for the side it is not split by.
    rows: tuple[tuple[StatsRow, str, str], ...]
    # (platform, account, channel) -> opening times of waits open when the snapshot was taken
    # that had not closed by then.
    open_waits: dict[tuple[str, str, str], tuple[datetime, ...]] = field(default_factory=dict)
    # account id -> (platform, account name)
    who: dict[int, tuple[str, str]] = field(default_factory=dict)
    # For the scrape-time render: (label text, open count, oldest opening as Unix time).
    live: tuple[tuple[str, int, float], ...] = ()
    # The deadline families' sample lines (warning, breach): fixed until the next refresh.
    deadlines: tuple[str, str] = ("", "")


class FiguresSnapshot(Collector):
    """A Prometheus collector over figures computed in the background."""

    def __init__(
        self,
        engine: Engine,
        accounts: AccountDirectory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sli: SliTotals | None = None,
        include_live: bool = True,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.clock = clock
        self.sli = sli
        # False when monitor.export.exposition renders the open-wait families itself (render_live).
        self.include_live = include_live
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Recompute every figure from the store (run this off the event loop)."""
        now = self.clock()
        with self.engine.connect() as connection:
            rows = [(r, "all", "all") for r in account_stats(connection, self.accounts, as_of=now)]
            by_channel = account_stats(connection, self.accounts, as_of=now, by="channel")
            by_tier = account_stats(connection, self.accounts, as_of=now, by="tier")
            rows += [(r, r.group or "all", "all") for r in by_channel]
            rows += [(r, "all", r.group or "all") for r in by_tier]
            who = account_names(connection)
            result = connection.execute(
                select(WAITS.c.account_id, WAITS.c.channel, WAITS.c.tier, WAITS.c.opened_at).where(
                    WAITS.c.closed_at.is_(None)
                )
            )
            open_waits: dict[tuple[str, str, str], list[datetime]] = {}
            # (account id, channel, tier) -> the oldest opening the conversation alerts watch.
            alerted: dict[tuple[int, str, str], datetime] = {}
            since = now - self.accounts.config.alerts.max_age
            for account_id, channel, tier, opened in result:
                key = (*who[account_id], channel)
                open_waits.setdefault(key, []).append(opened)
                group = (account_id, channel, tier)
                if since <= opened <= now and (group not in alerted or opened < alerted[group]):
                    alerted[group] = opened
        frozen = {k: tuple(v) for k, v in open_waits.items()}
        deadlines = self._deadline_lines(who, alerted)
        snapshot = _Snapshot(now, tuple(rows), frozen, who, _live_rows(frozen), deadlines)
        with self._lock:
            self._snapshot = snapshot

    def _deadline_lines(
        self, who: dict[int, tuple[str, str]], alerted: dict[tuple[int, str, str], datetime]
    ) -> tuple[str, str]:
        # A wait's deadline only moves later with its opening (same targets, same calendar),
        # so the oldest wait of each (account, channel, tier) holds that group's earliest.
        first: dict[int, list[float]] = {ident: [math.inf, math.inf] for ident in who}
        for (account_id, channel, tier), opened in alerted.items():
            if account_id not in who:
                continue
            policy = self.accounts.policy(who[account_id][1])
            for slot, level in enumerate(("warning", "breach")):
                try:
                    at = level_deadline(policy, channel, tier, opened, level).timestamp()
                except ScheduleError:
                    # Holidays close every day: no business time passes, no alert ever fires.
                    continue
                first[account_id][slot] = min(first[account_id][slot], at)
        lines: tuple[list[str], list[str]] = ([], [])
        for account_id, values in sorted(first.items(), key=lambda item: who[item[0]]):
            labels = _label_text(_ACCOUNT_LABELS, who[account_id])
            for spec, out, value in zip(_DEADLINES, lines, values, strict=True):
                out.append(f"{spec.name}{{{labels}}} {_number(value)}\n")
        return "".join(lines[0]), "".join(lines[1])

    def render_live(self, openmetrics: bool = False) -> bytes:
        """The open-wait families in exposition format, aged to this instant (fast path)."""
        with self._lock:
            snapshot = self._snapshot
        now = self.clock().timestamp()
        out = [_LIVE_HEADERS]
        rows = snapshot.live if snapshot is not None else ()
        out += [f"{_OPEN_WAITS}{{{labels}}} {count}.0\n" for labels, count, _ in rows]
        out.append(_OLDEST_HEADERS)
        out += [
            f"{_OLDEST_OPEN_WAIT}{{{labels}}} {max(0.0, now - oldest)!r}\n"
            for labels, _count, oldest in rows
        ]
        # From the same snapshot as the open waits, so a rule never sees one without the other.
        deadlines = snapshot.deadlines if snapshot is not None else ("", "")
        for headers, lines in zip(_DEADLINE_HEADERS, deadlines, strict=True):
            out += [headers, lines]
        return "".join(out).encode()

    def describe(self) -> Iterable[Metric]:
        """Registration must never query: describe with empty families."""
        return list(_parse(self._render(None, live=True)))

    def collect(self) -> Iterable[Metric]:
        """The latest snapshot as metric families (parsed from the one text renderer)."""
        with self._lock:
            snapshot = self._snapshot
        return list(_parse(self._render(snapshot, live=self.include_live)))

    def render_static(self, openmetrics: bool = False) -> bytes:
        """Everything but the scrape-time families, as exposition text (fast path)."""
        with self._lock:
            snapshot = self._snapshot
        return self._render(snapshot, live=False, openmetrics=openmetrics).encode()

    def _render(self, snapshot: _Snapshot | None, live: bool, openmetrics: bool = False) -> str:
        out: list[str] = []
        rows = [
            (
                _label_text(_LABELS, (r.platform, r.account, channel, r.figures.profile, tier)),
                r.figures,
            )
            for r, channel, tier in (snapshot.rows if snapshot else ())
        ]
        for spec, value_of in _FIGURES:
            out.append(_header(spec, openmetrics))
            for labels, figures in rows:
                value = value_of(figures)
                if value is not None:
                    out.append(f"{spec.name}{{{labels}}} {_number(value)}\n")
        out.append(_header(specs.FIGURES_SNAPSHOT, openmetrics))
        if snapshot is not None:
            taken = _number(snapshot.taken_at.timestamp())
            out.append(f"{specs.FIGURES_SNAPSHOT.name} {taken}\n")
        sli = self.sli if self.sli is not None else SliTotals(())
        out += _sli_lines(sli, snapshot.who if snapshot else {}, self.accounts, openmetrics)
        text = "".join(out)
        if live:
            text += self.render_live().decode()
        return text


def _sli_lines(
    totals: SliTotals,
    who: dict[int, tuple[str, str]],
    accounts: AccountDirectory,
    openmetrics: bool,
) -> list[str]:
    outcomes = [_header(specs.SLI_OUTCOMES, openmetrics)]
    histogram = [_header(specs.RESPONSE_TIME, openmetrics)]
    bounds = [_go_float(bound) for bound in totals.buckets] + ["+Inf"]
    # One read of the dict: a reload puts a new one in place meanwhile (SliTotals.load).
    for key, counts in sorted(totals.counts.items()):
        account_id, channel, tier = key
        if account_id not in who:
            continue
        platform, name = who[account_id]
        profile = accounts.policy(name).profile_for(channel).name
        labels = _label_text(_SLI_LABELS, (platform, name, channel, tier, profile))
        outcomes.append(f'{_SLI_TOTAL}{{{labels},outcome="met"}} {counts.met}.0\n')
        outcomes.append(f'{_SLI_TOTAL}{{{labels},outcome="missed"}} {counts.missed}.0\n')
        for bound, count in zip(bounds, counts.cumulative(), strict=True):
            histogram.append(f'{_RESPONSE_BUCKET}{{{labels},le="{bound}"}} {count}.0\n')
        histogram.append(f"{_RESPONSE_COUNT}{{{labels}}} {counts.answered}.0\n")
        histogram.append(f"{_RESPONSE_SUM}{{{labels}}} {_number(counts.response_sum)}\n")
    return outcomes + histogram


def _header(spec: MetricSpec, openmetrics: bool = False) -> str:
    # The text format names a counter family with its _total suffix, OpenMetrics without.
    # Help texts need no escaping in either format (tests/monitor/test_metric_specs.py).
    name = spec.total if spec.type == "counter" and not openmetrics else spec.name
    return f"# HELP {name} {spec.help}\n# TYPE {name} {spec.type}\n"


def _number(value: float) -> str:
    number = float(value)
    return repr(number) if math.isfinite(number) else _go_float(number)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _parse(text: str) -> Iterable[Metric]:
    return text_string_to_metric_families(text)


# Rendered at every scrape: the same in both formats (gauges).
_LIVE_HEADERS = _header(specs.OPEN_WAITS)
_OLDEST_HEADERS = _header(specs.OLDEST_OPEN_WAIT)
_DEADLINE_HEADERS = tuple(_header(spec) for spec in _DEADLINES)
_OPEN_WAITS = specs.OPEN_WAITS.name
_OLDEST_OPEN_WAIT = specs.OLDEST_OPEN_WAIT.name
_SLI_TOTAL = specs.SLI_OUTCOMES.total
_RESPONSE_BUCKET = specs.RESPONSE_TIME.bucket
_RESPONSE_COUNT = specs.RESPONSE_TIME.count
_RESPONSE_SUM = specs.RESPONSE_TIME.sum


def _live_rows(
    open_waits: dict[tuple[str, str, str], tuple[datetime, ...]],
) -> tuple[tuple[str, int, float], ...]:
    rows = []
    totals: dict[tuple[str, str], list[datetime]] = {}
    for (platform, account, channel), times in open_waits.items():
        labels = _label_text(_OPEN_LABELS, (platform, account, channel))
        rows.append((labels, len(times), min(times).timestamp()))
        totals.setdefault((platform, account), []).extend(times)
    for (platform, account), merged in totals.items():
        labels = _label_text(_OPEN_LABELS, (platform, account, "all"))
        rows.append((labels, len(merged), min(merged).timestamp()))
    return tuple(rows)


def _go_float(value: float) -> str:
    # The text Prometheus' own clients give a bucket bound ("900.0"), so `le` matches theirs.
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text
