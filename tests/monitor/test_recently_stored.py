"""What the monitor remembers of its own writes: enough to skip an unchanged poll, no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import Event
from monitor.store.recent import RecentlyStored

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def poll(account: str, first: int, count: int) -> list[Event]:
    """``count`` messages of one account, numbered from ``first``."""
    return [
        Event("facebook", account, "dm", "t", f"m{i}", "customer", NOW - timedelta(minutes=i))
        for i in range(first, first + count)
    ]


def test_an_account_keeps_twice_its_largest_poll() -> None:
    """A quiet account with small polls keeps a few ids, however long it runs; a busy one
    keeps up to twice its largest recent poll after the first, within the cap."""
    recent = RecentlyStored(per_account=2000)
    for n in range(500):
        recent.remember(poll("quiet", n * 5, 5), NOW)
    recent.remember(poll("busy", 0, 400), NOW)
    for n in range(10):
        recent.remember(poll("busy", 400 + n * 100, 100), NOW)
    assert recent.bound(("facebook", "quiet")) == 16
    assert len(recent._ids[("facebook", "quiet")]) == 16
    assert len(recent._ids[("facebook", "busy")]) == 200
    # Back to small polls: the burst is forgotten within a few polls, and so are its ids.
    for n in range(10):
        recent.remember(poll("busy", 2000 + n * 5, 5), NOW)
    assert recent.bound(("facebook", "busy")) == 16
    assert len(recent._ids[("facebook", "busy")]) == 16


def test_a_backfill_does_not_set_the_bound() -> None:
    """The first batch (a week's backfill) is trimmed to the bound, keeping its newest
    messages, which the next poll re-reads; its size is not taken as a poll's."""
    recent = RecentlyStored()
    key = ("facebook", "busy")
    # Message m0 is the newest (poll() counts minutes back from NOW), m999 the oldest.
    backfill = poll("busy", 0, 1000)
    recent.remember(backfill, NOW)
    recent.remember_cursor(key, {"since": "1"})
    assert recent.bound(key) == 16
    assert set(recent._ids[key]) == {f"m{i}" for i in range(16)}
    assert recent.covers(key, poll("busy", 0, 16), {"since": "1"}, NOW)
    assert not recent.covers(key, poll("busy", 0, 17), {"since": "1"}, NOW)


def test_the_last_poll_is_still_covered() -> None:
    """The poll re-read next time (the same events, the same cursor) skips the store."""
    recent = RecentlyStored()
    key = ("facebook", "shop")
    for n in range(100):
        events = poll("shop", n * 30, 30)
        recent.remember(events, NOW)
        recent.remember_cursor(key, {"since": str(n)})
    assert recent.covers(key, events, {"since": "99"}, NOW)
    # One message it never stored, or an older poll's, and the store must be asked.
    assert not recent.covers(key, poll("shop", 0, 1), {"since": "99"}, NOW)
    assert not recent.covers(key, [*events, *poll("shop", 99_000, 1)], {"since": "99"}, NOW)
