"""``replywatch db``: apply the schema migrations, or show the store's schema revision."""

from __future__ import annotations

import argparse
from typing import TextIO

from monitor.cli.command import EXIT_OK, Subcommands
from monitor.config.loading import default_config_path, load_config
from monitor.store.engine import (
    StoreError,
    choose_database,
    current_revision,
    database_errors,
    database_failure,
    head_revision,
    open_engine,
)

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``db`` and its action."""
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument(
        "action",
        choices=("upgrade", "current"),
        help="upgrade: apply migrations; current: show the schema revision",
    )
    db.set_defaults(handler=_db)


def _db(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = load_config(args.config or default_config_path())
    engine = open_engine(
        choose_database(args.database, config.database), migrate=args.action == "upgrade"
    )
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
        print(f"schema revision {revision or 'none'} (newest: {head_revision()})", file=out)
    except database_errors() as error:
        raise StoreError(database_failure(str(engine.url), error)) from None
    finally:
        engine.dispose()
    return EXIT_OK
