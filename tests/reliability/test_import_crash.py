"""SIGKILL during `replywatch import`, ten times: the finished import equals a clean one.

The import commits in batches and every event is unique per account and message id, so a
killed import is finished by running it again. The kill moments are seeded; the test waits
for the import to exit or for that moment, whichever comes first.
"""

from __future__ import annotations

import asyncio
import csv
import random
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

KILLS = 10
ROWS = 160_000


def write_csv(path: Path) -> None:
    rng = random.Random(5)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["platform", "account", "thread_id", "message_id", "author_role", "created_at"]
        )
        for i in range(ROWS // 2):
            at = start + timedelta(seconds=rng.uniform(0, 20 * 86400))
            thread = f"t{i}"
            account = f"acct-{i % 20}"
            out.writerow(["facebook", account, thread, f"q{i}", "customer", at.isoformat()])
            reply = at + timedelta(seconds=rng.expovariate(1 / 900))
            out.writerow(["facebook", account, thread, f"a{i}", "business", reply.isoformat()])


async def run_import(csv_path: Path, database: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "--database",
        f"sqlite:///{database}",
        "import",
        "--progress",
        "never",
        str(csv_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def content(database: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # By account name: ids are handed out in whatever order a batch creates accounts.
        events = connection.execute(
            "SELECT a.name, e.message_id, e.thread_id, e.author_role, e.created_at FROM events e "
            "JOIN accounts a ON a.id = e.account_id ORDER BY 1, 2"
        ).fetchall()
        waits = connection.execute(
            "SELECT a.name, w.thread_id, w.opened_at, w.closed_at FROM waits w "
            "JOIN accounts a ON a.id = w.account_id ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        connection.close()
    return events, waits


async def test_killed_imports_finish_exactly_like_a_clean_one(tmp_path: Path) -> None:
    """Ten kills at seeded moments, then one more run: same events and waits as a clean import."""
    rows = tmp_path / "events.csv"
    write_csv(rows)
    rng = random.Random(11)
    killed = tmp_path / "killed.db"
    kills = 0
    for _ in range(KILLS):
        process = await run_import(rows, killed)
        try:
            await asyncio.wait_for(process.wait(), timeout=rng.uniform(0.9, 3.5))
        except TimeoutError:
            process.kill()
            await process.wait()
            kills += 1
    assert kills >= KILLS // 2, "the import finished before most kill moments: use more rows"
    finish = await run_import(rows, killed)
    assert await finish.wait() == 0
    clean = tmp_path / "clean.db"
    assert await (await run_import(rows, clean)).wait() == 0
    killed_events, killed_waits = content(killed)
    clean_events, clean_waits = content(clean)
    assert len(clean_events) == ROWS
    assert killed_events == clean_events
    assert killed_waits == clean_waits
