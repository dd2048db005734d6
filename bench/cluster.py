"""Benchmark: polls per second and CPU per poll for 1, 2 and 3 workers on 10,000 accounts.

Run with ``make bench-cluster`` (``.venv/bin/python bench/cluster.py``); it needs the local
PostgreSQL (a fresh database per mode, dropped afterwards).

1. The fake Graph API runs in its own process (``bench/fake_graph_server.py``) with 10,000
   Pages and customers writing to them.
2. The 7-day backfill is not a steady-state cost: ``replywatch run`` makes it once, into a
   template database. Every mode starts from a copy of it (``CREATE DATABASE ... TEMPLATE``),
   so its polls are incremental from the first.
3. Every account is due every 20 s: 500 polls a second, more than this machine can make, so
   the rate measured is what the processes can do, not what was asked.
4. For each mode, on its copy: start it, let it poll every account once (the first round
   also decides the week's SLI outcomes) and work one interval more, then count the polls
   made over the measuring window and the CPU seconds spent: by the replywatch processes
   (``/proc``) and by the whole machine (``/proc/stat``: PostgreSQL and the fake included).
   Polls are counted at the fake (the first request of each), the same way for every mode.
5. The baseline, measured in the same run: ``replywatch run``, one process with APScheduler
   and no queue, on the same PostgreSQL and the same fake. The ratio of a worker mode's CPU
   per poll to the baseline's is the cost of coordinating through procrastinate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.fake_graph_server import token
from bench.poll import cpu_times, write_config

ADMIN_URL = os.environ.get(
    "REPLYWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
INTERVAL = 20


@dataclass
class Result:
    """One mode's measurement."""

    mode: str
    polls: int
    seconds: float
    process_cpu: float
    machine_cpu: float

    @property
    def rate(self) -> float:
        """Polls per second."""
        return self.polls / self.seconds

    @property
    def cpu_per_poll(self) -> float:
        """CPU milliseconds of the replywatch processes per poll (0 when none was counted)."""
        return self.process_cpu / self.polls * 1000 if self.polls else 0.0

    @property
    def machine_per_poll(self) -> float:
        """CPU milliseconds of the whole machine per poll (0 when none was counted)."""
        return self.machine_cpu / self.polls * 1000 if self.polls else 0.0


def versus(value: float, baseline: float) -> str:
    """``value`` as a multiple of ``baseline``; "-" when there is no baseline figure."""
    return f"{value / baseline:.2f}" if baseline else "-"


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent not idle since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Database:
    """A fresh PostgreSQL database for one mode."""

    def __init__(self, template: str | None = None) -> None:
        self.name = f"replywatch_bench_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        copy = "" if template is None else f' TEMPLATE "{template}"'
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"{copy}'))
        self.url = ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"
        self.engine = create_engine(self.url)

    def drop(self) -> None:
        """Drop the database."""
        self.engine.dispose()
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


async def start(
    config: Path, database: str, command: Sequence[str], env: dict[str, str]
) -> asyncio.subprocess.Process:
    """A replywatch process, its output discarded."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "--config",
        str(config),
        "--database",
        database,
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )


async def backfilled(config: Path, env: dict[str, str]) -> Database:
    """A database holding the 7-day backfill of every account, made by ``replywatch run``."""
    database = Database()
    process = await start(config, database.url, ["run", "--listen", "127.0.0.1:0"], env)
    assert process.stdout is not None
    try:
        await wait_for_line(process, "backfill finished")
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    database.engine.dispose()  # a template must have no connections
    return database


async def wait_for_line(process: asyncio.subprocess.Process, wanted: str) -> str:
    """Read the process's output up to the first line containing ``wanted``; returns it."""
    assert process.stdout is not None
    line = ""
    while wanted not in line:
        raw = await asyncio.wait_for(process.stdout.readline(), 1800)
        if not raw:
            raise RuntimeError(f"replywatch exited before saying {wanted!r}")
        line = raw.decode()
    return line


async def polls_started(session: aiohttp.ClientSession, fake: str) -> int:
    """Polls that have reached the fake so far (their first request), from any process.

    Counted at the fake, the same way for every mode: ``replywatch run``'s own counter comes
    from its /metrics, which at 10,000 accounts is rendered in the background about once a
    minute, so two scrapes a window apart could show the same number.
    """
    async with session.get(f"{fake}/_polls") as reply:
        body = await reply.json()
    return int(body["polls"])


