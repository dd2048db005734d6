"""SLI outcomes (metrics.md section 6): each wait is decided once, `met` or `missed`.

A wait is `met` when answered within its response-time target (decided at the answer) and
`missed` when the target deadline passes unanswered (decided at the deadline; a late answer
changes nothing). Decisions are stored in ``wait_outcomes`` and never revised, because waits
themselves are rebuilt whenever their thread changes: counters made from the decisions only
ever grow, which is what Prometheus' ``rate()`` needs.

The answer's response time is recorded on the decision once, when first seen, and feeds the
response-time histogram.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, or_, select, update
from sqlalchemy.sql import exists

from monitor.core.due_times import DueTimes
from monitor.core.profiles import Profile
from monitor.core.round_health import ItemFailure
from monitor.store.accounts import AccountPolicy
from monitor.store.dialect_insert import insert_for
from monitor.store.id_lists import any_of
from monitor.store.tables import OUTCOMES, WAITS

__all__ = [
    "DEFAULT_BUCKETS",
    "OUTCOMES",
    "OutcomeKey",
    "SliTotals",
    "decide_outcomes",
    "histogram_buckets",
    "profile_buckets",
]

MET, MISSED = "met", "missed"
# Upper bounds (seconds) every histogram has; each configured target is added to these.
# Few on purpose: every bound is a series per account, channel and tier.
DEFAULT_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 172800.0)
# Waits opened longer ago than this are not decided: an import of old history must not turn
# into a burst of "missed" outcomes today.
DEFAULT_HORIZON = timedelta(days=8)

OutcomeKey = tuple[int, str, str]
"""(account id, channel, tier): the grain the counters are kept at."""


def profile_buckets(profile: Profile) -> tuple[float, ...]:
    """One profile's bounds: one at each of its targets, and the defaults up to its deadline."""
    bounds: set[float] = set()
    for targets in profile.all_targets:
        bounds |= {
            targets.warn_after.total_seconds(),
            targets.response_target.total_seconds(),
            targets.escalate_after.total_seconds(),
            targets.reply_deadline.total_seconds(),
        }
    # The profile's own scale: a 15-minute profile needs no 2-day bucket, and bounds
    # beyond the last deadline would only say "late" again.
    bounds |= {bound for bound in DEFAULT_BUCKETS if bound <= max(bounds)}
    return tuple(sorted(bounds))


def histogram_buckets(profiles: Iterable[Profile]) -> tuple[float, ...]:
    """Every profile's bounds: the counters are kept at these, each profile exports its own."""
    return tuple(sorted({bound for profile in profiles for bound in profile_buckets(profile)}))


@dataclass(frozen=True, slots=True)
class Decision:
    """A change to the outcomes: a new decision, or a response time seen for the first time."""

    key: OutcomeKey
    outcome: str | None
    response_seconds: float | None


