"""Window figures for stored accounts: read waits from the store, hand them to ``figures``.

Waits are stored for each account's own profile. Asking for another profile whose counting
rule differs (``--profile meta-badge`` on a ``strict`` account) derives that account's waits
from its events on the fly, so any profile can be asked about any history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, select

from monitor.core.figures import Figures, WaitFacts, Window, window_figures
from monitor.core.profiles import Profile
from monitor.core.waits import ThreadEvent, derive_waits
from monitor.store.accounts import AccountDirectory, AccountPolicy
from monitor.store.id_lists import any_of, raw_any_of
from monitor.store.rawsql import RawSql
from monitor.store.tables import ACCOUNTS, EVENTS

__all__ = ["Grouping", "StatsRequest", "StatsRow", "account_stats", "account_stats_for"]

Grouping = Literal["account", "channel", "tier"]


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Figures for one account, or one account and channel or tier."""

    account: str
    platform: str
    group: str | None
    window: Window
    figures: Figures


@dataclass(frozen=True, slots=True)
class _Target:
    account_id: int
    name: str
    platform: str
    policy: AccountPolicy


@dataclass(frozen=True, slots=True)
class StatsRequest:
    """One table of figures: a window (the default rolling one when unset) and a grouping."""

    start: datetime | None = None
    end: datetime | None = None
    by: Grouping = "account"


def account_stats(
    connection: Connection,
    directory: AccountDirectory,
    *,
    as_of: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    profile: Profile | None = None,
    by: Grouping = "account",
    accounts: Sequence[str] = (),
) -> list[StatsRow]:
    """Figures per account (or per channel or tier) over the given or default window."""
    request = StatsRequest(start, end, by)
    return account_stats_for(
        connection, directory, [request], as_of=as_of, profile=profile, accounts=accounts
    )[0]


def account_stats_for(
    connection: Connection,
    directory: AccountDirectory,
    requests: Sequence[StatsRequest],
    *,
    as_of: datetime,
    profile: Profile | None = None,
    accounts: Sequence[str] = (),
) -> list[list[StatsRow]]:
    """One table per request, from a single read of the waits all of them need.

    The weekly summary asks for this week per account and per channel and for last week:
    one pass over the stored waits instead of three.
    """
    targets = _targets(connection, directory, accounts)
    windows = [
        {t.account_id: _window(profile or t.policy.profile, r.start, r.end, as_of) for t in targets}
        for r in requests
    ]
    stored = [t for t in targets if _stored_matches(t.policy, profile)]
    derived = [t for t in targets if not _stored_matches(t.policy, profile)]
    facts: dict[int, list[WaitFacts]] = defaultdict(list)
    if stored:
        earliest = min(w[t.account_id].start for w in windows for t in stored)
        latest = max(w[t.account_id].end for w in windows for t in stored)
        # Only the asked-for accounts' waits when some were named (an incremental refresh
        # names the few that changed); every wait in one scan otherwise.
        facts.update(
            _stored_waits(connection, stored, earliest, latest, as_of, named=bool(accounts))
        )
    for target in derived:
        facts[target.account_id] = _derive(connection, target, profile)
    tables = []
    for request, request_windows in zip(requests, windows, strict=True):
        by = request.by
        rows = []
        for target in targets:
            window = request_windows[target.account_id]
            for group, group_facts in _grouped(facts[target.account_id], by):
                judged = _judging_profile(
                    target.policy, profile, group if by == "channel" else None
                )
                # A tier's row is judged on that tier's own targets (metrics.md 4).
                tier = group if by == "tier" else None
                figures = window_figures(group_facts, judged, window, target.policy.calendar, tier)
                rows.append(StatsRow(target.name, target.platform, group, window, figures))
        tables.append(rows)
    return tables


def _targets(
    connection: Connection, directory: AccountDirectory, names: Sequence[str]
) -> list[_Target]:
    query = select(ACCOUNTS.c.id, ACCOUNTS.c.name, ACCOUNTS.c.platform).order_by(
        ACCOUNTS.c.name, ACCOUNTS.c.platform
    )
    if names:
        query = query.where(any_of(connection, ACCOUNTS.c.name, names))
    return [
        _Target(int(ident), name, platform, directory.policy(name))
        for ident, name, platform in connection.execute(query)
    ]


