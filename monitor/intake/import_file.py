"""Opening a file for import: its encoding chosen and checked before anything is stored.

The encoding is the one given with ``--encoding``, else the one its byte-order mark names
(UTF-8, UTF-16 or UTF-32, as Excel and Notepad write them), else UTF-8. The whole file is
decoded once before the import starts, so a file that is not in that encoding is refused with
one line naming the line and the byte, and nothing of it is stored: an import never stops
half-way on a wrong byte. A pipe (standard input, ``<(command)``) is copied to a temporary
file first, so that it can be read twice.
"""

from __future__ import annotations

import codecs
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from io import TextIOWrapper
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = ["UnreadableFile", "check_decodes", "choose_encoding", "open_import_text"]

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK = 1 << 20


class UnreadableFile(Exception):
    """The file cannot be imported at all; the message is one line saying why."""


def choose_encoding(head: bytes, requested: str | None) -> str:
    """The codec to read a file with: the one asked for, else its byte-order mark's, else UTF-8."""
    if requested:
        try:
            name = codecs.lookup(requested).name
            # Refuses codecs that are not text encodings (base64, rot13); b"" would pass.
            b"a".decode(name, "ignore")
        except LookupError:
            raise UnreadableFile(f"--encoding {requested!r} is not a known text encoding") from None
        # utf-8-sig reads UTF-8 with or without the mark Excel puts in front.
        return "utf-8-sig" if name == "utf-8" else name
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return "utf-8-sig"


def check_decodes(binary: BinaryIO, encoding: str) -> None:
    """Decode the whole stream once; UnreadableFile names the first line that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines = 0
    previous = ""
    final = False
    while not final:
        chunk = binary.read(_CHUNK)
        final = not chunk
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            raise UnreadableFile(_describe(error, encoding, lines, previous)) from None
        except UnicodeError as error:
            # --encoding utf-16 (or utf-32) on a file without a byte-order mark.
            raise UnreadableFile(
                f"{error}: give the byte order, e.g. --encoding {encoding}-le"
            ) from None
        lines += _line_breaks(previous[-1:] + text) - _line_breaks(previous[-1:])
        previous = text or previous


def _line_breaks(text: str) -> int:
    # Lines end at \n, \r\n or a lone \r, as the CSV reader splits them.
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _describe(error: UnicodeDecodeError, encoding: str, lines: int, previous: str) -> str:
    data, start = error.object, error.start
    before = data[:start].decode(encoding, "replace")
    line = lines + _line_breaks(previous[-1:] + before) - _line_breaks(previous[-1:]) + 1
    byte = data[start] if start < len(data) else data[-1]
    utf8 = encoding in ("utf-8", "utf-8-sig")
    label = "UTF-8" if utf8 else encoding
    if not utf8:
        hint = f"; is --encoding {encoding} right?"
    elif _is_cp1252(data, start):
        hint = "; the file may be cp1252/Windows-1252: use --encoding cp1252"
    else:
        hint = "; give the file's encoding with --encoding (for example latin-1)"
    return f"line {line} is not {label} (byte 0x{byte:02x}){hint}"


def _line_bytes(data: bytes, at: int) -> bytes:
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    return data[start : end if end >= 0 else len(data)]


def _is_cp1252(data: bytes, at: int) -> bool:
    try:
        _line_bytes(data, at).decode("cp1252")
    except UnicodeDecodeError:
        return False  # bytes cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d)
    return True


@contextmanager
def open_import_text(path: str, encoding: str | None) -> Iterator[TextIO]:
    """The file (``-``: standard input) as checked text; UnreadableFile when it cannot be."""
    with ExitStack() as stack:
        binary = sys.stdin.buffer if path == "-" else stack.enter_context(_open_binary(path))
        if not binary.seekable():
            # A pipe (standard input, `<(command)`) is read twice: copy it first.
            spool = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(binary, spool)
            spool.seek(0)
            binary = spool
        chosen = choose_encoding(binary.read(4), encoding)
        binary.seek(0)
        check_decodes(binary, chosen)
        binary.seek(0)
        text = TextIOWrapper(binary, encoding=chosen, errors="strict", newline="")
        stack.callback(text.detach)  # the binary file is closed by its own context
        yield text


def _open_binary(path: str) -> BinaryIO:
    target = Path(path)
    if target.is_dir():
        raise UnreadableFile("is a directory, not a file")
    try:
        return target.open("rb")
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except OSError as error:
        raise UnreadableFile(f"cannot be read: {error.strerror or error}") from None
