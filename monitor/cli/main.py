"""The ``replywatch`` command line.

Exit codes: 0 success; 1 the command ran but found problems (bad rows skipped); 2 unusable
input (config, arguments, database). Errors are one line each, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.cli.import_command import ByteProgress, import_csv
from monitor.cli.report_formats import render
from monitor.config.loading import ConfigError, default_config_path, load_config
from monitor.config.secrets import SecretError
from monitor.core.escaping import one_line
from monitor.intake.csv_import import BadRow, CsvFormatError
from monitor.intake.import_file import UnreadableFile, open_import_text
from monitor.store.context import AppContext
from monitor.store.engine import (
    DATABASE_ERRORS,
    StoreError,
    choose_database,
    current_revision,
    database_failure,
    head_revision,
    open_engine,
)
from monitor.store.instance_lock import InstanceLockError
from monitor.store.stats import account_stats
from monitor.summary.command import SummaryUsageError, run_summary
from monitor.summary.command import add_arguments as add_summary_arguments

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line value that cannot be used."""


def _parse_cli_time(text: str) -> datetime:
    value = text.strip()
    if value.lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO 8601 date or time") from None
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time(0))
    # Command-line times without an offset are UTC, as the help says.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replywatch",
        description="Watch how fast a business answers its customers on social media.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config (default: $REPLYWATCH_CONFIG; none: "
        "built-in profiles, accounts created on import)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="store URL: sqlite:///file.db or postgresql://... "
        "(default: $REPLYWATCH_DATABASE_URL, the config's database, then sqlite:///replywatch.db)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser("check-config", help="validate the config and exit")
    check.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not check that env:/file: secret references resolve",
    )
    check.set_defaults(handler=_check_config)

    imp = commands.add_parser("import", help="load normalized events from a CSV file")
    imp.add_argument(
        "file",
        help="CSV with platform, account, thread_id, message_id, "
        "author_role, created_at (optional channel, rating, text); - for stdin",
    )
    imp.add_argument(
        "--default-tz",
        metavar="ZONE",
        help="time zone for times written without an offset (default: reject)",
    )
    imp.add_argument(
        "--encoding",
        metavar="NAME",
        help="the file's text encoding, e.g. cp1252 or utf-16 (default: what its byte-order "
        "mark says, else UTF-8)",
    )
    imp.add_argument("--progress", choices=("auto", "always", "never"), default="auto")
    imp.set_defaults(handler=_import)

    stats = commands.add_parser("stats", help="print response figures per account")
    stats.add_argument(
        "--from",
        dest="start",
        type=_parse_cli_time,
        metavar="TIME",
        help="window start (default: the profile's window before --to)",
    )
    stats.add_argument(
        "--to",
        dest="end",
        type=_parse_cli_time,
        metavar="TIME",
        help="window end, exclusive (default: --as-of)",
    )
    stats.add_argument(
        "--as-of",
        dest="as_of",
        type=_parse_cli_time,
        metavar="TIME",
        help="evaluate as if it were this time (default: now); times without an offset are UTC",
    )
    stats.add_argument("--profile", help="judge every account by this profile")
    stats.add_argument("--by", choices=("account", "channel", "tier"), default="account")
    stats.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME",
        help="only this account (repeatable)",
    )
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    stats.set_defaults(handler=_stats)

    run = commands.add_parser("run", help="poll every configured account until stopped")
    run.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve /healthz, /metrics and /hooks/* here (default: the config's "
        "listen, then 127.0.0.1:9874)",
    )
    run.set_defaults(handler=_run)

    worker = commands.add_parser(
        "worker",
        help="poll a share of the accounts, beside other workers on one PostgreSQL database",
    )
    worker.add_argument(
        "--concurrency", type=int, default=50, help="polls this worker runs at once (50)"
    )
    worker.add_argument(
        "--tick",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often due accounts "
        "are handed out (2; every worker of a cluster should use the same)",
    )
    worker.add_argument(
        "--stalled-after",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a worker silent this long is taken for dead and its polls go to others (30)",
    )
    worker.add_argument(
        "--heartbeat", type=float, default=5.0, metavar="SECONDS", help="heartbeat interval (5)"
    )
    worker.add_argument(
        "--hold",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a handed-out account waits for its poll before it is handed out again (60)",
    )
    worker.add_argument(
        "--poll-log", metavar="FILE", help="append one JSON line per poll job to FILE"
    )
    worker.set_defaults(handler=_worker)

    serve = commands.add_parser(
        "serve", help="serve /metrics and the webhooks for a cluster of workers (replicable)"
    )
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default: the config's listen, then 127.0.0.1:9874)",
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="run the product against simulated platforms")
    demo.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9874")
    demo.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--plain", action="store_true", help="print progress lines instead of the live table"
    )
    demo.set_defaults(handler=_demo)

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument(
        "action",
        choices=("upgrade", "current"),
        help="upgrade: apply migrations; current: show the schema revision",
    )
    db.set_defaults(handler=_db)

    summary = commands.add_parser("summary", help="render a week's summary (html, pdf, md)")
    add_summary_arguments(summary)
    summary.set_defaults(handler=_summary)

    boards = commands.add_parser("dashboards", help="build or upload the Grafana dashboards")
    boards_actions = boards.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = boards_actions.add_parser("build", help="regenerate dashboards/generated/*.json")
    build.add_argument(
        "--check", action="store_true", help="only report drift (exit 1) instead of writing"
    )
    build.set_defaults(handler=_dashboards_build)
    push = boards_actions.add_parser(
        "push", help="upload the dashboards to Grafana (token from $GRAFANA_TOKEN)"
    )
    push.add_argument(
        "--grafana-url", required=True, metavar="URL", help="e.g. http://grafana:3000"
    )
    push.add_argument("--folder", default="replywatch", help="folder title (default: replywatch)")
    push.set_defaults(handler=_dashboards_push)
    return parser


def _check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = args.config or default_config_path()
    if path is None:
        raise UsageError("no config given: use --config FILE or set REPLYWATCH_CONFIG")
    config = load_config(path)
    problems = [] if args.no_secrets else config.secret_problems()
    for problem in problems:
        print(problem, file=err)
    if problems:
        return EXIT_USAGE
    print(
        f"{path}: OK: {len(config.accounts)} account(s), {len(config.profiles)} profile(s)",
        file=out,
    )
    return EXIT_OK


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    zone = None
    if args.default_tz:
        try:
            zone = ZoneInfo(args.default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {args.default_tz!r}") from None
    label = "<stdin>" if args.file == "-" else args.file
    bad: list[BadRow] = []

    def report(row: BadRow) -> None:
        bad.append(row)
        # The reason can quote the row: its control characters must not reach the terminal.
        print(one_line(f"{label}: {row}"), file=err)

    with ExitStack() as stack:
        try:
            # Checked (encoding, every byte) before the store is opened: nothing half-imported.
            stream = stack.enter_context(open_import_text(args.file, args.encoding))
        except UnreadableFile as error:
            raise UsageError(one_line(f"{label}: {error}")) from None
        context = AppContext.open(args.config, args.database)
        stack.callback(context.close)
        size = 0 if args.file == "-" else os.path.getsize(args.file)
        show = args.progress == "always" or (
            args.progress == "auto" and err.isatty() and size > 1e6
        )
        advance = stack.enter_context(ByteProgress(show, size, err))
        try:
            totals = import_csv(
                context, stream, default_zone=zone, on_bad_row=report, advance=advance
            )
        except CsvFormatError as error:
            raise UsageError(one_line(f"{label}: {error}")) from None
        except UnicodeDecodeError:
            # Only when the file changed after it was checked; the batches before are stored.
            raise UsageError(
                f"{label}: the file changed while it was imported; import it again"
            ) from None
    print(
        one_line(
            f"{label}: {totals.received + len(bad)} row(s): {totals.stored} new event(s), "
            f"{totals.duplicates} already stored, {len(bad)} bad row(s) skipped"
        ),
        file=out,
    )
    return EXIT_PROBLEMS if bad else EXIT_OK


def _stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = AppContext.open(args.config, args.database)
    try:
        profile = None
        if args.profile:
            try:
                profile = context.config.profile(args.profile)
            except KeyError as error:
                raise UsageError(str(error.args[0])) from None
        as_of = args.as_of or datetime.now(UTC)
        if args.start and args.end and args.start >= args.end:
            raise UsageError("--from must be before --to")
        with context.engine.connect() as connection:
            rows = account_stats(
                connection,
                context.accounts,
                as_of=as_of,
                start=args.start,
                end=args.end,
                profile=profile,
                by=args.by,
                accounts=args.account,
            )
        missing = set(args.account) - {row.account for row in rows}
        for name in sorted(missing):
            print(f"replywatch: no account named {name!r} in the store", file=err)
        group = None if args.by == "account" else args.by
        out.write(render(rows, args.format, group))
        if args.format == "json":
            out.write("\n")
        return EXIT_PROBLEMS if missing else EXIT_OK
    finally:
        context.close()


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from monitor.cli.run_command import run_until_stopped, stop_on_signals
    from monitor.http.app import parse_listen
    from monitor.service.runtime import Runtime

    if not (args.config or default_config_path()):
        raise UsageError("run needs a config: use --config FILE or set REPLYWATCH_CONFIG")
    context = AppContext.open(args.config, args.database)
    try:
        host, port = parse_listen(args.listen or context.config.listen)
    except ValueError as error:
        context.close()
        raise UsageError(str(error)) from None

    async def main_loop() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_until_stopped(Runtime(context, host=host, port=port), out, stop)

    try:
        asyncio.run(main_loop())
    except InstanceLockError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        context.close()
    return EXIT_OK


def _cluster_context(args: argparse.Namespace, command: str) -> AppContext:
    if not (args.config or default_config_path()):
        raise UsageError(f"{command} needs a config: use --config FILE or set REPLYWATCH_CONFIG")
    context = AppContext.open(args.config, args.database)
    if context.engine.dialect.name != "postgresql":
        context.close()
        raise UsageError(
            f"{command} shares the work through PostgreSQL: pass --database postgresql://... "
            "(for one process on SQLite, use `replywatch run`)"
        )
    return context


def _worker(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import timedelta

    from monitor.cli.run_command import stop_on_signals
    from monitor.polling.cluster.fencing import APPLICATION_NAME
    from monitor.polling.cluster.worker import ClusterWorker, WorkerSettings

    for option in ("concurrency", "tick", "stalled_after", "heartbeat", "hold"):
        if getattr(args, option) <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be above zero")
    if args.stalled_after <= args.heartbeat:
        raise UsageError("--stalled-after must be longer than --heartbeat")
    context = _cluster_context(args, "worker")
    # Writes of a worker that froze mid-transaction must not block the others for long.
    context.engine.dispose()
    context.engine = open_engine(
        context.engine.url.render_as_string(hide_password=False),
        migrate=False,
        idle_transaction_seconds=args.stalled_after,
        application_name=APPLICATION_NAME,
    )
    if not args.verbose:
        # procrastinate logs every job at INFO: thousands a minute.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    settings = WorkerSettings(
        concurrency=args.concurrency,
        tick_seconds=args.tick,
        stalled_after=args.stalled_after,
        heartbeat_seconds=args.heartbeat,
        hold=timedelta(seconds=args.hold),
        poll_log=Path(args.poll_log) if args.poll_log else None,
    )
    worker = ClusterWorker(context, settings)

    async def main_loop() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        print(
            f"replywatch worker {worker.name}: sharing {len(context.config.accounts)} "
            "account(s) with the other workers on this database",
            file=out,
            flush=True,
        )
        await worker.run(stop)
        print("worker stopped", file=out, flush=True)

    try:
        asyncio.run(main_loop())
    finally:
        context.close()
    return EXIT_OK


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from monitor.cli.run_command import stop_on_signals
    from monitor.http.app import parse_listen
    from monitor.service.runtime import Runtime

    context = _cluster_context(args, "serve")
    try:
        host, port = parse_listen(args.listen or context.config.listen)
    except ValueError as error:
        context.close()
        raise UsageError(str(error)) from None
    runtime = Runtime(context, host=host, port=port, serve_only=True)

    async def main_loop() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await runtime.start()
        print(
            f"replywatch serve: {runtime.address} (/healthz, /metrics, /hooks/*)",
            file=out,
            flush=True,
        )
        try:
            await runtime.figures_ready.wait()
            print("figures ready", file=out, flush=True)
            await stop.wait()
        finally:
            await runtime.stop()

    try:
        asyncio.run(main_loop())
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        context.close()
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from monitor.cli.demo.demo import run_demo

    return run_demo(args.listen, out, seconds=args.seconds, plain=args.plain or not out.isatty())


def _summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    as_of = _parse_cli_time(args.as_of) if args.as_of else None
    context = AppContext.open(args.config, args.database)
    try:
        return run_summary(context, args, out, as_of)
    except SummaryUsageError as error:
        raise UsageError(str(error)) from None
    finally:
        context.close()


def _dashboards_build(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: the Grafana SDK is only needed by this command.
    from dashboards.build import GENERATED, drifted, write_all

    if args.check:
        stale = drifted()
        for uid in stale:
            print(
                f"{GENERATED / uid}.json differs from the code: run `replywatch dashboards build`",
                file=err,
            )
        return 1 if stale else EXIT_OK
    for path in write_all():
        print(f"wrote {path}", file=out)
    return EXIT_OK


def _dashboards_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from dashboards.build import build_all
    from dashboards.push import PushError, push_dashboards

    token = os.environ.get("GRAFANA_TOKEN", "").strip()
    if not token:
        raise UsageError("set GRAFANA_TOKEN to a Grafana service account token (Editor role)")
    try:
        results = push_dashboards(args.grafana_url, token, build_all(), args.folder)
    except PushError as error:
        raise UsageError(str(error)) from None
    for result in results:
        print(f"{result.action} {result.title} ({result.uid}) {result.url}", file=out)
    return EXIT_OK


def _db(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from monitor.store.engine import choose_database, open_engine

    config = load_config(args.config or default_config_path())
    engine = open_engine(
        choose_database(args.database, config.database), migrate=args.action == "upgrade"
    )
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
        print(f"schema revision {revision or 'none'} (newest: {head_revision()})", file=out)
    except DATABASE_ERRORS as error:
        raise StoreError(database_failure(str(engine.url), error)) from None
    finally:
        engine.dispose()
    return EXIT_OK


def _database_of(args: argparse.Namespace) -> str:
    # The store the command used, found again for an error message (the config loaded before).
    try:
        configured = load_config(args.config or default_config_path()).database
    except ConfigError:
        configured = None
    return choose_database(args.database, configured)


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=err,
    )
    try:
        code: int = args.handler(args, out, err)
        return code
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=err)
        return EXIT_USAGE
    except (UsageError, StoreError, SecretError) as error:
        print(f"replywatch: {error}", file=err)
        return EXIT_USAGE
    except DATABASE_ERRORS as error:
        # The store failed after it opened (a damaged page is found when it is read): one
        # line naming the database and what to do, not a traceback.
        print(f"replywatch: {database_failure(_database_of(args), error, 'use')}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("replywatch: interrupted", file=err)
        return 130
