"""Accounts in the store, and the wait-derivation policy each one follows.

Configured accounts are synced into the store at start; accounts that appear only in imported
or pushed events are created on the fly with the default profile. When an account's policy
(its profiles' counting rules or its business hours) changes, its waits are re-derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from monitor.config.loading import Config
from monitor.core.hours import BusinessCalendar
from monitor.core.profiles import Profile, WaitRule
from monitor.store.dialect_insert import insert_for
from monitor.store.rawsql import RawSql
from monitor.store.tables import ACCOUNTS

__all__ = ["AccountDirectory", "AccountPolicy", "account_names", "policy_for"]


@dataclass(frozen=True)
class AccountPolicy:
    """How one account's waits are derived and judged."""

    profile: Profile
    channel_profiles: Mapping[str, Profile] = field(default_factory=dict)
    calendar: BusinessCalendar | None = None

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """The account's profile, then each channel's own."""
        return (self.profile, *self.channel_profiles.values())

    def profile_for(self, channel: str) -> Profile:
        """The profile that judges this channel."""
        return self.channel_profiles.get(channel, self.profile)

    def rule_for(self, channel: str) -> WaitRule:
        """The counting rule for waits on this channel."""
        return self.profile_for(channel).rule

    def derivation_key(self) -> str:
        """Everything that changes stored waits, as a short string kept with the account."""
        parts = [self.profile.rule.key()]
        parts += [f"{c}={p.rule.key()}" for c, p in sorted(self.channel_profiles.items())]
        if self.calendar is not None:
            parts.append(f"hours={self.calendar.fingerprint()}")
        return ";".join(parts)


def account_names(connection: Connection) -> dict[int, tuple[str, str]]:
    """Every stored account: id -> (platform, name)."""
    # On the driver's cursor: every round reads this, and at 10,000 accounts SQLAlchemy's
    # row objects cost ten times the query.
    rows = RawSql(connection).fetch("SELECT id, platform, name FROM accounts")
    return {int(ident): (platform, name) for ident, platform, name in rows}


def policy_for(config: Config, name: str) -> AccountPolicy:
    """The policy of a configured account, or the default one for any other account."""
    account = config.accounts.get(name)
    if account is None:
        return AccountPolicy(config.profile(config.default_profile))
    return AccountPolicy(account.profile, dict(account.channel_profiles), account.calendar)


class AccountDirectory:
    """Maps (platform, account name) to the store's account id, creating accounts as needed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ids: dict[tuple[str, str], int] = {}
        # Policies are immutable and the config never changes under a directory: each is
        # built once (rounds ask for thousands a minute).
        self._policies: dict[str, AccountPolicy] = {}

    def policy(self, name: str) -> AccountPolicy:
        """The derivation policy for an account name."""
        found = self._policies.get(name)
        if found is None:
            # Every account the config does not name shares one default policy.
            key = name if name in self.config.accounts else ""
            found = self._policies.get(key) or policy_for(self.config, name)
            self._policies[key] = found
        return found

    def ensure(
        self, connection: Connection, keys: set[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Ids for every (platform, name), creating missing accounts in this transaction."""
        missing = [key for key in keys if key not in self._ids]
        if missing:
            now = datetime.now(UTC)
            rows = [
                {
                    "platform": platform,
                    "name": name,
                    "profile": self.policy(name).profile.name,
                    "derivation": self.policy(name).derivation_key(),
                    "created_at": now,
                }
                for platform, name in missing
            ]
            connection.execute(insert_for(connection, ACCOUNTS).on_conflict_do_nothing(), rows)
            self.load(connection)
        return {key: self._ids[key] for key in keys}

    def load(self, connection: Connection) -> None:
        """Read every account id from the store."""
        result = connection.execute(select(ACCOUNTS.c.platform, ACCOUNTS.c.name, ACCOUNTS.c.id))
        self._ids = {(platform, name): int(ident) for platform, name, ident in result}

    def forget(self) -> None:
        """Drop cached ids (after a rolled-back transaction that may have created accounts)."""
        self._ids.clear()

    def stale_accounts(self, connection: Connection) -> list[tuple[int, str, str]]:
        """Accounts whose stored waits were derived under a different policy than today's."""
        rows = connection.execute(
            select(ACCOUNTS.c.id, ACCOUNTS.c.name, ACCOUNTS.c.derivation, ACCOUNTS.c.platform)
        )
        stale = []
        for ident, name, derivation, platform in rows:
            if derivation != self.policy(name).derivation_key():
                stale.append((int(ident), platform, name))
        return stale

    def mark_derived(self, connection: Connection, account_id: int, name: str) -> None:
        """Record that an account's waits now follow today's policy."""
        policy = self.policy(name)
        connection.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.id == account_id)
            .values(derivation=policy.derivation_key(), profile=policy.profile.name)
        )
