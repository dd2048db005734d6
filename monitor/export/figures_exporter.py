"""Window figures for Prometheus, served from a snapshot so a scrape never queries the store.

A background refresh computes every account's figures (``monitor.store.stats``, the one
implementation of metrics.md section 4) for its own profile and window, and keeps the opening
times of the waits still open. By default only each account's totals are exported; the
``[metrics]`` switches add the per-channel and per-tier breakdowns (families of their own,
``replywatch_channel_*`` and ``replywatch_tier_*``) and the response-time histogram. The
snapshot is rendered straight to exposition text (:meth:`render_static`): building
prometheus_client objects for 10,000 accounts' samples would take seconds. ``collect()``
parses that same text, so there is one renderer. The open-wait count and the age of the
oldest are rendered at scrape time (:meth:`render_live`) from the opening times, so they are
always current; every stored account has them, 0 while nobody waits. Names, help texts, types
and label order are those of the table (``monitor.export.specs``).

The age of the oldest wait is calendar time, for dashboards. What the alert rules read is the
instant each account's first open wait reaches warning and breach, computed by the
per-conversation alerts' own function (``level_deadline``) with the account's business hours:
a customer who writes at night is not late until the business clock has run. Every stored
account has both series, +Inf while no customer waits (within the alerts' ``max_age``, as
the conversation alerts count them), so a rule's series never comes and goes with the waits.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Connection, Engine

from monitor.core.due_times import FULL_EVERY, INSTANT, DueTimes, full_round_due
from monitor.core.figures import Figures
from monitor.core.hours import ScheduleError
from monitor.export import specs
from monitor.export.specs import MetricSpec
from monitor.notify.conversation_alerts import level_deadline
from monitor.store.accounts import AccountDirectory, AccountPolicy, account_names
from monitor.store.id_lists import raw_any_of
from monitor.store.rawsql import RawSql
from monitor.store.sli import SliTotals, profile_buckets
from monitor.store.stats import Grouping, StatsRequest, StatsRow, account_stats_for

__all__ = ["FiguresSnapshot"]

# Label names in the order the text writes them: the table's, so parsers and the table agree.
_ACCOUNT_LABELS = specs.WINDOW_WAITS.labels
_CHANNEL_LABELS = specs.CHANNEL_FIGURES[0].labels
_TIER_LABELS = specs.TIER_FIGURES[0].labels
_HISTOGRAM_LABELS = specs.RESPONSE_TIME.labels
_CHANNEL_OPEN_LABELS = specs.CHANNEL_OPEN_WAITS.labels
_DEADLINES = (specs.OPEN_WAIT_WARNING_AT, specs.OPEN_WAIT_BREACH_AT)
# What each window figure reads of a Figures, in the table's order (the same for every level).
_VALUES: tuple[Callable[[Figures], float | None], ...] = (
    lambda f: f.waits,
    lambda f: f.answered,
    lambda f: f.response_rate,
    lambda f: f.within_target_share,
    lambda f: f.mean_response_seconds,
    lambda f: f.median_response_seconds,
    lambda f: f.p90_response_seconds,
    lambda f: None if f.target_met is None else float(f.target_met),
)


@dataclass(frozen=True)
class _LiveEntry:
    """One account's part of the scrape-time families, kept between refreshes."""

    # (label text, open count, oldest opening as Unix time or None when nobody waits)
    row: tuple[str, int, float | None]
    # The same per channel someone waits on.
    channels: tuple[tuple[str, int, float], ...]
    # Its lines of the deadline families (warning, breach).
    deadlines: tuple[str, str]