def _window(
    profile: Profile, start: datetime | None, end: datetime | None, as_of: datetime
) -> Window:
    # A rolling window of N days is N x 86,400 s ending at as_of, not N local calendar days
    # (metrics.md 4): subtract in UTC, since aware arithmetic in a zone keeps the wall clock.
    as_of = as_of.astimezone(UTC)
    window_end = (end or as_of).astimezone(UTC)
    window_start = (start or window_end - profile.window).astimezone(UTC)
    return Window(start=window_start, end=window_end, as_of=as_of)


def _stored_matches(policy: AccountPolicy, profile: Profile | None) -> bool:
    if profile is None:
        return True
    rules = {p.rule for p in policy.profiles}
    return rules == {profile.rule}


def _stored_waits(
    connection: Connection,
    targets: Sequence[_Target],
    earliest: datetime,
    latest: datetime,
    as_of: datetime,
    named: bool = False,
) -> dict[int, list[WaitFacts]]:
    # Waits opened in the widest window, plus every wait still open at as_of. Read on the
    # driver cursor: this can be a million rows.
    wanted = {t.account_id for t in targets}
    facts: dict[int, list[WaitFacts]] = {ident: [] for ident in wanted}
    sql = RawSql(connection)
    mark, time = sql.mark, sql.time
    only, ids = raw_any_of(sql, "account_id", sorted(wanted)) if named else ("", ())
    if named:
        only += " AND "
    rows = sql.fetch(
        "SELECT account_id, opened_at, closed_at, response_seconds, business_seconds, tier, "
        f"channel FROM waits WHERE {only}((opened_at >= {mark} AND opened_at < {mark}) "
        f"OR (opened_at <= {mark} AND (closed_at IS NULL OR closed_at > {mark})))",
        (
            *ids,
            time(earliest),
            time(latest),
            time(as_of),
            time(as_of),
        ),
    )
    if sql.sqlite:
        # Inline parsing: a function call per value would cost more than the parse itself.
        parse, utc = datetime.fromisoformat, "+00:00"
        for account_id, opened, closed, response, business, tier, channel in rows:
            found = facts.get(account_id)  # None: an account judged on derived waits
            if found is not None:
                closed_at = None if closed is None else parse(closed + utc)
                found.append(
                    WaitFacts(parse(opened + utc), closed_at, response, business, tier, channel)
                )
        return facts
    read = sql.read_time
    for account_id, opened, closed, response, business, tier, channel in rows:
        found = facts.get(account_id)
        if found is not None:
            closed_at = None if closed is None else read(closed)
            found.append(WaitFacts(read(opened), closed_at, response, business, tier, channel))
    return facts


def _derive(connection: Connection, target: _Target, profile: Profile | None) -> list[WaitFacts]:
    threads: dict[str, list[ThreadEvent]] = defaultdict(list)
    first: dict[str, tuple[datetime, str]] = {}
    result = connection.execute(
        select(
            EVENTS.c.thread_id,
            EVENTS.c.channel,
            EVENTS.c.created_at,
            EVENTS.c.author_role,
            EVENTS.c.message_id,
            EVENTS.c.rating,
        ).where(EVENTS.c.account_id == target.account_id)
    )
    for thread_id, channel, created, role, message_id, rating in result:
        threads[thread_id].append(ThreadEvent(created, role, message_id, rating))
        if thread_id not in first or created < first[thread_id][0]:
            first[thread_id] = (created, channel)
    facts = []
    for thread_id, events in threads.items():
        channel = first[thread_id][1]
        rule = (profile or target.policy.profile_for(channel)).rule
        for wait in derive_waits(events, rule, target.policy.calendar):
            facts.append(
                WaitFacts(
                    wait.opened_at,
                    wait.closed_at,
                    wait.response_seconds,
                    wait.business_seconds,
                    wait.tier,
                    channel,
                )
            )
    return facts


def _grouped(facts: list[WaitFacts], by: Grouping) -> Iterable[tuple[str | None, list[WaitFacts]]]:
    if by == "account":
        yield None, facts
        return
    groups: dict[str, list[WaitFacts]] = defaultdict(list)
    for item in facts:
        groups[item.channel if by == "channel" else item.tier].append(item)
    yield from sorted(groups.items())


def _judging_profile(
    policy: AccountPolicy, requested: Profile | None, channel: str | None
) -> Profile:
    if requested is not None:
        return requested
    return policy.profile_for(channel) if channel else policy.profile
