"""What every command needs: the config, the migrated store, the account directory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from monitor.config.loading import Config, default_config_path, load_config
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import BULK_CACHE_MIB, choose_database, open_engine
from monitor.store.ingest import Ingestor, rederive_account

__all__ = ["AppContext"]

log = logging.getLogger("monitor.context")


@dataclass
class AppContext:
    """The config, the store and the account directory, opened together."""

    config: Config
    engine: Engine
    accounts: AccountDirectory

    @classmethod
    def open(
        cls,
        config_path: Path | str | None,
        database: str | None,
        *,
        sqlite_cache_mib: int = BULK_CACHE_MIB,
    ) -> AppContext:
        """Load the config, open and migrate the store, sync the configured accounts."""
        config = load_config(config_path or default_config_path())
        engine = open_engine(
            choose_database(database, config.database), sqlite_cache_mib=sqlite_cache_mib
        )
        context = cls(config, engine, AccountDirectory(config))
        context.sync()
        return context

    def ingestor(self) -> Ingestor:
        """An ingestor writing into this store."""
        return Ingestor(self.engine, self.accounts, keep_text=self.config.store_excerpts)

    def sync(self) -> None:
        """Create configured accounts and re-derive those whose policy changed."""
        with self.engine.begin() as connection:
            self.accounts.ensure(
                connection, {(a.platform, a.name) for a in self.config.accounts.values()}
            )
            for account_id, _platform, name in self.accounts.stale_accounts(connection):
                log.info(
                    "re-deriving waits of account %s: its profile or hours changed",
                    name,
                    extra={"event": "account_policy_changed", "account": name},
                )
                rederive_account(connection, self.accounts, account_id, name)
                self.accounts.mark_derived(connection, account_id, name)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()
