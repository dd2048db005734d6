"""Window figures for Prometheus, served from a snapshot so a scrape never queries the store.

A background refresh computes every account's figures (``monitor.stats``, the one
implementation of metrics.md section 4) for its own profile and window, per account
(``channel="all"``) and per channel, and keeps the opening times of the waits still open. A
scrape turns the snapshot into metric families; the open-wait count and the age of the oldest
are computed at scrape time from those opening times, so they are always current.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine, select

from monitor.accounts import AccountDirectory
from monitor.figures import Figures
from monitor.ingest import WAITS
from monitor.models import Account
from monitor.sli import SliTotals
from monitor.stats import StatsRow, account_stats

__all__ = ["FiguresSnapshot"]

_ACCOUNTS = Account.__table__  # type: ignore[attr-defined]
_LABELS = ["platform", "account", "channel", "profile", "tier"]
_FIGURES: tuple[tuple[str, str, Callable[[Figures], float | None]], ...] = (
    ("window_waits", "Waits opened in the profile's window.", lambda f: f.waits),
    ("window_answered", "Of those, answered.", lambda f: f.answered),
    ("response_rate_ratio", "Waits answered within the reply deadline / decided waits.",
     lambda f: f.response_rate),
    ("within_target_ratio", "Waits answered within the response-time target / decided.",
     lambda f: f.within_target_share),
    ("mean_response_seconds", "Mean response time of answered waits.",
     lambda f: f.mean_response_seconds),
    ("median_response_seconds", "Median response time of answered waits.",
     lambda f: f.median_response_seconds),
    ("p90_response_seconds", "90th percentile response time (linear interpolation).",
     lambda f: f.p90_response_seconds),
    ("target_met", "1 when the badge rule holds, 0 when not (absent: too little data).",
     lambda f: None if f.target_met is None else float(f.target_met)),
)  # fmt: skip


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


class FiguresSnapshot(Collector):
    """A Prometheus collector over figures computed in the background."""

    def __init__(
        self,
        engine: Engine,
        accounts: AccountDirectory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sli: SliTotals | None = None,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.clock = clock
        self.sli = sli
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
            who: dict[int, tuple[str, str]] = {
                int(ident): (platform, name)
                for ident, platform, name in connection.execute(
                    select(_ACCOUNTS.c.id, _ACCOUNTS.c.platform, _ACCOUNTS.c.name)
                )
            }
            result = connection.execute(
                select(WAITS.c.account_id, WAITS.c.channel, WAITS.c.opened_at).where(
                    WAITS.c.closed_at.is_(None)
                )
            )
            open_waits: dict[tuple[str, str, str], list[datetime]] = {}
            for account_id, channel, opened in result:
                key = (*who[account_id], channel)
                open_waits.setdefault(key, []).append(opened)
        snapshot = _Snapshot(now, tuple(rows), {k: tuple(v) for k, v in open_waits.items()}, who)
        with self._lock:
            self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        """Registration must never query: describe with empty families."""
        return list(self._families(None, self.clock()))

    def collect(self) -> Iterable[Metric]:
        """Turn the latest snapshot into metric families."""
        with self._lock:
            snapshot = self._snapshot
        return list(self._families(snapshot, self.clock()))

    def _families(self, snapshot: _Snapshot | None, now: datetime) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(f"replywatch_{name}", text, labels=_LABELS)
            for name, text, _value in _FIGURES
        }
        open_count = GaugeMetricFamily(
            "replywatch_open_waits",
            "Customers waiting for an answer right now.",
            labels=_LABELS[:3],
        )
        oldest = GaugeMetricFamily(
            "replywatch_oldest_open_wait_seconds",
            "How long the longest-waiting customer has waited.",
            labels=_LABELS[:3],
        )
        age = GaugeMetricFamily(
            "replywatch_figures_snapshot_timestamp_seconds",
            "When the window figures were last computed.",
        )
        if snapshot is not None:
            for row, channel, tier in snapshot.rows:
                labels = [row.platform, row.account, channel, row.figures.profile, tier]
                for name, _text, value_of in _FIGURES:
                    value = value_of(row.figures)
                    if value is not None:
                        families[name].add_metric(labels, float(value))
            totals: dict[tuple[str, str], list[datetime]] = {}
            for (platform, account, channel), times in snapshot.open_waits.items():
                _add_open(open_count, oldest, [platform, account, channel], times, now)
                totals.setdefault((platform, account), []).extend(times)
            for (platform, account), merged in totals.items():
                _add_open(open_count, oldest, [platform, account, "all"], merged, now)
            age.add_metric([], snapshot.taken_at.timestamp())
        yield from families.values()
        yield from (open_count, oldest, age)
        # Described even without totals, so the families are known before the first refresh.
        sli = self.sli if self.sli is not None else SliTotals(())
        yield from _sli_families(sli, snapshot.who if snapshot else {}, self.accounts)


def _sli_families(
    totals: SliTotals, who: dict[int, tuple[str, str]], accounts: AccountDirectory
) -> Iterator[Metric]:
    labels = ["platform", "account", "channel", "tier", "profile"]
    outcomes = CounterMetricFamily(
        "replywatch_sli_outcomes",
        "Waits decided against the response-time target: met when answered in time, missed "
        "when the deadline passed unanswered (metrics.md section 6).",
        labels=[*labels, "outcome"],
    )
    histogram = HistogramMetricFamily(
        "replywatch_response_time_seconds",
        "Response time of answered waits (business seconds when the account has hours), "
        "with a bucket at every target.",
        labels=labels,
    )
    bounds = [_go_float(bound) for bound in totals.buckets]
    for key, counts in sorted(totals.counts.items()):
        account_id, channel, tier = key
        if account_id not in who:
            continue
        platform, name = who[account_id]
        profile = accounts.policy(name).profile_for(channel).name
        values = [platform, name, channel, tier, profile]
        outcomes.add_metric([*values, "met"], counts.met)
        outcomes.add_metric([*values, "missed"], counts.missed)
        cumulative = totals.cumulative(key)
        histogram.add_metric(
            values,
            buckets=[*zip(bounds, cumulative[:-1], strict=True), ("+Inf", cumulative[-1])],
            sum_value=counts.response_sum,
        )
    yield from (outcomes, histogram)


def _go_float(value: float) -> str:
    # The text Prometheus' own clients give a bucket bound ("900.0"), so `le` matches theirs.
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _add_open(
    count: GaugeMetricFamily,
    oldest: GaugeMetricFamily,
    labels: list[str],
    opened: Iterable[datetime],
    now: datetime,
) -> None:
    times = list(opened)
    count.add_metric(labels, float(len(times)))
    if times:
        oldest.add_metric(labels, max(0.0, (now - min(times)).total_seconds()))