@dataclass(frozen=True)
class _Snapshot:
    taken_at: datetime
    # The families of each group (account totals, per channel, per tier) ...
    groups: tuple[tuple[MetricSpec, ...], ...]
    # ... and each account's sample lines of them, in label order (group, then family). The
    # accounts' own tuples, not a copy joined per family: the text is held once, not twice.
    lines: tuple[list[tuple[str, ...]], ...]
    # account id -> (platform, account name)
    who: dict[int, tuple[str, str]] = field(default_factory=dict)
    # For the scrape-time render, per account then per channel (when broken down):
    # (label text, open count, oldest opening as Unix time or None when nobody waits).
    live: tuple[tuple[str, int, float | None], ...] = ()
    live_channels: tuple[tuple[str, int, float | None], ...] = ()
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
        incremental: bool = False,
        full_every: timedelta = FULL_EVERY,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.clock = clock
        self.sli = sli
        # False when monitor.export.exposition renders the open-wait families itself (render_live).
        self.include_live = include_live
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        # Incremental refresh: each account's labelled rows per family group, when its figures
        # next move by time alone, and the accounts reported changed since the last refresh.
        self.incremental = incremental
        self.full_every = full_every
        # account -> per family group, per family: its sample lines, rendered once per change.
        self._lines: dict[str, list[tuple[str, ...]]] = {}
        self._due: DueTimes[str] = DueTimes()
        self._changed: set[str] = set()
        self._computed_at: datetime | None = None
        # account id -> its open waits' part of the scrape-time families.
        self._live: dict[int, _LiveEntry] = {}

    def mark_changed(self, keys: Iterable[tuple[str, str]]) -> None:
        """Note accounts whose waits changed (the ingestor calls this after each commit)."""
        with self._lock:
            self._changed.update(name for _platform, name in keys)

    def refresh(self) -> None:
        """Bring every figure up to date (run this off the event loop).

        A full recomputation at the first refresh and every ``full_every``; in between, only
        the accounts the ingestor reported changed and those whose figures time alone moves
        (a wait leaving the window, an open wait reaching a target) since the last one. The
        full recomputation is the oracle the incremental one is tested against.
        """
        now = self.clock()
        breakdowns = self.accounts.config.metrics.breakdowns
        with self._lock:
            changed, self._changed = self._changed, set()
        full = full_round_due(self.incremental, self._computed_at, now, self.full_every)
        with self.engine.connect() as connection:
            dirty = None if full else changed | self._due.due(now)
            who = account_names(connection)
            self._recompute(connection, now, breakdowns, dirty, who)
            self._refresh_live(connection, who, now, dirty)
        if full:
            self._computed_at = now
        groups = tuple(families for _by, families in _levels(breakdowns))
        ordered = tuple(self._lines[name] for name in sorted(self._lines))
        # Every stored account in label order: a caught-up account reads 0, it does not vanish.
        live = [self._live[ident] for ident in sorted(who, key=who.__getitem__)]
        channels = tuple(row for entry in live for row in entry.channels)
        deadlines = (
            "".join(entry.deadlines[0] for entry in live),
            "".join(entry.deadlines[1] for entry in live),
        )
        snapshot = _Snapshot(
            now,
            groups,
            ordered,
            who,
            tuple(entry.row for entry in live),
            channels if "channel" in breakdowns else (),
            deadlines,
        )
        with self._lock:
            self._snapshot = snapshot

    def _recompute(
        self,
        connection: Connection,
        now: datetime,
        breakdowns: Sequence[str],
        dirty: set[str] | None,
        who: dict[int, tuple[str, str]],
    ) -> None:
        """Recompute the figures of ``dirty`` accounts (None: every account) of ``who``."""
        if dirty is not None and not dirty:
            return
        names = sorted(dirty) if dirty is not None else ()
        levels = _levels(breakdowns)
        # One read of the waits for every family group (the account's, per channel, per tier).
        tables = account_stats_for(
            connection,
            self.accounts,
            [StatsRequest(by=by) for by, _families in levels],
            as_of=now,
            accounts=names,
        )
        grouped: dict[str, list[list[tuple[str, Figures]]]] = {}
        for i, ((by, _families), table) in enumerate(zip(levels, tables, strict=True)):
            for row in table:
                grouped.setdefault(row.account, [[] for _ in levels])[i].append(_labelled(row, by))
        fresh = {
            name: [_sample_lines(families, rows[i]) for i, (_by, families) in enumerate(levels)]
            for name, rows in grouped.items()
        }
        if dirty is None:
            self._lines = fresh
        else:
            for name in dirty:
                # An account no longer stored (none today) drops out; the others are replaced.
                self._lines.pop(name, None)
            self._lines.update(fresh)
        self._due.forget(dirty)
        if self.incremental:
            # Only an incremental snapshot asks when figures next move (serve recomputes all).
            wanted = {ident: name for ident, (_platform, name) in who.items() if name in fresh}
            _note_next_changes(self._due, connection, self.accounts, wanted, now)

    def _refresh_live(
        self,
        connection: Connection,
        who: dict[int, tuple[str, str]],
        now: datetime,
        dirty: set[str] | None,
    ) -> None:
        """Re-read the open waits of ``dirty`` accounts (None: every account)."""
        wanted = [
            ident
            for ident, (_platform, name) in who.items()
            if dirty is None or name in dirty or ident not in self._live
        ]
        if not wanted:
            return
        # On the driver's cursor: SQLAlchemy's per-value time conversion was a few percent of
        # the monitor's CPU at 5,000 accounts.
        sql = RawSql(connection)
        only, params = raw_any_of(sql, "account_id", wanted) if dirty is not None else ("", ())
        rows = sql.fetch(
            "SELECT account_id, channel, tier, opened_at FROM waits WHERE closed_at IS NULL"
            + (f" AND {only}" if only else ""),
            params,
        )
        read = sql.read_time
        waits: dict[int, list[tuple[str, str, datetime]]] = {ident: [] for ident in wanted}
        for account_id, channel, tier, opened in rows:
            found = waits.get(account_id)
            if found is not None:
                found.append((channel, tier, read(opened)))
        if dirty is None:
            self._live = {}
        for ident in wanted:
            self._live[ident] = self._live_entry(who[ident], waits[ident], now)

    def _live_entry(
        self, names: tuple[str, str], waits: list[tuple[str, str, datetime]], now: datetime
    ) -> _LiveEntry:
        """One account's open-wait rows and deadline lines, from its open waits."""
        platform, name = names
        by_channel: dict[str, list[datetime]] = {}
        # (channel, tier) -> the oldest opening the conversation alerts watch.
        alerted: dict[tuple[str, str], datetime] = {}
        max_age = self.accounts.config.alerts.max_age
        since = now - max_age
        for channel, tier, opened in waits:
            by_channel.setdefault(channel, []).append(opened)
            if since <= opened <= now and (
                (channel, tier) not in alerted or opened < alerted[channel, tier]
            ):
                alerted[channel, tier] = opened
            if self.incremental:
                # The alerts stop watching a wait after max_age: its deadlines then drop out.
                # A wait stored with an absurd time (year 9999) moves nothing.
                with contextlib.suppress(OverflowError):
                    self._due.note(name, opened + max_age + INSTANT, now)
        oldest = min((min(times) for times in by_channel.values()), default=None)
        row = (
            _label_text(_ACCOUNT_LABELS, names),
            len(waits),
            None if oldest is None else oldest.timestamp(),
        )
        # The channels someone waits on (a channel nobody ever wrote on has no series).
        channels = tuple(
            (
                _label_text(_CHANNEL_OPEN_LABELS, (platform, name, channel)),
                len(times),
                min(times).timestamp(),
            )
            for channel, times in sorted(by_channel.items())
        )
        return _LiveEntry(row, channels, self._deadline_lines(names, alerted))

    def _deadline_lines(
        self, names: tuple[str, str], alerted: dict[tuple[str, str], datetime]
    ) -> tuple[str, str]:
        # A wait's deadline only moves later with its opening (same targets, same calendar),
        # so the oldest wait of each (channel, tier) holds that group's earliest.
        first = [math.inf, math.inf]
        policy = self.accounts.policy(names[1])
        for (channel, tier), opened in alerted.items():
            for slot, level in enumerate(("warning", "breach")):
                try:
                    at = level_deadline(policy, channel, tier, opened, level).timestamp()
                    # Written to the millisecond: rounded up, a rule never fires before the
                    # conversation alert does.
                    at = math.ceil(at * 1000) / 1000
                except ScheduleError:
                    # Holidays close every day: no business time passes, no alert ever fires.
                    continue
                first[slot] = min(first[slot], at)
        labels = _label_text(_ACCOUNT_LABELS, names)
        warning, breach = (
            f"{spec.name}{{{labels}}} {_number(value, spec.unit)}\n"
            for spec, value in zip(_DEADLINES, first, strict=True)
        )
        return warning, breach

    def render_live(self, openmetrics: bool = False) -> bytes:
        """The open-wait families in exposition format, aged to this instant (fast path)."""
        with self._lock:
            snapshot = self._snapshot
        now = self.clock().timestamp()
        out: list[str] = []
        levels = [(specs.OPEN_WAITS, specs.OLDEST_OPEN_WAIT, snapshot.live if snapshot else ())]
        if snapshot is not None and snapshot.live_channels:
            levels.append(
                (specs.CHANNEL_OPEN_WAITS, specs.CHANNEL_OLDEST_OPEN_WAIT, snapshot.live_channels)
            )
        for count_spec, oldest_spec, rows in levels:
            out.append(_header(count_spec))
            out += [f"{count_spec.name}{{{labels}}} {count}\n" for labels, count, _ in rows]
            out.append(_header(oldest_spec))
            out += [
                f"{oldest_spec.name}{{{labels}}} {_age(now, oldest)}\n"
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
        groups = snapshot.groups if snapshot else (specs.WINDOW_FIGURES,)
        accounts = snapshot.lines if snapshot else ()
        for i, families in enumerate(groups):
            for f, spec in enumerate(families):
                out.append(_header(spec, openmetrics))
                out += [lines[i][f] for lines in accounts]
        out.append(_header(specs.FIGURES_SNAPSHOT, openmetrics))
        if snapshot is not None:
            taken = _number(snapshot.taken_at.timestamp())
            out.append(f"{specs.FIGURES_SNAPSHOT.name} {taken}\n")
        sli = self.sli if self.sli is not None else SliTotals(())
        histogram = self.accounts.config.metrics.response_time_histogram
        who = snapshot.who if snapshot else {}
        out += _sli_lines(sli, who, self.accounts, openmetrics, histogram)
        text = "".join(out)
        if live:
            text += self.render_live().decode()
        return text


def _sli_lines(
    totals: SliTotals,
    who: dict[int, tuple[str, str]],
    accounts: AccountDirectory,
    openmetrics: bool,
    histogram: bool,
) -> list[str]:
    # The counters are kept per (account, channel, tier) at every profile's bounds; the
    # outcomes are exported per account, the histogram per account and profile at its own.
    outcomes: dict[int, list[int]] = {}
    answers: dict[tuple[int, str], _Answers] = {}
    bounds = list(totals.buckets)
    # One read of the dict: a reload puts a new one in place meanwhile (SliTotals.load).
    for (account_id, channel, _tier), counts in totals.counts.items():
        if account_id not in who:
            continue
        both = outcomes.setdefault(account_id, [0, 0])
        both[0] += counts.met
        both[1] += counts.missed
        if histogram:
            profile = accounts.policy(who[account_id][1]).profile_for(channel)
            key = (account_id, profile.name)
            if key not in answers:
                answers[key] = _Answers(profile_buckets(profile), bounds)
            answers[key].add(counts.cumulative(), counts.answered, counts.response_sum)
    lines = [_header(specs.SLI_OUTCOMES, openmetrics)]
    for account_id, (met, missed) in sorted(outcomes.items(), key=lambda item: who[item[0]]):
        labels = _label_text(_ACCOUNT_LABELS, who[account_id])
        lines.append(f'{_SLI_TOTAL}{{{labels},outcome="met"}} {met}\n')
        lines.append(f'{_SLI_TOTAL}{{{labels},outcome="missed"}} {missed}\n')
    if not histogram:
        return lines
    lines.append(_header(specs.RESPONSE_TIME, openmetrics))
    for (account_id, profile_name), sums in sorted(
        answers.items(), key=lambda i: (who[i[0][0]], i[0][1])
    ):
        labels = _label_text(_HISTOGRAM_LABELS, (*who[account_id], profile_name))
        for bound, count in sums.buckets():
            lines.append(f'{_RESPONSE_BUCKET}{{{labels},le="{bound}"}} {count}.0\n')
        lines.append(f"{_RESPONSE_COUNT}{{{labels}}} {sums.answered}.0\n")
        lines.append(f"{_RESPONSE_SUM}{{{labels}}} {_number(sums.response_sum)}\n")
    return lines


class _Answers:
    """One (account, profile)'s answers, summed over its channels and tiers at its own bounds."""

    def __init__(self, own: Sequence[float], kept: Sequence[float]) -> None:
        # The counters are kept at the union of every profile's bounds (histogram_buckets), so
        # the cumulative count at an own bound is exact. A bound not kept (a profile the
        # counters were not set up for) is left out rather than guessed.
        at = {bound: slot for slot, bound in enumerate(kept)}
        own = [bound for bound in own if bound in at]
        self.slots = [at[bound] for bound in own] + [len(kept)]
        self.labels = [_go_float(bound) for bound in own] + ["+Inf"]
        self.cumulative = [0] * len(self.slots)
        self.answered = 0
        self.response_sum = 0.0

    def add(self, cumulative: Sequence[int], answered: int, response_sum: float) -> None:
        """Add one (channel, tier)'s counts, cumulative at every kept bound then +Inf."""
        for i, slot in enumerate(self.slots):
            self.cumulative[i] += cumulative[slot]
        self.answered += answered
        self.response_sum += response_sum

    def buckets(self) -> list[tuple[str, int]]:
        """(le label, cumulative count) at each of the profile's bounds, then +Inf."""
        return list(zip(self.labels, self.cumulative, strict=True))


def _header(spec: MetricSpec, openmetrics: bool = False) -> str:
    # The text format names a counter family with its _total suffix, OpenMetrics without.
    # Help texts need no escaping in either format (tests/monitor/test_metric_specs.py).
    name = spec.total if spec.type == "counter" and not openmetrics else spec.name
    return f"# HELP {name} {spec.help}\n# TYPE {name} {spec.type}\n"


def _number(value: float, unit: str | None = None) -> str:
    number = float(value)
    if not math.isfinite(number):
        return _go_float(number)
    # A figure's text is most of a scrape's bytes. Seconds to the millisecond and ratios to
    # nine significant digits say everything the store knows that a rule could tell apart
    # (a ratio of counts below a billion), in about half the characters of repr().
    if unit == "ratio":
        return f"{number:.9g}"
    if unit == "seconds":
        number = round(number, 3)
    # Counts and whole seconds without ".0": the text format reads "5" as 5.0.
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _parse(text: str) -> Iterable[Metric]:
    return text_string_to_metric_families(text)


# Rendered at every scrape: the same in both formats (gauges).
_DEADLINE_HEADERS = tuple(_header(spec) for spec in _DEADLINES)
_SLI_TOTAL = specs.SLI_OUTCOMES.total
_RESPONSE_BUCKET = specs.RESPONSE_TIME.bucket
_RESPONSE_COUNT = specs.RESPONSE_TIME.count
_RESPONSE_SUM = specs.RESPONSE_TIME.sum


# The family groups in the order they are rendered: the account's totals, then the
# breakdowns that ``[metrics] breakdowns`` turns on.
_LEVELS: tuple[tuple[Grouping, tuple[MetricSpec, ...]], ...] = (
    ("account", specs.WINDOW_FIGURES),
    ("channel", specs.CHANNEL_FIGURES),
    ("tier", specs.TIER_FIGURES),
)


def _levels(breakdowns: Sequence[str]) -> list[tuple[Grouping, tuple[MetricSpec, ...]]]:
    """The family groups this config exports."""
    return [(by, families) for by, families in _LEVELS if by == "account" or by in breakdowns]


def _sample_lines(
    families: tuple[MetricSpec, ...], rows: Sequence[tuple[str, Figures]]
) -> tuple[str, ...]:
    """One account's sample lines of each family of a group (a figure that is unset has none)."""
    texts = []
    for spec, value_of in zip(families, _VALUES, strict=True):
        lines = []
        for labels, figures in rows:
            value = value_of(figures)
            if value is not None:
                lines.append(f"{spec.name}{{{labels}}} {_number(value, spec.unit)}\n")
        texts.append("".join(lines))
    return tuple(texts)


def _labelled(row: StatsRow, by: Grouping) -> tuple[str, Figures]:
    """A row's label text for its family group (an account's, or per channel or tier)."""
    if by == "account":
        return _label_text(_ACCOUNT_LABELS, (row.platform, row.account)), row.figures
    if by == "channel":
        values = (row.platform, row.account, row.group or "", row.figures.profile)
        return _label_text(_CHANNEL_LABELS, values), row.figures
    return _label_text(_TIER_LABELS, (row.platform, row.account, row.group or "")), row.figures


def _note_next_changes(
    due: DueTimes[str],
    connection: Connection,
    accounts: AccountDirectory,
    wanted: dict[int, str],
    now: datetime,
) -> None:
    """Note when each of the ``wanted`` accounts' (id -> name) figures next move with no new
    event: the first of its waits to leave its window, or of its open waits to reach a target
    (metrics.md 4).

    Early, never late: every window and every target of any of the account's profiles and
    tiers, in calendar time (a business-time deadline is never earlier). An account with
    business hours and a customer waiting is due at every refresh.
    """
    if not wanted:
        return
    policies = {name: accounts.policy(name) for name in set(wanted.values())}
    # Every window of the account's profiles: a wait leaves each at its own time.
    windows = {name: {p.window for p in policy.profiles} for name, policy in policies.items()}
    targets = {name: _target_spans(policy) for name, policy in policies.items()}
    earliest = now - max(max(spans) for spans in windows.values())

    def keep(name: str, opened: datetime, span: timedelta) -> None:
        try:
            due.note(name, opened + span, now)
        except OverflowError:
            return  # a wait stored with an absurd time (year 9999) moves nothing in time

    sql = RawSql(connection)
    only, params = raw_any_of(sql, "account_id", list(wanted))
    mark = sql.mark
    rows = sql.fetch(
        f"SELECT account_id, opened_at, closed_at FROM waits WHERE {only} AND "
        f"(opened_at >= {mark} OR closed_at IS NULL OR closed_at > {mark})",
        (*params, sql.time(earliest), sql.time(now)),
    )
    read = sql.read_time
    for account_id, opened_text, closed_text in rows:
        name = wanted[int(account_id)]
        opened = read(opened_text)
        closed = None if closed_text is None else read(closed_text)
        # Times up to the allowed clock skew ahead: a wait enters the window (the window ends
        # before as_of) and an answer counts only once the clock has passed them.
        keep(name, opened, INSTANT)
        if closed is not None:
            keep(name, closed, INSTANT)
        for window in windows[name]:
            if now - window <= opened:
                keep(name, opened, window)
        if closed is None or closed > now:
            if policies[name].calendar is not None:
                due.every_round(name, now)  # business time: recompute at every refresh
                continue
            for span in targets[name]:
                keep(name, opened, span)


def _target_spans(policy: AccountPolicy) -> tuple[timedelta, ...]:
    """Every response target and reply deadline the account's waits may be judged on."""
    spans: set[timedelta] = set()
    for profile in policy.profiles:
        for targets in profile.all_targets:
            spans |= {targets.response_target, targets.reply_deadline}
    return tuple(sorted(spans))


def _age(now: float, oldest: float | None) -> str:
    return "0" if oldest is None else _number(max(0.0, now - oldest), "seconds")


def _go_float(value: float) -> str:
    # The text Prometheus' own clients give a bucket bound ("900.0"), so `le` matches theirs.
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text
