"""What the long-running commands open before they start: a config, a store, an address."""

from __future__ import annotations

import argparse

from monitor.cli.command import UsageError
from monitor.config.loading import default_config_path
from monitor.store.context import AppContext

__all__ = ["listen_address", "open_cluster_context", "require_config"]


def require_config(args: argparse.Namespace, command: str) -> None:
    """Refuse to go on without a config file: a service needs its accounts."""
    if not (args.config or default_config_path()):
        raise UsageError(f"{command} needs a config: use --config FILE or set REPLYWATCH_CONFIG")


def open_cluster_context(args: argparse.Namespace, command: str) -> AppContext:
    """The context of ``worker`` or ``serve``, which share their work through PostgreSQL."""
    require_config(args, command)
    context = AppContext.open(args.config, args.database)
    if context.engine.dialect.name != "postgresql":
        context.close()
        raise UsageError(
            f"{command} shares the work through PostgreSQL: pass --database postgresql://... "
            "(for one process on SQLite, use `replywatch run`)"
        )
    return context


def listen_address(given: str | None, context: AppContext) -> tuple[str, int]:
    """``--listen``, else the config's listen, as host and port; closes ``context`` if bad."""
    # Imported here: aiohttp is only needed by the commands that serve.
    from monitor.http.app import parse_listen

    try:
        return parse_listen(given or context.config.listen)
    except ValueError as error:
        context.close()
        raise UsageError(str(error)) from None
