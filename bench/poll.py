"""Benchmark: ``replywatch run`` polling thousands of fake Pages, against a bare aiohttp client.

Run with ``make bench-poll`` (``.venv/bin/python bench/poll.py --accounts 5000 --minutes 3``).

1. The fake Graph API runs in its own process (``bench/fake_graph_server.py``) with customers
   writing to every Page about once a minute.
2. ``replywatch run`` polls every account every 60 s for the given minutes (its first poll is
   the 7-day backfill). Its CPU time and peak memory are read from ``/proc``; the polls it made
   from its ``/metrics``; the lag between a message's creation on the fake and its arrival in
   the store from the store itself (``first_seen_at - created_at``).
3. In the same run, a bare aiohttp client fetches and parses the same conversation pages:
   paced like the monitor (every account once a minute, beside it, for the same time), and
   as a burst (50 at a time, as many as replywatch polled); its CPU time is measured.

Targets (issue 17): replywatch's CPU per poll at most 1.3x the paced bare client's, every due
poll made (polls are counted at the fake, where they arrive), peak memory under 250 MB; the
exit code is 1 when one is missed. ``--results FILE`` appends the judged figures for
``bench/all.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.fake_graph_server import BARE_CLIENT_HEADER, page_id, token
from bench.results import Baseline, Result, add_results_option, record
from bench.soak import Poll, Verdict, judge_schedule, polls_from_log

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_RATIO = 1.3
# Seconds a poll's first request may reach the fake beyond its jittered time (as in the soak).
SCHEDULE_TOLERANCE = 1.0
PEAK_MB = 250


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (VmHWM), or another /proc status field, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_config(folder: Path, url: str, accounts: int, interval: str = "60s") -> Path:
    """A config with one Facebook account per fake Page, polled every ``interval``."""
    parts = ['[replywatch]\nbackfill = "7d"\n']
    for index in range(accounts):
        parts.append(
            f'[[accounts]]\nname = "page-{index}"\nplatform = "facebook"\n'
            f'ids = {{ page_id = "{page_id(index)}" }}\nchannels = ["dm"]\n'
            f'poll_interval = "{interval}"\nbase_url = "{url}"\n'
            f'secrets = {{ access_token = "env:BENCH_TOKEN_{index}" }}\n'
        )
    path = folder / "bench.toml"
    path.write_text("\n".join(parts))
    return path


FIELDS = "id,updated_time,link,message_count,participants,messages.limit(20){id,created_time,from}"


async def fetch_and_parse(session: aiohttp.ClientSession, url: str, index: int) -> int:
    """One bare 'poll': GET the conversations page, parse it, tell business from customer."""
    params = {
        "platform": "messenger",
        "fields": FIELDS,
        "limit": "25",
        "access_token": token(index),
    }
    headers = {BARE_CLIENT_HEADER: "1"}
    async with session.get(
        f"{url}/v21.0/{page_id(index)}/conversations", params=params, headers=headers
    ) as r:
        body = json.loads(await r.read())
    count = 0
    for conversation in body["data"]:
        for message in conversation["messages"]["data"]:
            datetime.fromisoformat(message["created_time"])
            count += message["from"]["id"] == page_id(index)
    return count


async def bare_burst(url: str, accounts: int, polls: int) -> float:
    """CPU seconds for a plain client to fetch and parse ``polls`` pages, 50 at a time."""
    started = sum(os.times()[:2])
    semaphore = asyncio.Semaphore(50)
    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> int:
            async with semaphore:
                return await fetch_and_parse(session, url, index)

        await asyncio.gather(*(one(i % accounts) for i in range(polls)))
    return sum(os.times()[:2]) - started


async def bare_paced(url: str, accounts: int, seconds: float) -> tuple[int, float]:
    """Polls made and CPU seconds of a plain client polling every account once a minute.

    Runs beside the monitor for the same time at the same pace, so both pay the same price
    for requests that arrive one at a time rather than in a burst.
    """
    started = sum(os.times()[:2])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    gap = 60.0 / accounts
    tasks: set[asyncio.Task[int]] = set()
    polls = 0
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            task = asyncio.create_task(fetch_and_parse(session, url, polls % accounts))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            polls += 1
            await asyncio.sleep(gap)
        await asyncio.gather(*tasks)
    return polls, sum(os.times()[:2]) - started


async def polls_started(session: aiohttp.ClientSession, fake: str) -> int:
    """Polls that reached the fake (their first request), counted there, as bench/cluster.py
    counts them: replywatch's own /metrics is rendered in the background at this size and
    can be a render behind."""
    async with session.get(f"{fake}/_polls") as reply:
        return int((await reply.json())["polls"])


async def judge_steady_schedule(
    session: aiohttp.ClientSession, fake: str, accounts: int, start: float, end: float
) -> Verdict:
    """Every due poll made on time: the gaps between each account's polls in the steady state
    (from the fake's log, which holds the monitor's requests only), judged as the soak judges."""
    async with session.get(f"{fake}/_ground_truth") as reply:
        requests = (await reply.json())["requests"]
    polls: dict[str, list[Poll]] = {}
    for page, page_polls in polls_from_log(requests).items():
        # The poll before the window too: the first gap into the steady state counts.
        inside = [p for p in page_polls if start - 70 <= p.start <= end]
        if inside:
            polls[page] = inside
    return judge_schedule(polls, 60.0, accounts, SCHEDULE_TOLERANCE, end)


def top_functions(raw: Path, count: int = 25) -> list[tuple[float, float, str]]:
    """(inclusive share, self share, function) of the busiest functions in py-spy's raw output."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = [
            frame.split(" (")[0] + " (" + frame.rsplit("/", 1)[-1] for frame in stack.split(";")
        ]
        weight = int(samples)
        total += weight
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + weight
        own[frames[-1]] = own.get(frames[-1], 0) + weight
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])
    return [(n / total, own.get(f, 0) / total, f) for f, n in ranked[:count]] if total else []


