"""``replywatch import``: a CSV file into the store, batch by batch, with a progress bar."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import tzinfo
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.cli.command import EXIT_OK, EXIT_PROBLEMS, Subcommands, UsageError
from monitor.core.escaping import one_line
from monitor.intake.batches import read_ahead
from monitor.intake.csv_import import BadRow, CsvFormatError, read_events
from monitor.intake.csv_records import read_pieces
from monitor.intake.import_file import UnreadableFile, open_import_text
from monitor.store.context import AppContext

__all__ = ["BATCH", "ByteProgress", "ImportTotals", "import_csv", "register"]

# Big batches amortise each transaction; parsing runs ahead on a second thread.
BATCH = 100_000


def register(commands: Subcommands) -> None:
    """Add ``import`` and its options."""
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


@dataclass
class ImportTotals:
    """What an import did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0


def _counting_pieces(stream: TextIO, advance: Callable[[int], None]) -> Iterator[str]:
    # Pieces, not lines: a hostile line of a gigabyte is never held whole.
    for piece in read_pieces(stream):
        advance(len(piece))
        yield piece


def import_csv(
    context: AppContext,
    stream: TextIO,
    *,
    default_zone: tzinfo | None,
    on_bad_row: Callable[[BadRow], None],
    advance: Callable[[int], None] = lambda _n: None,
) -> ImportTotals:
    """Store every good row of a CSV stream; bad rows go to ``on_bad_row``."""
    ingestor = context.ingestor()
    totals = ImportTotals()
    events = read_events(
        _counting_pieces(stream, advance),
        context.config,
        default_zone=default_zone,
        on_bad_row=on_bad_row,
    )
    for batch in read_ahead(events, BATCH):
        result = ingestor.ingest(batch)
        totals.received += result.received
        totals.stored += result.stored
        totals.duplicates += result.duplicates
    return totals


class ByteProgress:
    """A byte-based progress bar on a stream, or nothing when ``show`` is false."""

    def __init__(self, show: bool, total: int, stream: TextIO) -> None:
        self.show, self.total, self.stream = show, total, stream

    def __enter__(self) -> Callable[[int], None]:
        if not self.show:
            return lambda _n: None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream, force_terminal=True),
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("importing", total=self.total or None)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *_exc: object) -> None:
        if self.show:
            self._bar.stop()
