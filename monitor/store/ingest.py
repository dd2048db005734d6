"""The one entry point that turns events into stored state.

Events are written in bulk, duplicates collapse on ``(account, message id)`` and a re-delivered
event never moves a time later (metrics.md section 2, rules 8 and 9). Every thread an event
changes is re-derived from all its stored events, so the waits depend only on the set of events
seen, never on the order they arrived in. A poll's cursor is written in the same transaction
as its events: a crash loses nothing and counts nothing twice.

The hot path is set-based: a batch goes into a temporary staging table with one
``executemany``; one statement finds the rows that are new or earlier than what is stored and
records their threads; one ``INSERT ... SELECT ... ON CONFLICT`` merges the batch; the touched
threads' events are read back with one join and their waits replaced. The number of
statements per batch does not grow with the number of accounts or threads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from connectors.base import Event
from monitor.core.profiles import WaitRule
from monitor.core.waits import BusinessClock, ThreadEvent, derive_waits
from monitor.store.accounts import AccountDirectory, AccountPolicy
from monitor.store.intake_screen import Refusal, describe, screen_events
from monitor.store.rawsql import RawSql
from monitor.store.recent import RecentlyStored, stored_time
from monitor.store.tables import EVENTS, WAITS

__all__ = [
    "EVENTS",
    "WAITS",
    "CursorUpdate",
    "IngestResult",
    "Ingestor",
    "lock_accounts",
    "rederive_account",
]

log = logging.getLogger("monitor.ingest")


_EXCERPT = 140
# Refused events already logged (a poll re-reads the same ones every time): each is logged once.
_REPORTED_LIMIT = 1000
# The first key of the per-account advisory locks ("rp"); the second is the account id.
_ACCOUNT_LOCK_SPACE = 0x7270
_EVENT_COLUMNS = (
    "account_id", "channel", "thread_id", "message_id", "author_role", "created_at",
    "first_seen_at", "rating", "text_excerpt", "thread_url",
)  # fmt: skip
_WAIT_COLUMNS = (
    "account_id", "channel", "thread_id", "derivation", "opened_at", "opened_by", "closed_at",
    "closed_by", "tier", "rating", "response_seconds", "business_seconds",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one call stored."""

    received: int
    stored: int
    duplicates: int
    threads: int
    waits: int
    stored_by_account: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # Events refused by the intake screen (implausible time, unstorable id): not stored.
    rejected: int = 0


def _prepare_temp_tables(sql: RawSql) -> None:
    # Temporary tables live per connection; pooled connections may still hold old rows.
    sql.run(
        "CREATE TEMPORARY TABLE IF NOT EXISTS rw_staging (account_id INTEGER, "
        "channel VARCHAR(16), thread_id VARCHAR(255), message_id VARCHAR(255), "
        f"author_role VARCHAR(16), created_at {sql.time_type}, first_seen_at {sql.time_type}, "
        "rating INTEGER, text_excerpt VARCHAR(140), thread_url VARCHAR(1024))"
    )
    sql.run(
        "CREATE TEMPORARY TABLE IF NOT EXISTS rw_touched (account_id INTEGER, "
        "thread_id VARCHAR(255))"
    )
    sql.run(
        "CREATE TEMPORARY TABLE IF NOT EXISTS rw_old (account_id INTEGER, thread_id VARCHAR(255))"
    )
    for name in ("rw_staging", "rw_touched", "rw_old"):
        sql.run(f"DELETE FROM {name}")


# (platform, account name, the poll's new cursor)
CursorUpdate = tuple[str, str, Mapping[str, str]]

# (account id, message id) -> (the time to store, the event): one entry per message.
_Batch = dict[tuple[int, str], tuple[datetime, Event]]


def _unique(
    events: Iterable[Event], ids: Mapping[tuple[str, str], int], seen_at: datetime
) -> _Batch:
    """One entry per message id; within a batch the earliest copy wins (rule 8)."""
    unique: _Batch = {}
    for event in events:
        account_id = ids[(event.platform, event.account)]
        created = stored_time(event, seen_at)
        key = (account_id, event.message_id)
        if key not in unique or created < unique[key][0]:
            unique[key] = (created, event)
    return unique


