"""CSV text split into records with their line numbers; a broken record never stops the rest.

The standard ``csv`` module parses (strict quoting: ``"a"b`` is an error, not ``ab``). Around it:

* a field longer than ``csv.field_size_limit()`` is one broken record, and so is a physical line
  longer than ``MAX_LINE`` characters, which is never held whole when the text comes in pieces
  (``read_pieces``);
* a quote that opens a field and never closes properly would swallow every line after it. The
  record is reported at the line where the quote opens ("unterminated quote starting at line
  N") and the lines after that one are parsed again, so the rows it swallowed are kept. A
  quoted field that runs over several lines and closes properly is an ordinary record. A
  record that spans lines is taken for a stray quote when csv refuses it, when it is still open
  at the end of the text, or, once ``width`` is set, when its field count differs.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, TextIO

__all__ = ["MAX_LINE", "Broken", "CsvRecords", "Record", "read_pieces"]

# A row of nine fields near csv's own limit (131,072 characters each) fits; a longer line is
# a hostile one.
MAX_LINE = 1 << 21
_LINE_ENDS = ("\n", "\r")


class Record(NamedTuple):
    """One CSV record and the physical line it starts on."""

    line: int
    fields: list[str]


@dataclass(frozen=True, slots=True)
class Broken:
    """A record that cannot be read, with the line it starts on and why."""

    line: int
    reason: str


class _OpenAtEnd(Exception):
    """The text ended inside a quoted field."""


class _LineTooLong(Exception):
    """A physical line is longer than MAX_LINE."""


def read_pieces(stream: TextIO, size: int = MAX_LINE + 2) -> Iterator[str]:
    """The stream's lines, a long line in pieces of at most ``size`` characters."""
    return iter(partial(stream.readline, size), "")


class _Feed:
    """The csv reader's input: numbered lines, the current record's kept, lines to read again."""

    def __init__(self, pieces: Iterable[str]) -> None:
        self._pieces = iter(pieces)
        self._again: deque[tuple[int, str | None]] = deque()
        self._count = 0
        self._after_cr = False
        self.taken: list[tuple[int, str | None]] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self._again:
            number, line = self._again.popleft()
        else:
            piece = next(self._pieces, "")
            if piece[-1:] == "\n" and len(piece) <= MAX_LINE + 1 and not self._after_cr:
                line = piece  # the common case: one whole line of a sane length
            else:
                line = self._assemble(piece)
            if line == "":
                # csv asks for another line inside a record only while a quote is open.
                if self.taken:
                    raise _OpenAtEnd
                raise StopIteration
            self._count += 1
            number = self._count
        self.taken.append((number, line))
        if line is None:
            raise _LineTooLong
        return line

    def _assemble(self, piece: str) -> str | None:
        """The line that starts with ``piece``: "" at the end, None when it is too long."""
        held: list[str] = []
        size = 0
        too_long = False
        while piece:
            if self._after_cr and piece == "\n" and not size:
                # A size-limited read can cut "\r\n" in two: this "\n" ends the line before.
                self._after_cr = False
                piece = next(self._pieces, "")
                continue
            self._after_cr = piece.endswith("\r")
            size += len(piece)
            ended = piece.endswith(_LINE_ENDS)
            content = size - (2 if piece.endswith("\r\n") else 1 if ended else 0)
            too_long = too_long or content > MAX_LINE
            if too_long:
                held.clear()  # never hold more of a hostile line than MAX_LINE
            else:
                held.append(piece)
            if ended:
                break
            piece = next(self._pieces, "")
        return None if too_long else "".join(held)

    def read_again(self, lines: list[tuple[int, str | None]]) -> None:
        """Give these lines to the reader again, before any new one."""
        self._again.extendleft(reversed(lines))


class CsvRecords:
    """Iterates the records of CSV text given as lines or pieces: ``Record`` or ``Broken``."""

    def __init__(self, pieces: Iterable[str]) -> None:
        self._feed = _Feed(pieces)
        self._reader = csv.reader(self._feed, strict=True)
        # Set by the caller once the header is read.
        self.width: int | None = None

    def __iter__(self) -> CsvRecords:
        return self

    def __next__(self) -> Record | Broken:
        feed = self._feed
        feed.taken.clear()
        try:
            fields = next(self._reader)
        except (csv.Error, _OpenAtEnd, _LineTooLong) as error:
            return self._broken(error)
        taken = feed.taken
        if len(taken) > 1 and self.width is not None and fields and len(fields) != self.width:
            return self._stray_quote(f"the row has {len(fields)} fields, the header {self.width}")
        return Record(taken[0][0], fields)

    def refuse(self, reason: str) -> str:
        """The last record was refused for ``reason``; if it spans lines, read them again.

        A stray quote can be closed cleanly by another stray quote lines later; the record
        between them then swallows whole rows. Reading its later lines again keeps them.
        """
        taken = self._feed.taken
        if len(taken) < 2:
            return reason
        first, last = taken[0][0], taken[-1][0]
        self._feed.read_again(list(taken[1:]))
        return (
            f"{reason}; its quoted field runs on to line {last}, "
            f"so lines {first + 1}-{last} are read again"
        )

    def _broken(self, error: Exception) -> Broken:
        taken = self._feed.taken
        if len(taken) > 1 or isinstance(error, _OpenAtEnd):
            if isinstance(error, _OpenAtEnd):
                return self._stray_quote("it is still open at the end of the file")
            if "field limit" in str(error):
                return self._stray_quote(
                    f"the field runs past {csv.field_size_limit():,} characters"
                )
            return self._stray_quote(f"the field runs on to line {taken[-1][0]}")
        line = taken[0][0] if taken else 0
        if isinstance(error, _LineTooLong):
            return Broken(line, f"the line is longer than {MAX_LINE:,} characters")
        if "field limit" in str(error):
            limit = csv.field_size_limit()
            return Broken(line, f"a field is longer than {limit:,} characters (the CSV limit)")
        return Broken(line, f"is not valid CSV: {error}")

    def _stray_quote(self, detail: str) -> Broken:
        # Report where the quote opens; read every line after that one again.
        taken = list(self._feed.taken)
        self._feed.read_again(taken[1:])
        start = taken[0][0]
        return Broken(start, f"unterminated quote starting at line {start} ({detail})")