def decide_outcomes(
    connection: Connection,
    policies: Callable[[int], AccountPolicy],
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    skipped: list[ItemFailure] | None = None,
    *,
    accounts: Collection[int] | None = None,
    due: DueTimes[int] | None = None,
) -> list[Decision]:
    """Decide every wait whose outcome is due, record first-seen answers; return the changes.

    A wait whose deadline cannot be computed is left undecided and added to ``skipped``; the
    other waits are decided as usual. ``accounts`` limits the work to those accounts (None:
    every account); ``due`` is told when each account's next decision falls due by time alone.
    """
    since = now - horizon
    w, o = WAITS, OUTCOMES
    already = exists().where(
        o.c.account_id == w.c.account_id,
        o.c.thread_id == w.c.thread_id,
        # A rebuilt wait that covers an earlier decision (its opening moved earlier after a
        # late message arrived) is the same customer waiting: never decide it twice.
        o.c.opened_at >= w.c.opened_at,
        # A wait answered at the instant it opened (a reply stamped the same second) covers
        # its own opening: without the equality it was decided again, and counted again in
        # the outcome counters, at every round.
        or_(
            w.c.closed_at.is_(None),
            o.c.opened_at < w.c.closed_at,
            o.c.opened_at == w.c.opened_at,
        ),
    )
    columns = (
        w.c.account_id,
        w.c.channel,
        w.c.thread_id,
        w.c.opened_at,
        w.c.closed_at,
        w.c.tier,
        w.c.response_seconds,
        w.c.business_seconds,
    )
    query = select(*columns).where(w.c.opened_at >= since, ~already)
    if accounts is not None:
        query = query.where(any_of(connection, w.c.account_id, accounts))
    undecided = connection.execute(query)
    new_rows: list[dict[str, object]] = []
    changes: list[Decision] = []
    for account_id, channel, thread_id, opened, closed, tier, response, business in undecided:
        policy = policies(account_id)
        profile = policy.profile_for(channel)
        if not profile.counts_channel(channel):
            continue
        target = profile.targets_for(tier).response_target.total_seconds()
        judged = _judged(policy, response, business)
        if closed is not None and judged is not None and judged <= target:
            outcome, decided_at = MET, closed
        else:
            try:
                deadline = _deadline(policy, opened, target)
            except (OverflowError, ValueError) as err:
                # A wait opened near year 9999 (stored before intake checked times) has no
                # deadline a datetime can hold, and a schedule may find no open hour: this
                # wait stays undecided, every other one is still decided this round.
                if skipped is not None:
                    skipped.append(ItemFailure(_wait_name(account_id, thread_id, opened), err))
                if due is not None:
                    due.every_round(account_id, now)  # counted as skipped at every round
                continue
            if deadline > now:
                if due is not None:
                    due.note(account_id, deadline, now)
                continue
            outcome, decided_at = MISSED, deadline
        answered = judged if closed is not None and closed <= now else None
        new_rows.append(
            {
                "account_id": account_id,
                "thread_id": thread_id,
                "opened_at": opened,
                "channel": channel,
                "tier": tier,
                "outcome": outcome,
                "decided_at": decided_at,
                "response_seconds": answered,
            }
        )
        changes.append(Decision((account_id, channel, tier), outcome, answered))
    if new_rows:
        connection.execute(insert_for(connection, OUTCOMES).on_conflict_do_nothing(), new_rows)
    changes += _record_late_answers(connection, policies, now, since, accounts, due)
    return changes


def _record_late_answers(
    connection: Connection,
    policies: Callable[[int], AccountPolicy],
    now: datetime,
    since: datetime,
    accounts: Collection[int] | None,
    due: DueTimes[int] | None,
) -> list[Decision]:
    # Missed waits answered after their deadline: the answer still belongs in the histogram.
    w, o = WAITS, OUTCOMES
    same_wait = and_(
        o.c.account_id == w.c.account_id,
        o.c.thread_id == w.c.thread_id,
        o.c.opened_at == w.c.opened_at,
    )
    query = (
        select(
            o.c.account_id,
            o.c.thread_id,
            o.c.opened_at,
            o.c.channel,
            o.c.tier,
            w.c.closed_at,
            w.c.response_seconds,
            w.c.business_seconds,
        )
        .join(w, same_wait)
        .where(o.c.opened_at >= since, o.c.response_seconds.is_(None), w.c.closed_at.is_not(None))
    )
    if accounts is not None:
        query = query.where(any_of(connection, o.c.account_id, accounts))
    changes = []
    for (
        account_id,
        thread_id,
        opened,
        channel,
        tier,
        closed,
        response,
        business,
    ) in connection.execute(query).all():
        if closed > now:
            # An answer stamped ahead of the clock (allowed skew) counts once it has happened.
            if due is not None:
                due.note(account_id, closed, now)
            continue
        judged = _judged(policies(account_id), response, business)
        if judged is None:
            continue
        connection.execute(
            update(o)
            .where(
                o.c.account_id == account_id,
                o.c.thread_id == thread_id,
                o.c.opened_at == opened,
                o.c.response_seconds.is_(None),
            )
            .values(response_seconds=judged)
        )
        changes.append(Decision((account_id, channel, tier), None, judged))
    return changes