async def run(
    accounts: int,
    minutes: float,
    folder: Path,
    profile: Path | None = None,
    py_spy: Path | None = None,
    results: Path | None = None,
) -> int:
    """Run both measurements and print the report; no process outlives it, even on error."""
    children: list[asyncio.subprocess.Process] = []
    try:
        return await _measure(children, accounts, minutes, folder, profile, py_spy, results)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()


async def _measure(
    children: list[asyncio.subprocess.Process],
    accounts: int,
    minutes: float,
    folder: Path,
    profile: Path | None,
    py_spy: Path | None,
    results: Path | None,
) -> int:
    python = sys.executable
    root = Path(__file__).resolve().parent.parent
    fake = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "bench.fake_graph_server",
        "--accounts",
        str(accounts),
        # The admin routes count polls where they arrive (/_polls).
        "--admin",
        stdout=asyncio.subprocess.PIPE,
        cwd=root,
    )
    children.append(fake)
    assert fake.stdout is not None
    port = int((await asyncio.wait_for(fake.stdout.readline(), 300)).split()[1])
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **{f"BENCH_TOKEN_{i}": token(i) for i in range(accounts)}}
    database = folder / "bench.db"
    # --profile FILE runs the monitor under cProfile (the numbers are then not comparable).
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    monitor = await asyncio.create_subprocess_exec(
        python,
        *profiler,
        "-m",
        "monitor.cli",
        "--config",
        str(write_config(folder, url, accounts)),
        "--database",
        f"sqlite:///{database}",
        "run",
        "--listen",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=root,
    )
    children.append(monitor)
    assert monitor.stdout is not None
    address = ""
    while not address:
        line = (await asyncio.wait_for(monitor.stdout.readline(), 300)).decode()
        if "serving" in line:
            address = line.split("serving ")[1].split(" ")[0]
    while "backfill finished" not in line:
        line = (await asyncio.wait_for(monitor.stdout.readline(), 600)).decode()
    # Steady state only: start-up and the 7-day backfill are not per-poll costs.
    async with aiohttp.ClientSession() as session:
        polls_before = await polls_started(session, url)
        user_before, system_before = cpu_times(monitor.pid)
        # Where the peak comes from: the backfill, or the steady state after it.
        after_backfill = peak_rss_mb(monitor.pid), peak_rss_mb(monitor.pid, "VmRSS")
        steady_from = time.time()
        print(
            f"backfill done; polling {accounts} accounts every 60 s for {minutes:g} min ...",
            flush=True,
        )
        drain = asyncio.create_task(monitor.stdout.read())
        sampler = None
        if py_spy is not None:
            # Samples the steady state only, at a rate that costs the monitor little.
            sampler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(monitor.pid),
                "--rate",
                "50",
                "--format",
                "raw",
                "--nonblocking",
                "--duration",
                str(int(minutes * 60)),
                "--output",
                str(py_spy),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            children.append(sampler)
        # The bare paced client's requests reach the same fake: count before and after it.
        paced_polls, paced_cpu = await bare_paced(url, accounts, minutes * 60)
        user, system = cpu_times(monitor.pid)
        user, system = user - user_before, system - system_before
        cpu = user + system
        memory = peak_rss_mb(monitor.pid)
        resident = peak_rss_mb(monitor.pid, "VmRSS")
        polls = await polls_started(session, url) - polls_before - paced_polls
        schedule = await judge_steady_schedule(session, url, accounts, steady_from, time.time())
        if sampler is not None:
            await sampler.wait()
    monitor.send_signal(signal.SIGTERM)
    await monitor.wait()
    drain.cancel()
    bare = await bare_burst(url, accounts, polls)
    fake.send_signal(signal.SIGTERM)
    await fake.wait()

    connection = sqlite3.connect(database)
    lags = [
        (datetime.fromisoformat(seen) - datetime.fromisoformat(created)).total_seconds()
        for created, seen in connection.execute(
            "SELECT created_at, first_seen_at FROM events WHERE thread_id LIKE 'dm/live%'"
        )
    ]
    connection.close()
    ours = cpu / polls * 1000
    theirs = paced_cpu / paced_polls * 1000
    burst = bare / polls * 1000
    print(f"{'':<46}{'CPU s / 1000 polls':>20}")
    print(f"{'replywatch run':<46}{ours:>20.2f}")
    print(f"{'bare aiohttp client, same pages, same pace':<46}{theirs:>20.2f}")
    print(f"{'bare aiohttp client, same pages, 50 at once':<46}{burst:>20.2f}")
    print(
        f"ratio to the paced client: {ours / theirs:.2f} (target <= {CPU_RATIO}); to the burst: "
        f"{ours / burst:.2f}; replywatch CPU split: {user:.1f} s user, {system:.1f} s system"
    )
    # Each poll is planned 60-66 s after the previous one (the coordinator's 0-10% jitter);
    # how many fall in the window depends on where the backfill left each account's phase.
    fewest, most = int(accounts * minutes * 60 / 66), int(accounts * minutes)
    print(f"polls made (counted at the fake): {polls}; with the jitter about {fewest}-{most}")
    print(f"schedule: {schedule.measured}")
    for detail in schedule.details:
        print(f"  {detail}")
    print(
        f"peak memory of replywatch: {memory:.0f} MB (target < {PEAK_MB} MB); at the end of "
        f"the backfill: peak {after_backfill[0]:.0f} MB, resident {after_backfill[1]:.0f} MB; "
        f"resident at the end: {resident:.0f} MB"
    )
    if lags:
        quantiles = statistics.quantiles(lags, n=100)
        print(
            f"lag creation -> store over {len(lags)} live messages: median "
            f"{statistics.median(lags):.1f} s, p95 {quantiles[94]:.1f} s, max {max(lags):.1f} s "
            "(poll interval 60 s)"
        )
    if py_spy is not None and py_spy.exists():
        print(f"busiest functions of the monitor (py-spy, {py_spy}): inclusive, self")
        for inclusive, own, function in top_functions(py_spy):
            print(f"  {inclusive:6.1%} {own:6.1%}  {function}")
    at = f"{accounts:,} accounts, {minutes:g} min"
    judged = [
        Result(
            "poll",
            f"CPU per 1,000 polls ({at})",
            ours,
            "s",
            Baseline(theirs, "bare aiohttp client, same pages, same pace"),
            ours / theirs,
            f"<= {CPU_RATIO}x the baseline",
            ours / theirs <= CPU_RATIO,
        ),
        Result(
            "poll",
            f"polls on time: gaps between an account's polls ({at})",
            schedule.value if schedule.value is not None else 0.0,
            "% of gaps",
            None,
            None,
            schedule.target + ", every account polled",
            schedule.passed,
        ),
        Result(
            "poll",
            f"peak memory ({at})",
            memory,
            "MB",
            None,
            None,
            f"< {PEAK_MB} MB",
            memory < PEAK_MB,
        ),
    ]
    record(results, judged)
    return 0 if all(result.passed for result in judged) else 1


def main() -> int:
    """Parse the options and run in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--profile", type=Path, help="write the monitor's cProfile stats here")
    parser.add_argument(
        "--py-spy", type=Path, help="sample the steady state with py-spy into this file"
    )
    add_results_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replywatch-poll-") as folder:
        return asyncio.run(
            run(args.accounts, args.minutes, Path(folder), args.profile, args.py_spy, args.results)
        )


if __name__ == "__main__":
    sys.exit(main())
