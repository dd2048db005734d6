"""Splitting an event stream into batches, optionally parsed ahead on a second core."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

__all__ = ["batched", "read_ahead"]

T = TypeVar("T")
_DONE = object()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Split a stream into lists of at most ``size``."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def read_ahead(items: Iterable[T], size: int, depth: int = 2) -> Iterator[list[T]]:
    """Like :func:`batched`, but the next batches are produced by a background thread.

    Parsing is Python work and storing is mostly database work that releases the GIL, so an
    import keeps both cores busy. Errors raised while producing re-raise in the consumer.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batched(items, size):
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            slots.put(error)

    worker = threading.Thread(target=produce, name="replywatch-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