class Ingestor:
    """Stores events and keeps the derived waits in step, in one transaction per call."""

    def __init__(
        self,
        engine: Engine,
        accounts: AccountDirectory,
        *,
        keep_text: bool = False,
        recent: RecentlyStored | None = None,
        on_refused: Callable[[Sequence[Refusal]], None] | None = None,
    ):
        # Told, after each commit, which accounts' waits may have changed (new events or
        # events moved earlier): the figures refresh recomputes only those
        # (monitor.export.figures_exporter). Append to it; several parts may listen.
        self.on_stored: list[Callable[[Iterable[tuple[str, str]]], None]] = []
        self.engine = engine
        self.accounts = accounts
        self.keep_text = keep_text
        # Only a single-writer, long-running process may skip the store (see monitor.store.recent).
        self.recent = recent
        # Told about every refused event (the monitor counts them in /metrics).
        self.on_refused = on_refused
        self._reported: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def ingest(
        self,
        events: Sequence[Event],
        *,
        cursor: CursorUpdate | None = None,
        cursors: Sequence[CursorUpdate] = (),
        seen_at: datetime | None = None,
        guard: Callable[[Connection], None] | None = None,
    ) -> IngestResult:
        """Store events and the cursors of the polls that fetched them, atomically.

        ``guard`` runs first inside the transaction (after the account locks) and may raise
        to store nothing: the several-worker mode checks there that its poll still owns the
        account.
        """
        seen_at = seen_at or datetime.now(UTC)
        updates = [*([cursor] if cursor is not None else []), *cursors]
        recent = self.recent
        if (
            recent is not None
            and len(updates) == 1
            and recent.covers(updates[0][:2], events, updates[0][2], seen_at)
        ):
            return IngestResult(len(events), 0, len(events), 0, 0)
        kept, refused = screen_events(events, self.accounts.config.intake, seen_at)
        try:
            with self.engine.begin() as connection:
                result = self._ingest(connection, kept, updates, seen_at, guard)
        except Exception:
            # Whatever failed (the guard raises its own errors), account ids created inside
            # the rolled-back transaction no longer exist; the error goes on to the caller.
            self.accounts.forget()
            raise
        if recent is not None:
            # Refused events are not remembered: each batch that brings them screens them again.
            recent.remember(kept, seen_at)
            for platform, account, value in updates:
                recent.remember_cursor((platform, account), value)
        changed = [key for key, count in result.stored_by_account.items() if count]
        for listener in self.on_stored if changed else ():
            listener(changed)
        if refused:
            # After the commit: a batch that failed (and is retried) counts its refusals once.
            self._refused(refused)
            result = dataclasses.replace(result, received=len(events), rejected=len(refused))
        return result

    def _refused(self, refused: Sequence[Refusal]) -> None:
        if self.on_refused is not None:
            self.on_refused(refused)
        new = [r for r in refused if (r.platform, r.account, r.message_id) not in self._reported]
        if not new:
            return
        for r in new:
            self._reported[(r.platform, r.account, r.message_id)] = None
        while len(self._reported) > _REPORTED_LIMIT:
            self._reported.popitem(last=False)
        log.warning(
            "refused %d event(s) the store cannot take, the others are stored: %s",
            len(new),
            describe(new),
            extra={"event": "events_refused", "count": len(new)},
        )

    def _ingest(
        self,
        connection: Connection,
        events: Sequence[Event],
        updates: Sequence[CursorUpdate],
        seen_at: datetime,
        guard: Callable[[Connection], None] | None = None,
    ) -> IngestResult:
        keys = {(e.platform, e.account) for e in events}
        keys.update((platform, account) for platform, account, _value in updates)
        ids = self.accounts.ensure(connection, keys)
        sql = RawSql(connection)
        if not sql.sqlite:
            lock_accounts(sql, ids.values())
        if guard is not None:
            guard(connection)
        batch = _unique(events, ids, seen_at)
        rows = self._rows(batch, seen_at, sql)
        stored = threads = waits = 0
        by_account: dict[tuple[str, str], int] = {}
        if rows:
            _prepare_temp_tables(sql)
            stored = _merge_events(sql, rows)
            if stored:
                names = {ids[key]: key[1] for key in keys}
                threads, waits = _rederive(sql, self.accounts, names, batch)
                by_account = _stored_by_account(sql, ids, stored)
        for platform, account, value in updates:
            self._save_cursor(sql, ids[(platform, account)], value, seen_at)
        return IngestResult(
            received=len(events),
            stored=stored,
            duplicates=len(rows) - stored,
            threads=threads,
            waits=waits,
            stored_by_account=by_account,
        )

    def _rows(self, batch: _Batch, seen_at: datetime, sql: RawSql) -> list[tuple[Any, ...]]:
        seen = sql.time(seen_at)
        keep = self.keep_text
        return [
            (
                account_id,
                event.channel,
                event.thread_id,
                message_id,
                event.author_role,
                sql.time(created),
                seen,
                event.rating,
                event.text_excerpt[:_EXCERPT] if keep and event.text_excerpt else None,
                event.thread_url,
            )
            for (account_id, message_id), (created, event) in batch.items()
        ]

    def _save_cursor(
        self,
        sql: RawSql,
        account_id: int,
        value: Mapping[str, str],
        now: datetime,
    ) -> None:
        text = json.dumps(dict(value), sort_keys=True)
        sql.run(
            f"INSERT INTO cursors (account_id, value, updated_at) VALUES ({sql.values(3)}) "
            "ON CONFLICT (account_id) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (account_id, text, sql.time(now)),
        )


