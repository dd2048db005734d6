"""Per-conversation alerts (metrics.md section 7): one alert per waiting customer.

An open wait reaches ``warning`` at ``warn_after``, ``breach`` at the response target and
``escalated`` at ``escalate_after`` (business time when the account has hours); it is
``resolved`` when the wait closes. The level each wait has reached is stored, so a restart
neither repeats nor forgets a notification; every change becomes one :class:`AlertChange`
for the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, select, update

from monitor.core.due_times import INSTANT, DueTimes
from monitor.core.profiles import Targets
from monitor.store.accounts import AccountPolicy
from monitor.store.dialect_insert import insert_for
from monitor.store.id_lists import any_of
from monitor.store.tables import ALERTS, EVENTS, WAITS

__all__ = [
    "ALERTS",
    "LEVELS",
    "AlertChange",
    "firing_alerts",
    "level_deadline",
    "level_for",
    "update_conversation_alerts",
]

LEVELS = ("warning", "breach", "escalated")
RESOLVED = "resolved"
# Resolved alerts are kept this long after resolving, then forgotten.
_KEEP_RESOLVED = timedelta(days=2)
# The (judged) age at which a wait reaches each level.
_THRESHOLDS: dict[str, Callable[[Targets], timedelta]] = {
    "warning": lambda t: t.warn_after,
    "breach": lambda t: t.response_target,
    "escalated": lambda t: t.escalate_after,
}


def level_for(waited_seconds: float, targets: Targets) -> str | None:
    """The alert level a wait of this (judged) age has reached, None below ``warn_after``."""
    for level in reversed(LEVELS):
        if waited_seconds >= _THRESHOLDS[level](targets).total_seconds():
            return level
    return None


def level_deadline(
    policy: AccountPolicy, channel: str, tier: str, opened: datetime, level: str
) -> datetime:
    """The instant an open wait reaches ``level``: what :func:`level_for` judges, as a time.

    The threshold is the one :func:`level_for` compares with, from the same targets (the
    channel's profile, the wait's tier), counted in business time when the account has hours:
    a wait's judged age reaches the threshold exactly at this instant, never before. The
    window-figures exporter publishes it, so the alert rules page when these alerts do.
    """
    threshold = _THRESHOLDS[level](_targets(policy, channel, tier))
    if policy.calendar is not None:
        return policy.calendar.add_business_seconds(opened, threshold.total_seconds())
    return opened + threshold


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One conversation moving to a new level; what every receiver is told."""

    key: str
    level: str
    previous_level: str | None
    platform: str
    account: str
    channel: str
    conversation: str
    opened_at: datetime
    changed_at: datetime
    waited_seconds: float
    link: str | None

    @property
    def firing(self) -> bool:
        """Whether the customer is still waiting."""
        return self.level != RESOLVED

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (times as ISO 8601)."""
        data = asdict(self)
        data["opened_at"] = self.opened_at.isoformat()
        data["changed_at"] = self.changed_at.isoformat()
        data["status"] = "firing" if self.firing else "resolved"
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertChange:
        """The inverse of :meth:`to_json`."""
        fields = {k: v for k, v in data.items() if k != "status"}
        fields["opened_at"] = datetime.fromisoformat(data["opened_at"])
        fields["changed_at"] = datetime.fromisoformat(data["changed_at"])
        return cls(**fields)


def update_conversation_alerts(
    connection: Connection,
    who: Mapping[int, tuple[str, str]],
    policies: Callable[[int], AccountPolicy],
    now: datetime,
    max_age: timedelta,
    *,
    accounts: Collection[int] | None = None,
    due: DueTimes[int] | None = None,
) -> list[AlertChange]:
    """Move every waiting customer's alert to its current level; return the changes.

    ``accounts`` limits the work to those accounts (None: every account); ``due`` is told when
    each account's alerts next move by time alone (a level reached, a wait too old to watch).
    """
    w, e, a = WAITS, EVENTS, ALERTS
    opening_event = and_(e.c.account_id == w.c.account_id, e.c.message_id == w.c.opened_by)
    query = (
        select(w.c.account_id, w.c.thread_id, w.c.opened_at, w.c.channel, w.c.tier, e.c.thread_url)
        .outerjoin(e, opening_event)
        .where(w.c.closed_at.is_(None), w.c.opened_at >= now - max_age)
    )
    firing = select(a).where(a.c.level != RESOLVED)
    if accounts is not None:
        query = query.where(any_of(connection, w.c.account_id, accounts))
        firing = firing.where(any_of(connection, a.c.account_id, accounts))
    open_waits = connection.execute(query).all()
    stored = {
        (int(row.account_id), row.thread_id, row.opened_at): row
        for row in connection.execute(firing)
    }
    changes: list[AlertChange] = []
    still_open: set[tuple[int, str, datetime]] = set()
    # Written together after the loop: a burst of thousands of changes (every customer of a
    # silent day crossing warn_after) as one statement each, not one compiled statement per
    # change, which held the interpreter for seconds and delayed every poll on the event loop.
    inserts: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for account_id, thread_id, opened, channel, tier, url in open_waits:
        if account_id not in who:
            continue
        policy = policies(account_id)
        if due is not None:
            _note_next_moves(due, policy, account_id, channel, tier, opened, now, max_age)
        if opened > now:
            continue  # stamped ahead of the clock (allowed skew): nobody waits yet
        key = (int(account_id), thread_id, opened)
        still_open.add(key)
        waited = _waited(policy, opened, now)
        level = level_for(waited, _targets(policy, channel, tier))
        previous = stored[key].level if key in stored else None
        if level is None or _rank(level) <= _rank(previous):
            continue
        changes.append(_change(key, level, previous, who, channel, now, waited, url))
        row = {"level": level, "changed_at": now, "channel": channel, "thread_url": url}
        if previous is None:
            inserts.append(
                {"account_id": key[0], "thread_id": thread_id, "opened_at": opened, **row}
            )
        else:
            moves.append({**_key_params(key), **_new_params(row)})
    for key, stored_row in stored.items():
        if key in still_open or key[0] not in who:
            continue
        # The wait closed (or was rebuilt under another opening): the customer got an answer.
        waited = (now - key[2]).total_seconds()
        changes.append(
            _change(
                key,
                RESOLVED,
                stored_row.level,
                who,
                stored_row.channel,
                now,
                waited,
                stored_row.thread_url,
            )
        )
        row = {
            "level": RESOLVED,
            "changed_at": now,
            "channel": stored_row.channel,
            "thread_url": stored_row.thread_url,
        }
        moves.append({**_key_params(key), **_new_params(row)})
    _write_levels(connection, inserts, moves)
    connection.execute(
        delete(a).where(a.c.level == RESOLVED, a.c.changed_at < now - _KEEP_RESOLVED)
    )
    return changes


def firing_alerts(
    connection: Connection, who: Mapping[int, tuple[str, str]], now: datetime
) -> list[AlertChange]:
    """Every conversation alert still firing, as it stands now (for keep-alive re-sends)."""
    a = ALERTS
    firing = []
    for row in connection.execute(select(a).where(a.c.level != RESOLVED)):
        key = (int(row.account_id), row.thread_id, row.opened_at)
        if key[0] in who:
            waited = (now - row.opened_at).total_seconds()
            firing.append(
                _change(key, row.level, None, who, row.channel, now, waited, row.thread_url)
            )
    return firing


_CHANGED = ("level", "changed_at", "channel", "thread_url")


def _key_params(key: tuple[int, str, datetime]) -> dict[str, Any]:
    return {"key_account": key[0], "key_thread": key[1], "key_opened": key[2]}


def _new_params(row: Mapping[str, Any]) -> dict[str, Any]:
    # Bound names must differ from the column names an UPDATE sets.
    return {f"new_{name}": row[name] for name in _CHANGED}


def _write_levels(
    connection: Connection, inserts: list[dict[str, Any]], moves: list[dict[str, Any]]
) -> None:
    a = ALERTS
    if inserts:
        statement = insert_for(connection, a)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["account_id", "thread_id", "opened_at"],
                set_={name: statement.excluded[name] for name in _CHANGED},
            ),
            inserts,
        )
    if moves:
        connection.execute(
            update(a)
            .where(
                a.c.account_id == bindparam("key_account"),
                a.c.thread_id == bindparam("key_thread"),
                a.c.opened_at == bindparam("key_opened"),
            )
            .values({name: bindparam(f"new_{name}") for name in _CHANGED}),
            moves,
        )


def _note_next_moves(
    due: DueTimes[int],
    policy: AccountPolicy,
    account_id: int,
    channel: str,
    tier: str,
    opened: datetime,
    now: datetime,
    max_age: timedelta,
) -> None:
    # An open wait's alert moves by time alone when it starts (an opening stamped ahead of
    # the clock), at each level's deadline, and just after it becomes too old to watch.
    due.note(account_id, opened, now)
    try:
        due.note(account_id, opened + max_age + INSTANT, now)
        for level in LEVELS:
            due.note(account_id, level_deadline(policy, channel, tier, opened, level), now)
    except (OverflowError, ValueError):  # ScheduleError is a ValueError
        # No such instant (a year-9999 opening; holidays every day, so no business time
        # passes): this wait's alert never moves by time alone.
        return


def _targets(policy: AccountPolicy, channel: str, tier: str) -> Targets:
    # The channel's profile, and in it the wait's tier: what a wait is judged against.
    return policy.profile_for(channel).targets_for(tier)


def _rank(level: str | None) -> int:
    return -1 if level is None else LEVELS.index(level)


def _waited(policy: AccountPolicy, opened: datetime, now: datetime) -> float:
    if policy.calendar is not None:
        return policy.calendar.business_seconds(opened, now)
    return (now - opened).total_seconds()


def _change(
    key: tuple[int, str, datetime],
    level: str,
    previous: str | None,
    who: Mapping[int, tuple[str, str]],
    channel: str,
    now: datetime,
    waited: float,
    link: str | None,
) -> AlertChange:
    platform, account = who[key[0]]
    return AlertChange(
        key=f"{platform}/{account}/{key[1]}/{key[2].isoformat()}",
        level=level,
        previous_level=previous,
        platform=platform,
        account=account,
        channel=channel,
        conversation=key[1],
        opened_at=key[2],
        changed_at=now,
        waited_seconds=round(waited, 3),
        link=link,
    )
