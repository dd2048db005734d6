"""``replywatch import``: a CSV file into the store, batch by batch, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import TextIO

from monitor.intake.batches import read_ahead
from monitor.intake.csv_import import BadRow, read_events
from monitor.intake.csv_records import read_pieces
from monitor.store.context import AppContext

__all__ = ["BATCH", "ByteProgress", "ImportTotals", "import_csv"]

# Big batches amortise each transaction; parsing runs ahead on a second thread.
BATCH = 100_000


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