def lock_accounts(sql: RawSql, account_ids: Iterable[int]) -> None:
    """Serialise writers of the same accounts until the transaction ends (PostgreSQL).

    Several processes may write one account at once (a poll worker and a webhook replica);
    a thread's waits are re-derived from what the transaction reads, so two writers of one
    thread must take turns or both would insert its waits. Locks are taken in id order, so
    two batches never wait for each other in a circle.
    """
    ordered = sorted(set(account_ids))
    # One statement for the whole batch (an import spans thousands of accounts).
    sql.run(
        "SELECT pg_advisory_xact_lock(%s, ident) FROM unnest(%s::int[]) AS ident ORDER BY ident",
        (_ACCOUNT_LOCK_SPACE, ordered),
    )


_UPSERT = (
    "ON CONFLICT (account_id, message_id) DO UPDATE SET created_at = excluded.created_at "
    "WHERE excluded.created_at < events.created_at"
)


def _merge_events(sql: RawSql, rows: list[tuple[Any, ...]]) -> int:
    """Merge rows into ``events`` and list the threads they change; return rows changed.

    New rows, and rows earlier than the stored copy (rule 8), change their thread; a moved
    row keeps the thread it was first stored in. Threads that had events before this batch
    go into ``rw_old``: they must be read back, while wholly new ones are derived from the
    batch in memory.
    """
    columns = ", ".join(_EVENT_COLUMNS)
    sql.run_many(
        f"INSERT INTO rw_staging ({columns}) VALUES ({sql.values(len(_EVENT_COLUMNS))})", rows
    )
    changed = sql.run(
        "INSERT INTO rw_touched (account_id, thread_id) "
        "SELECT s.account_id, COALESCE(e.thread_id, s.thread_id) FROM rw_staging s "
        "LEFT JOIN events e ON e.account_id = s.account_id AND e.message_id = s.message_id "
        "WHERE e.id IS NULL OR s.created_at < e.created_at"
    )
    if changed:
        sql.run(
            "INSERT INTO rw_old (account_id, thread_id) SELECT DISTINCT account_id, thread_id "
            "FROM rw_touched t WHERE EXISTS (SELECT 1 FROM events e "
            "WHERE e.account_id = t.account_id AND e.thread_id = t.thread_id)"
        )
        sql.run(
            f"INSERT INTO events ({columns}) SELECT {columns} FROM rw_staging WHERE true " + _UPSERT
        )
    return changed


def _stored_by_account(
    sql: RawSql, ids: Mapping[tuple[str, str], int], stored: int
) -> dict[tuple[str, str], int]:
    """How many rows each account gained; one query only when the batch spans accounts."""
    keys = {ident: key for key, ident in ids.items()}
    if len(keys) == 1:
        return {next(iter(keys.values())): stored}
    counts = sql.fetch("SELECT account_id, COUNT(*) FROM rw_touched GROUP BY account_id")
    return {keys[account_id]: int(count) for account_id, count in counts}


