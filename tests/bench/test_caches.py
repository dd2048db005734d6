"""bench/caches.py's measurements at a tiny size: every structure sized, the tables complete."""

from __future__ import annotations

from bench.caches import fewest_ids, fill_recent, measure, readme_table, recent_size, size_table


def test_recently_stored_size_follows_its_bound() -> None:
    quiet, quiet_ids = recent_size(lambda: fill_recent(20))
    # Polls of 64 messages (63 new, one re-read): twice that is kept, 128 ids per account.
    busy, busy_ids = recent_size(lambda: fill_recent(20, new_per_poll=63))
    # A quiet account's polls are small: it settles at the fewest ids, not at 2,000.
    assert (quiet_ids, busy_ids) == (20 * fewest_ids(), 20 * 128)
    assert fewest_ids() < 128
    assert busy > quiet * 1.5


def test_every_structure_has_a_positive_size_and_a_row() -> None:
    measured = measure(20)
    sizes = {held.structure: held.bytes for held in measured.held}
    assert len(sizes) == len(measured.held)
    # Outside the structures, or what is left of their objects once emptied: may round to 0.
    small = {"not attributed", "AlertCycle, FiguresSnapshot, ExpositionCache (the rest)"}
    assert all(size > 0 for name, size in sizes.items() if name not in small), sizes
    # At its cap an account holds 2,000 ids, where a quiet one keeps a few.
    assert sizes["RecentlyStored, every account at its cap"] > 10 * sizes["RecentlyStored"]
    table = readme_table([measured, measured], heap=100_000_000)
    rows = table.splitlines()[2:]
    # One row per structure, then the total and the imports' heap.
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows[:-2]] == list(sizes)
    assert all(row.count(" MB") == 2 for row in rows)
    assert size_table(measured, heap=100_000_000).count("\n| ") == len(sizes) + 1
