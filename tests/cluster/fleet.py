"""A cluster under test: a fake Graph API with hundreds of Pages, worker and serve processes.

The fake runs in the test's own event loop, so the test writes messages into it directly and
can hold chosen requests open. Workers write their poll log (one JSON line when a poll takes
its account, one when it ends) to stdout; the test reads those lines as they come and waits
on them, never on the clock.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from connectors.fakes.meta import FakeMeta

TOKEN = "EAA-CLUSTER-TEST-SECRET-TOKEN-6"
# Seconds between polls of one account: 500 accounts make 25 polls a second, which one
# worker alone carries on two cores shared with the fake and the database (about 40 a
# second in CI). The bound holds only while the remaining workers have capacity to spare: at
# 10 s (50 a second) the worker left alone while the other was frozen fell behind by 3 s.
INTERVAL = 20.0
JITTER = 0.1  # the coordinator's
TICK, HEARTBEAT, STALLED_AFTER, HOLD = 1.0, 1.0, 4.0, 8.0
# No committed poll of an account may follow the previous one later than this: a normal
# interval with jitter, plus the hold after which a lost job's account is handed out again,
# two ticks, and 4 s for two busy cores.
BOUND = INTERVAL * (1 + JITTER) + HOLD + 2 * TICK + 4.0

# Families that differ between two correct processes: ages rendered at scrape time, the time
# of the snapshot, and the webhook deliveries each replica counts itself.
PER_PROCESS = (
    "replywatch_oldest_open_wait",
    "replywatch_figures_snapshot",
    "replywatch_webhook",
    "replywatch_events_stored",
    # Each replica's own background rounds (when its figures round last succeeded).
    "replywatch_round_",
    "replywatch_events_rejected",
    # Each replica's own HTTP server (connections it closed).
    "replywatch_http_",
)


def page_id(index: int) -> str:
    """The n-th fake Page."""
    return f"{7_000_000 + index}"


def write_config(folder: Path, url: str, pages: int) -> Path:
    """One Facebook account per Page, polled every INTERVAL seconds."""
    parts = ['[replywatch]\nbackfill = "7d"\nrefresh_interval = "2s"\n']
    for index in range(pages):
        parts.append(
            f'[[accounts]]\nname = "page-{index}"\nplatform = "facebook"\n'
            f'ids = {{ page_id = "{page_id(index)}" }}\nchannels = ["dm"]\n'
            f'poll_interval = "{INTERVAL}s"\nbase_url = "{url}"\n'
            'secrets = { access_token = "env:CLUSTER_TOKEN" }\n'
        )
    path = folder / "cluster.toml"
    path.write_text("\n".join(parts))
    return path


def seed(fake: FakeMeta, pages: int) -> None:
    """Two answered conversations per Page over the last days, and one still waiting."""
    now = datetime.now(UTC)
    for index in range(pages):
        fake.add_page(page_id(index), TOKEN)
        for n in range(2):
            opened = now - timedelta(hours=3 + 37 * n + index % 29)
            fake.customer_message(page_id(index), f"h{index}-{n}", opened)
            fake.business_reply(page_id(index), f"h{index}-{n}", opened + timedelta(minutes=n + 4))
        if index % 5 == 0:
            fake.customer_message(page_id(index), f"w{index}", now - timedelta(minutes=40))


@dataclass
class Poll:
    """One finished poll job from a worker's poll log."""

    account: str
    job: int
    worker: str
    started: datetime
    finished: datetime
    outcome: str
    committed: bool


@dataclass(frozen=True, slots=True)
class Start:
    """A poll job that took its account: by which worker, and when (the database's time)."""

    worker: str
    account: str
    at: datetime