async def measure_window(
    mode: str, fake: str, pids: Sequence[int], accounts: int, seconds: float
) -> Result:
    """Wait for one round of every account and one interval more, then measure ``seconds``."""
    async with aiohttp.ClientSession() as session:
        first = await polls_started(session, fake)
        while await polls_started(session, fake) - first < accounts:  # one round first
            await asyncio.sleep(1)
        await asyncio.sleep(INTERVAL)  # let the rhythm settle (and the queue fill)
        polls_before, machine_before = await polls_started(session, fake), machine_busy_seconds()
        cpu_before = sum(sum(cpu_times(pid)) for pid in pids)
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = sum(sum(cpu_times(pid)) for pid in pids) - cpu_before
        machine = machine_busy_seconds() - machine_before
        polls = await polls_started(session, fake) - polls_before
    return Result(mode, polls, elapsed, cpu, machine)


async def measure_workers(
    workers: int, fake: str, config: Path, template: str, run: tuple[int, float, dict[str, str]]
) -> Result:
    """Start ``workers`` workers on a copy of the backfilled database and measure them."""
    accounts, seconds, env = run
    database = Database(template)
    processes = [
        await start(config, database.url, ["worker", "--concurrency", "100"], env)
        for _ in range(workers)
    ]
    try:
        pids = [p.pid for p in processes]
        return await measure_window(f"{workers} worker(s)", fake, pids, accounts, seconds)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            await process.wait()
        database.drop()


async def measure_single(
    fake: str, config: Path, template: str, run: tuple[int, float, dict[str, str]]
) -> Result:
    """The baseline: ``replywatch run`` on a copy of the backfilled database."""
    accounts, seconds, env = run
    database = Database(template)
    process = await start(config, database.url, ["run", "--listen", "127.0.0.1:0"], env)
    assert process.stdout is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        await wait_for_line(process, "serving")
        drain = asyncio.create_task(process.stdout.read())
        mode = "replywatch run (baseline)"
        return await measure_window(mode, fake, [process.pid], accounts, seconds)
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        if drain is not None:
            drain.cancel()
        database.drop()


async def run(accounts: int, seconds: float, modes: Sequence[int], folder: Path) -> int:
    """Measure the baseline and every worker count; print the table."""
    root = Path(__file__).resolve().parent.parent
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fake_graph_server",
        "--accounts",
        str(accounts),
        "--admin",  # counts the polls: GET /_polls
        stdout=asyncio.subprocess.PIPE,
        cwd=root,
    )
    assert fake.stdout is not None
    port = int((await asyncio.wait_for(fake.stdout.readline(), 300)).split()[1])
    fake_url = f"http://127.0.0.1:{port}"
    config = write_config(folder, fake_url, accounts, f"{INTERVAL}s")
    env = {**os.environ, **{f"BENCH_TOKEN_{i}": token(i) for i in range(accounts)}}
    try:
        print(
            f"{accounts} accounts, each due every {INTERVAL} s; {seconds:g} s per mode", flush=True
        )
        template = await backfilled(config, env)
        print("  backfilled the template database", flush=True)
        try:
            run = (accounts, seconds, env)
            results = [await measure_single(fake_url, config, template.name, run)]
            print(f"  measured {results[-1].mode}", flush=True)
            for workers in modes:
                measured = await measure_workers(workers, fake_url, config, template.name, run)
                results.append(measured)
                print(f"  measured {results[-1].mode}", flush=True)
        finally:
            template.drop()
    finally:
        fake.send_signal(signal.SIGTERM)
        await fake.wait()
    baseline = results[0]
    print(
        f"\n{'mode':<28}{'polls/s':>10}{'CPU ms/poll':>14}{'vs run':>9}"
        f"{'machine ms/poll':>18}{'vs run':>9}"
    )
    for result in results:
        if not result.polls:
            print(f"{result.mode:<28}{'no polls counted in the window':>40}")
            continue
        print(
            f"{result.mode:<28}{result.rate:>10.1f}{result.cpu_per_poll:>14.2f}"
            f"{versus(result.cpu_per_poll, baseline.cpu_per_poll):>9}"
            f"{result.machine_per_poll:>18.2f}"
            f"{versus(result.machine_per_poll, baseline.machine_per_poll):>9}"
        )
    print(
        "\nCPU ms/poll: the replywatch processes only; machine ms/poll: every process, "
        "PostgreSQL and the fake included (this machine has "
        f"{os.cpu_count()} cores, shared by all of them)."
    )
    return 0


def main() -> int:
    """Parse the options and run in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window per mode")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replywatch-cluster-") as folder:
        return asyncio.run(run(args.accounts, args.seconds, args.workers, Path(folder)))


if __name__ == "__main__":
    sys.exit(main())