def _rederive(
    sql: RawSql, accounts: AccountDirectory, names: Mapping[int, str], batch: _Batch
) -> tuple[int, int]:
    """Replace the waits of every thread in ``rw_touched``; return (threads, waits).

    Threads listed in ``rw_old`` are read back from the store; the others are new and all
    their events are in ``batch``.
    """
    old = set(sql.fetch("SELECT account_id, thread_id FROM rw_old"))
    touched = sql.fetch("SELECT DISTINCT account_id, thread_id FROM rw_touched")
    threads: dict[tuple[int, str], list[ThreadEvent | Event]] = {key: [] for key in touched}
    # A thread's channel is the channel of its earliest event.
    first: dict[tuple[int, str], tuple[datetime, str]] = {}
    for (account_id, message_id), (at, event) in batch.items():
        key = (account_id, event.thread_id)
        if key in old or key not in threads:
            continue
        # An Event has the fields the wait rule reads; only a time we adjusted needs a copy.
        item: ThreadEvent | Event = (
            event
            if at is event.created_at
            else ThreadEvent(at, event.author_role, message_id, event.rating)
        )
        threads[key].append(item)
        seen = first.get(key)
        if seen is None or at < seen[0]:
            first[key] = (at, event.channel)
    if old:
        read_time = sql.read_time
        for account_id, thread_id, channel, created, role, message_id, rating in sql.fetch(
            "SELECT e.account_id, e.thread_id, e.channel, e.created_at, e.author_role, "
            "e.message_id, e.rating FROM rw_old t JOIN events e "
            "ON e.account_id = t.account_id AND e.thread_id = t.thread_id"
        ):
            key = (account_id, thread_id)
            at = read_time(created)
            threads[key].append(ThreadEvent(at, role, message_id, rating))
            seen = first.get(key)
            if seen is None or at < seen[0]:
                first[key] = (at, channel)
        # A join (not a row-value IN) so both index columns are used on every backend.
        sql.run(
            "DELETE FROM waits WHERE id IN (SELECT w.id FROM rw_old t JOIN waits w "
            "ON w.account_id = t.account_id AND w.thread_id = t.thread_id)"
        )
    policies: dict[int, AccountPolicy] = {}
    rules: dict[tuple[int, str], tuple[WaitRule, str, BusinessClock | None]] = {}
    to_db = sql.time
    rows = []
    for (account_id, thread_id), thread_events in threads.items():
        channel = first[(account_id, thread_id)][1]
        found = rules.get((account_id, channel))
        if found is None:
            policy = policies.get(account_id)
            if policy is None:
                policy = policies[account_id] = accounts.policy(names[account_id])
            rule = policy.rule_for(channel)
            found = rules[(account_id, channel)] = (rule, rule.key(), policy.calendar)
        rule, derivation, calendar = found
        for wait in derive_waits(thread_events, rule, calendar):
            rows.append(
                (
                    account_id,
                    channel,
                    thread_id,
                    derivation,
                    to_db(wait.opened_at),
                    wait.opened_by,
                    to_db(wait.closed_at),
                    wait.closed_by,
                    wait.tier,
                    wait.rating,
                    wait.response_seconds,
                    wait.business_seconds,
                )
            )
    if rows:
        sql.run_many(
            f"INSERT INTO waits ({', '.join(_WAIT_COLUMNS)}) "
            f"VALUES ({sql.values(len(_WAIT_COLUMNS))})",
            rows,
        )
    return len(threads), len(rows)


def rederive_account(
    connection: Connection, accounts: AccountDirectory, account_id: int, name: str
) -> int:
    """Rebuild every wait of one account (after its profile or hours changed)."""
    sql = RawSql(connection)
    if not sql.sqlite:
        lock_accounts(sql, [account_id])
    _prepare_temp_tables(sql)
    for table in ("rw_touched", "rw_old"):
        sql.run(
            f"INSERT INTO {table} (account_id, thread_id) SELECT DISTINCT account_id, "
            f"thread_id FROM events WHERE account_id = {sql.mark}",
            (account_id,),
        )
    return _rederive(sql, accounts, {account_id: name}, {})[1]