def _judged(policy: AccountPolicy, response: float | None, business: float | None) -> float | None:
    # Business seconds when the account has a schedule, as the window figures judge them.
    if policy.calendar is not None and business is not None:
        return float(business)
    return None if response is None else float(response)


def _wait_name(account_id: int, thread_id: str, opened: datetime) -> str:
    # Ids and times only: a log line never carries a message's text.
    return f"wait of account {account_id} in thread {thread_id!r} opened {opened.isoformat()}"


def _deadline(policy: AccountPolicy, opened: datetime, target: float) -> datetime:
    if policy.calendar is not None:
        return policy.calendar.add_business_seconds(opened, target)
    return opened + timedelta(seconds=target)


@dataclass
class _Counts:
    met: int = 0
    missed: int = 0
    answered: int = 0
    response_sum: float = 0.0
    # Non-cumulative: answers in (bucket[i-1], bucket[i]]; the last slot is +Inf.
    in_bucket: list[int] = field(default_factory=list)

    def cumulative(self) -> list[int]:
        """Answers at or under each bucket bound, then the total (+Inf)."""
        return list(itertools.accumulate(self.in_bucket))


@dataclass
class SliTotals:
    """Running totals of the outcomes and the response-time histogram, per OutcomeKey."""

    buckets: Sequence[float]
    counts: dict[OutcomeKey, _Counts] = field(default_factory=dict)

    def load(self, connection: Connection) -> None:
        """Read the totals from every stored decision, and put them in place at once.

        ``replywatch serve`` reloads them at every refresh, in a thread, while scrapes render
        them: a render must see either the old totals or the new ones, never half-read ones.
        """
        loaded = SliTotals(self.buckets)
        loaded._read(connection)
        self.counts = loaded.counts

    def _read(self, connection: Connection) -> None:
        # Adds every stored decision to these (empty) totals.
        o = OUTCOMES
        key_columns = (o.c.account_id, o.c.channel, o.c.tier)
        for account_id, channel, tier, outcome, count in connection.execute(
            select(*key_columns, o.c.outcome, func.count()).group_by(*key_columns, o.c.outcome)
        ):
            counts = self._counts((int(account_id), channel, tier))
            if outcome == MET:
                counts.met += int(count)
            else:
                counts.missed += int(count)
        # One pass per bound, in SQL: the decisions may be millions of rows.
        bounds = list(self.buckets)
        bucket_sums = [func.sum(case((o.c.response_seconds <= b, 1), else_=0)) for b in bounds]
        answered = o.c.response_seconds.is_not(None)
        for row in connection.execute(
            select(*key_columns, func.count(), func.sum(o.c.response_seconds), *bucket_sums)
            .where(answered)
            .group_by(*key_columns)
        ):
            counts = self._counts((int(row[0]), row[1], row[2]))
            counts.answered = int(row[3])
            counts.response_sum = float(row[4] or 0.0)
            cumulative = [int(value or 0) for value in row[5:]] + [counts.answered]
            counts.in_bucket = [cumulative[0]] + [
                cumulative[i] - cumulative[i - 1] for i in range(1, len(cumulative))
            ]

    def add(self, changes: Iterable[Decision]) -> None:
        """Count new decisions and first-seen answers."""
        for change in changes:
            counts = self._counts(change.key)
            if change.outcome == MET:
                counts.met += 1
            elif change.outcome == MISSED:
                counts.missed += 1
            if change.response_seconds is not None:
                counts.answered += 1
                counts.response_sum += change.response_seconds
                counts.in_bucket[bisect.bisect_left(self.buckets, change.response_seconds)] += 1

    def cumulative(self, key: OutcomeKey) -> list[int]:
        """Answers at or under each bucket bound, then the total (+Inf)."""
        return self.counts[key].cumulative()

    def _counts(self, key: OutcomeKey) -> _Counts:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = _Counts(in_bucket=[0] * (len(self.buckets) + 1))
        return counts