@dataclass
class Fleet:
    """Every worker's poll log as it arrives, and a condition to wait on."""

    polls: list[Poll] = field(default_factory=list)
    started: dict[int, Start] = field(default_factory=dict)  # by job
    ended: set[int] = field(default_factory=set)
    stderr: dict[int, list[str]] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _committed: list[Poll] = field(default_factory=list)
    _by_worker: dict[str, list[Poll]] = field(default_factory=dict)
    _latest: dict[str, datetime] = field(default_factory=dict)
    _latest_success: dict[str, datetime] = field(default_factory=dict)
    _latest_by: dict[tuple[str, str], datetime] = field(default_factory=dict)

    async def until(
        self,
        predicate: Callable[[], bool],
        timeout: float,
        what: str,
        explain: Callable[[], str] | None = None,
    ) -> None:
        """Wait until ``predicate`` holds after some line arrived (or fail after timeout).

        ``explain`` adds what the database says to the failure (which stage is stuck).
        """
        async with self.changed:
            try:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes as
                # the condition is met (bpo-42130), and Traffic, told to stop, wrote forever.
                async with asyncio.timeout(timeout):
                    await self.changed.wait_for(predicate)
            except TimeoutError:
                state = "" if explain is None else f"\nthe database says:\n{explain()}"
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; the processes said:\n"
                    f"{self.said()}{state}"
                ) from None

    def said(self, last: int = 80) -> str:
        """The last lines each process wrote to stderr."""
        return "\n".join(
            f"{pid}: {line}" for pid, lines in self.stderr.items() for line in lines[-last:]
        )

    def timeline(self, step: float = 2.0) -> str:
        """Committed polls started in each ``step`` seconds, per worker: a stall shows."""
        polls = self.committed()
        if not polls:
            return "no committed polls"
        first = min(p.started for p in polls)
        counts: dict[int, dict[str, int]] = {}
        for poll in polls:
            slot = int((poll.started - first).total_seconds() // step)
            per_worker = counts.setdefault(slot, {})
            per_worker[poll.worker] = per_worker.get(poll.worker, 0) + 1
        return "\n".join(
            f"+{slot * step:5.0f} s: {dict(sorted(counts.get(slot, {}).items()))}"
            for slot in range(max(counts) + 1)
        )

    def history(self, account: str) -> str:
        """Every poll job of one account, in seconds from the first committed poll."""
        polls = self.committed()
        first = min(p.started for p in polls) if polls else datetime.now(UTC)

        def seconds(moment: datetime) -> str:
            return f"{(moment - first).total_seconds():7.2f}"

        lines = [
            f"job {p.job} on {p.worker}: {seconds(p.started)} to {seconds(p.finished)} s, "
            f"{p.outcome}, {'committed' if p.committed else 'not recorded'}"
            for p in self.polls
            if p.account == account
        ]
        lines += [
            f"job {job} on {start.worker}: {seconds(start.at)} s, never ended"
            for job, start in self.started.items()
            if start.account == account and job not in self.ended
        ]
        return "\n".join(lines)

    def committed(self) -> list[Poll]:
        """Polls whose outcome was recorded (they held their account's lease to the end)."""
        return self._committed

    def committed_by(self, worker: str) -> list[Poll]:
        """One worker's committed polls, in the order their log lines came."""
        return self._by_worker.setdefault(worker, [])

    def accounts_polled_since(self, moment: datetime, success: bool = False) -> int:
        """How many accounts have a committed (successful) poll that started after ``moment``."""
        latest = self._latest_success if success else self._latest
        return sum(started > moment for started in latest.values())

    def last_poll(self, account: str) -> datetime | None:
        """When the latest committed poll of ``account`` started, by any worker."""
        return self._latest.get(account)

    def last_poll_by(self, account: str, worker: str) -> datetime | None:
        """When ``worker`` started its latest committed poll of ``account``."""
        return self._latest_by.get((account, worker))

    def ended_without_a_line(self, job: int, finished: datetime) -> None:
        """Count a poll that committed but whose worker was killed before it logged the end."""
        start = self.started[job]
        self.ended.add(job)
        poll = Poll(start.account, job, start.worker, start.at, finished, "unlogged", True)
        self.polls.append(poll)
        self._index(poll)

    def in_flight(self, worker: str) -> list[int]:
        """Jobs this worker started and has not ended."""
        return [j for j, s in self.started.items() if s.worker == worker and j not in self.ended]

    async def _note(self, entry: dict[str, Any]) -> None:
        async with self.changed:
            if entry["event"] == "poll_started":
                at = datetime.fromisoformat(entry["at"])
                self.started[int(entry["job"])] = Start(entry["worker"], entry["account"], at)
            else:
                self.ended.add(int(entry["job"]))
                poll = Poll(
                    entry["account"],
                    int(entry["job"]),
                    entry["worker"],
                    datetime.fromisoformat(entry["started"]),
                    datetime.fromisoformat(entry["finished"]),
                    entry["outcome"],
                    bool(entry["committed"]),
                )
                self.polls.append(poll)
                if poll.committed:
                    self._index(poll)
            self.changed.notify_all()

    def _index(self, poll: Poll) -> None:
        # The waits test their conditions at every line: answer them without a scan.
        self._committed.append(poll)
        self.committed_by(poll.worker).append(poll)
        _keep_latest(self._latest, poll.account, poll.started)
        if poll.outcome == "success":
            _keep_latest(self._latest_success, poll.account, poll.started)
        _keep_latest(self._latest_by, (poll.account, poll.worker), poll.started)

    async def _error_line(self, pid: int, line: str) -> None:
        async with self.changed:
            self.stderr.setdefault(pid, []).append(line)
            self.changed.notify_all()


def _keep_latest(latest: dict[Any, datetime], key: object, started: datetime) -> None:
    if key not in latest or started > latest[key]:
        latest[key] = started


@dataclass
class Process:
    """A replywatch subprocess whose output the fleet reads."""

    process: asyncio.subprocess.Process
    name: str = ""  # a worker's "host:pid", as its poll log says
    lines: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def signal(self, signum: int) -> None:
        """Send a signal (SIGSTOP, SIGCONT, SIGKILL...)."""
        os.kill(self.pid, signum)

    async def stop(self) -> int:
        """SIGTERM, and wait for a clean exit."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await asyncio.wait_for(asyncio.gather(*self.readers, return_exceptions=True), 30)
        return code


async def start(
    fleet: Fleet, config: Path, database: str, command: list[str], ready: str
) -> Process:
    """Start ``replywatch <command>`` and wait for the stdout line starting with ``ready``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "--config",
        str(config),
        "--database",
        database,
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CLUSTER_TOKEN": TOKEN},
        # A traceback line may be long: a reader that gave up would leave the pipe full and
        # the process blocked on its next write.
        limit=2**22,
    )
    handle = Process(process)
    seen = asyncio.Event()

    async def read_stdout() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            handle.lines.append(line)
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    # Keep reading (a blocked pipe would stop the worker), but say so.
                    await fleet._error_line(process.pid, f"[test] not a poll log line: {line}")
                    continue
                await fleet._note(entry)
            elif line.startswith(ready):
                if line.startswith("replywatch worker "):
                    handle.name = line.split()[2].rstrip(":")
                seen.set()

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            await fleet._error_line(process.pid, raw.decode(errors="replace").rstrip("\n"))

    handle.readers = [asyncio.create_task(read_stdout()), asyncio.create_task(read_stderr())]
    waiting = asyncio.create_task(seen.wait())
    exited = asyncio.create_task(process.wait())
    await asyncio.wait({waiting, exited}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if not seen.is_set():
        waiting.cancel()
        await asyncio.gather(*handle.readers, return_exceptions=True)
        errors = "\n".join(fleet.stderr.get(process.pid, [])[-20:])
        raise AssertionError(f"replywatch {command[0]} did not start:\n{errors}")
    return handle


async def start_worker(fleet: Fleet, config: Path, database: str) -> Process:
    """A worker with short ticks and stall times, its poll log on stdout."""
    command = [
        "worker",
        "--concurrency",
        "20",
        "--tick",
        str(TICK),
        "--heartbeat",
        str(HEARTBEAT),
        "--stalled-after",
        str(STALLED_AFTER),
        "--hold",
        str(HOLD),
        "--poll-log",
        "/dev/stdout",
    ]
    return await start(fleet, config, database, command, "replywatch worker ")


def gaps(polls: list[Poll], until: datetime) -> dict[str, float]:
    """Per account, the longest time between committed polls (and from the last to ``until``)."""
    starts: dict[str, list[datetime]] = {}
    for poll in polls:
        starts.setdefault(poll.account, []).append(poll.started)
    longest = {}
    for account, times in starts.items():
        times.sort()
        steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        longest[account] = max([*steps, (until - times[-1]).total_seconds()])
    return longest


def overlaps(polls: list[Poll]) -> list[tuple[Poll, Poll]]:
    """Pairs of committed polls of one account whose [started, finished] intersect."""
    found = []
    by_account: dict[str, list[Poll]] = {}
    for poll in polls:
        by_account.setdefault(poll.account, []).append(poll)
    for account_polls in by_account.values():
        account_polls.sort(key=lambda p: p.started)
        for before, after in itertools.pairwise(account_polls):
            if after.started < before.finished:
                found.append((before, after))
    return found


def samples(
    text: str, skip: tuple[str, ...]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and labels, minus the skipped families."""
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith(skip):
            continue
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out
