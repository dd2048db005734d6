"""Soak: ``replywatch run`` over thousands of fake Pages while 5% of requests fail at random.

Run with ``make bench-soak`` (``.venv/bin/python bench/soak.py --accounts 2000 --minutes 10
--fault-rate 0.05``; ``--accounts 200 --minutes 2`` for a quick look) or ``make
bench-soak-long`` (the same for 60 minutes). It takes the given minutes plus the time the last
round needs (a few minutes: throttled and backed-off accounts wait before their next poll).
``--results FILE`` appends one row per criterion for ``bench/all.py``'s table.

1. The fake Graph API runs in its own process (``bench/fake_graph_server.py --admin``): new
   customer messages to every Page about once a minute, each answered 1-10 minutes later, and
   a random platform fault (5xx, throttling codes and 429 with and without a hint, malformed,
   truncated, HTML and empty bodies, expired paging cursors, empty pages with a next link,
   hanging requests, dropped connections) on the given share of data requests. It logs every
   request and keeps every message: the ground truth.
2. ``replywatch run`` polls every Page every 60 s on SQLite; its resident memory is read from
   ``/proc`` every few seconds.
3. After the given minutes the fake stops writing and failing; once every Page's poll has
   started again since then, ``replywatch run`` is stopped (SIGTERM lets running polls store).

Criteria, each PASS or FAIL (the exit code is 1 when any fails):

* memory: mean RSS over the last minute before the stop within 10% of the mean over the
  minute after the warm-up, which ends 3 minutes after replywatch started by default (issue
  17: "flat within 10% from minute 3 to minute 10" on the 10-minute soak; the first minutes
  hold the backfill round, whose memory is not the steady state's). On runs shorter than
  9 minutes the warm-up is a third of ``--minutes`` and the windows shrink to fit;
* schedule: from the fake's request log, the gap between the starts of consecutive polls of
  each account is the interval within its 10% jitter (gaps after a failed poll are left out:
  backoff and platform waits are expected there); a late or skipped poll fails it;
* faults seen: every injected fault that fails a poll is one failed poll in
  ``replywatch_polls_total`` with the matching outcome, and there are no other failed polls;
* stored: every message of the fake is in the store, once;
* figures: each account's figures from ``replywatch stats`` equal those computed from the
  fake's ground truth with the project's own ``derive_waits`` and ``window_figures``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.fake_graph_server import EMPTY_PAGE, page_id, token
from bench.results import Baseline, Result, add_results_option, record
from monitor.config.loading import load_config
from monitor.core.figures import Figures, WaitFacts, Window, window_figures
from monitor.core.waits import ThreadEvent, derive_waits

ROOT = Path(__file__).resolve().parent.parent
JITTER = 0.1  # monitor.polling.coordinator.PollCoordinator.jitter
WARMUP_MINUTES = 3.0
MEMORY_CHANGE = 0.10
SAMPLE_SECONDS = 5.0
# Each fault kind of the fake and the poll outcome it must produce (None: the poll succeeds).
OUTCOME = {
    "server_error": "connection",
    "slow": "connection",
    "reset": "connection",
    "throttle": "rate_limited",
    "http_429": "rate_limited",
    "malformed": "response",
    "truncated": "response",
    "html": "response",
    "missing_data": "response",
    "invalid_cursor": "response",
    EMPTY_PAGE: None,
}
FIELDS = (
    "waits",
    "answered",
    "unanswered",
    "decided",
    "response_rate",
    "within_target_share",
    "mean_response_seconds",
    "median_response_seconds",
    "p90_response_seconds",
    "open_waits",
    "oldest_open_wait_seconds",
    "target_met",
)


@dataclass
class Verdict:
    """One row of the report."""

    name: str
    measured: str
    target: str
    passed: bool
    details: list[str] = field(default_factory=list)
    # The criterion's headline figure for bench/all.py's table (None: no number to show).
    value: float | None = None
    unit: str = ""
    baseline: Baseline | None = None

    def result(self) -> Result:
        """This criterion as a row of the benchmark results."""
        ratio = None
        if self.value is not None and self.baseline is not None and self.baseline.value:
            ratio = self.value / self.baseline.value
        return Result(
            "soak",
            self.name,
            self.value,
            self.unit,
            self.baseline,
            ratio,
            self.target,
            self.passed,
        )


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_config(folder: Path, url: str, accounts: int, interval: float) -> Path:
    """A config with one Facebook account per fake Page."""
    parts = ['[replywatch]\nbackfill = "7d"\n']
    for index in range(accounts):
        parts.append(
            f'[[accounts]]\nname = "page-{index}"\nplatform = "facebook"\n'
            f'ids = {{ page_id = "{page_id(index)}" }}\nchannels = ["dm"]\n'
            f'poll_interval = "{interval:g}s"\nbase_url = "{url}"\n'
            f'secrets = {{ access_token = "env:BENCH_TOKEN_{index}" }}\n'
        )
    path = folder / "soak.toml"
    path.write_text("\n".join(parts))
    return path


def account_name(page: str) -> str:
    """The config's account name of a fake Page id."""
    return f"page-{int(page) - int(page_id(0))}"


def polls_by_outcome(metrics: str) -> Counter[str]:
    """replywatch_polls_total summed over accounts, per outcome."""
    totals: Counter[str] = Counter()
    pattern = r"^replywatch_polls_total\{([^}]*)\} ([0-9.e+]+)$"
    for match in re.finditer(pattern, metrics, re.M):
        outcome = re.search(r'outcome="([^"]*)"', match.group(1))
        if outcome:
            totals[outcome.group(1)] += int(float(match.group(2)))
    return totals


# -- the run ------------------------------------------------------------------------------


@dataclass
class Run:
    """What the run leaves behind for the analysis."""

    started: float
    warm: float
    stopped: float
    memory: list[tuple[float, float]]
    polls: Counter[str]
    truth: dict[str, Any]
    config: Path
    database: Path
    as_of: datetime
    last_round_s: float
    log_lines: Counter[str]


async def sample_memory(pid: int, samples: list[tuple[float, float]]) -> None:
    """Append (time, RSS MB) every few seconds until cancelled."""
    while True:
        try:
            samples.append((time.time(), rss_mb(pid)))
        except FileNotFoundError:
            return
        await asyncio.sleep(SAMPLE_SECONDS)


async def run(args: argparse.Namespace, folder: Path) -> Run:
    """Start the fake and replywatch, let them run, stop both cleanly; collect everything."""
    python = sys.executable
    fake = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "bench.fake_graph_server",
        "--accounts",
        str(args.accounts),
        "--fault-rate",
        str(args.fault_rate),
        "--admin",
        "--seed",
        str(args.seed),
        "--history",
        str(args.history),
        "--per-minute",
        str(args.per_minute),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert fake.stdout is not None
    port = int((await asyncio.wait_for(fake.stdout.readline(), 300)).split()[1])
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **{f"BENCH_TOKEN_{i}": token(i) for i in range(args.accounts)}}
    config = write_config(folder, url, args.accounts, args.interval)
    database = folder / "soak.db"
    stderr = (folder / "replywatch.log").open("wb")
    monitor = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "monitor.cli",
        "--config",
        str(config),
        "--database",
        f"sqlite:///{database}",
        "run",
        "--listen",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
        cwd=ROOT,
    )
    try:
        started = time.time()
        memory: list[tuple[float, float]] = []
        sampler = asyncio.create_task(sample_memory(monitor.pid, memory))
        assert monitor.stdout is not None
        address = ""
        while not address:
            line = (await asyncio.wait_for(monitor.stdout.readline(), 300)).decode()
            if "serving" in line:
                address = line.split("serving ")[1].split(" ")[0]
        warm = started + args.warmup * 60
        print(
            f"{args.accounts} accounts, poll every {args.interval:g} s, {args.fault_rate:.0%} "
            f"faults, {args.minutes:g} min (warm-up {args.warmup:g} min) ...",
            flush=True,
        )
        drain = asyncio.create_task(monitor.stdout.read())
        end = started + args.minutes * 60
        while time.time() < end:
            await asyncio.sleep(min(60.0, end - time.time()))
            rss = f"{memory[-1][1]:.0f} MB" if memory else "?"
            print(f"  {(time.time() - started) / 60:.1f} min: RSS {rss}", flush=True)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/_stop") as reply:
                stopped = float((await reply.json())["stopped_at"])
            print("traffic and faults stopped; waiting for every account's next poll", flush=True)
            # A thrown-away round would not prove anything: every account must poll again.
            deadline = time.time() + args.last_round_minutes * 60
            waiting: list[str] = ["?"]
            while waiting and time.time() < deadline:
                await asyncio.sleep(SAMPLE_SECONDS)
                async with session.get(f"{url}/_waiting") as reply:
                    waiting = (await reply.json())["waiting"]
            if waiting:
                raise SystemExit(f"{len(waiting)} account(s) not polled again within the deadline")
            last_round = time.time() - stopped
            async with session.get(f"{address}/metrics") as reply:
                metrics = await reply.text()
            sampler.cancel()
            monitor.send_signal(signal.SIGTERM)
            await monitor.wait()
            drain.cancel()
            as_of = datetime.now(UTC).replace(microsecond=0)
            async with session.get(f"{url}/_ground_truth") as reply:
                truth = await reply.json()
    finally:
        # Whatever happened (a deadline, Ctrl-C), leave no process behind.
        for process in (monitor, fake):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        stderr.close()
    levels: Counter[str] = Counter()
    for text in (folder / "replywatch.log").read_text(errors="replace").splitlines():
        for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "Traceback"):
            if level in text:
                levels[level] += 1
                break
    return Run(
        started=started,
        warm=warm,
        stopped=stopped,
        memory=memory,
        polls=polls_by_outcome(metrics),
        truth=truth,
        config=config,
        database=database,
        as_of=as_of,
        last_round_s=last_round,
        log_lines=levels,
    )


# -- the analysis -------------------------------------------------------------------------


def judge_memory(result: Run, window_s: float) -> Verdict:
    """Mean RSS of the window after the warm-up (minute 3) against the last one before the stop."""
    first = [mb for t, mb in result.memory if result.warm <= t < result.warm + window_s]
    last = [mb for t, mb in result.memory if result.stopped - window_s <= t < result.stopped]
    # Where each window starts, in minutes since replywatch started, for the report.
    since = (result.warm - result.started) / 60, (result.stopped - window_s - result.started) / 60
    target = f"within {MEMORY_CHANGE:.0%}"
    if not first or not last:
        return Verdict("memory (RSS)", "too few samples", target, False)
    a, b = statistics.fmean(first), statistics.fmean(last)
    change = b / a - 1
    peak = max(mb for _t, mb in result.memory)
    by_minute: dict[int, list[float]] = defaultdict(list)
    for t, mb in result.memory:
        by_minute[int((t - result.started) // 60)].append(mb)
    series = ", ".join(f"{statistics.fmean(v):.0f}" for _m, v in sorted(by_minute.items()))
    # The data grows during a soak; what the monitor holds for it is part of its memory.
    times = sorted(
        datetime.fromisoformat(row[3]).timestamp()
        for messages in result.truth["pages"].values()
        for row in messages
    )
    then = bisect.bisect_right(times, result.warm + window_s / 2)
    return Verdict(
        "memory (RSS)",
        f"{a:.0f} MB over {window_s:g} s from minute {since[0]:.1f}, {b:.0f} MB over the last "
        f"{window_s:g} s (from minute {since[1]:.1f}) ({change:+.1%}); peak {peak:.0f} MB",
        target,
        abs(change) <= MEMORY_CHANGE,
        [
            f"mean RSS per minute since start (MB): {series}",
            f"messages at the fake: {then:,} in the first window, {len(times):,} at the end",
        ],
        value=b,
        unit="MB",
        baseline=Baseline(a, f"mean RSS from minute {since[0]:.1f}"),
    )


@dataclass
class Poll:
    """One poll as the fake saw it: when its first request came, and whether it failed."""

    start: float
    faults: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether a fault that fails a poll hit it."""
        return any(OUTCOME[kind] is not None for kind in self.faults)


def polls_from_log(requests: list[list[Any]]) -> dict[str, list[Poll]]:
    """Group the fake's request log into polls per Page."""
    polls: dict[str, list[Poll]] = defaultdict(list)
    for at, page, first, kind in sorted(requests, key=lambda r: r[0]):
        if first or not polls[page]:
            polls[page].append(Poll(at))
        if kind:
            polls[page][-1].faults.append(kind)
    return polls


def judge_schedule(
    polls: dict[str, list[Poll]], interval: float, accounts: int, tolerance: float, stop: float
) -> Verdict:
    """Gaps between poll starts after a successful poll: the interval within its jitter.

    Judged over the soak itself (polls due before the stop); the last round, which only
    makes the store complete for the figures, is reported beside it.
    """
    low, high = interval * (1 - JITTER), interval * (1 + JITTER)
    gaps: list[float] = []
    last_round: list[float] = []
    after_fault = 0
    for page_polls in polls.values():
        for a, b in itertools.pairwise(page_polls):
            if a.failed:
                after_fault += 1
                continue
            (gaps if b.start < stop else last_round).append(b.start - a.start)
    inside = sum(low <= g <= high for g in gaps)
    # A request reaches the fake a little after its poll was due (dispatch, connection).
    allowed = sum(low - tolerance <= g <= high + tolerance for g in gaps)
    never = accounts - len(polls)
    share = inside / len(gaps) if gaps else 0.0
    details = []
    outside = sorted((g for g in gaps if not low <= g <= high), reverse=True)
    if outside:
        details.append(
            "gaps outside the jitter (s): " + ", ".join(f"{g:.2f}" for g in outside[:10])
        )
    quantiles = statistics.quantiles(gaps, n=100) if len(gaps) > 1 else [0.0] * 99
    details.append(
        f"gaps: min {min(gaps, default=0):.2f} s, median {statistics.median(gaps or [0]):.2f} s, "
        f"p99 {quantiles[98]:.2f} s, max {max(gaps, default=0):.2f} s"
    )
    late_after = [g for g in last_round if not low <= g <= high]
    details.append(
        f"last round (after the stop, no faults): {len(last_round):,} gaps, {len(late_after)} "
        f"outside the jitter, worst lateness {max([g - high for g in last_round] + [0]):.2f} s"
    )
    return Verdict(
        "schedule",
        f"{share:.2%} of {len(gaps):,} gaps within {low:g}-{high:g} s ({after_fault:,} after a "
        f"failed poll left out); worst lateness {max([g - high for g in gaps] + [0]):.2f} s, "
        f"earliest {max([low - g for g in gaps] + [0]):.2f} s early; {never} account(s) "
        "never polled",
        f"all within jitter +-{tolerance:g} s",
        allowed == len(gaps) and bool(gaps) and never == 0,
        details,
        value=100 * allowed / len(gaps) if gaps else None,
        unit="% of gaps",
    )


def judge_faults(result: Run, polls: dict[str, list[Poll]]) -> Verdict:
    """Injected faults that fail a poll against replywatch_polls_total's failed outcomes."""
    injected: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for page_polls in polls.values():
        for poll in page_polls:
            kinds.update(poll.faults)
            outcomes = [OUTCOME[kind] for kind in poll.faults]
            failing = [outcome for outcome in outcomes if outcome is not None]
            if failing:
                injected[failing[0]] += 1  # a poll ends at its first failing request
    failed = Counter({k: v for k, v in result.polls.items() if k != "success" and v})
    details = ["injected: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))]
    details.append(
        "replywatch_polls_total: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.polls.items()) if v)
    )
    return Verdict(
        "faults seen",
        f"{sum(injected.values()):,} polls failed by a fault {dict(sorted(injected.items()))}, "
        f"{sum(failed.values()):,} failed polls counted {dict(sorted(failed.items()))}",
        "equal, per outcome",
        injected == failed and sum(injected.values()) > 0,
        details,
        value=sum(failed.values()),
        unit="failed polls",
        baseline=Baseline(sum(injected.values()), "injected faults that fail a poll"),
    )


def judge_stored(result: Run) -> Verdict:
    """Every message of the fake in the store, exactly once."""
    connection = sqlite3.connect(result.database)
    stored: dict[str, set[str]] = defaultdict(set)
    rows = 0
    for name, message_id in connection.execute(
        "SELECT a.name, e.message_id FROM events e JOIN accounts a ON a.id = e.account_id"
    ):
        stored[name].add(message_id)
        rows += 1
    connection.close()
    expected = missing = extra = 0
    for page, messages in result.truth["pages"].items():
        ids = {row[1] for row in messages}
        expected += len(ids)
        have = stored.get(account_name(page), set())
        missing += len(ids - have)
        extra += len(have - ids)
    duplicates = rows - sum(len(ids) for ids in stored.values())
    return Verdict(
        "stored",
        f"{expected - missing:,} of {expected:,} messages, {extra} unknown, "
        f"{duplicates} duplicates",
        "all, once",
        missing == 0 and extra == 0 and duplicates == 0,
        value=expected - missing,
        unit="messages",
        baseline=Baseline(expected, "messages at the fake"),
    )


def expected_figures(result: Run) -> dict[str, Figures]:
    """Each account's figures from the ground truth, with the project's own functions."""
    config = load_config(result.config)
    figures = {}
    for page, messages in result.truth["pages"].items():
        name = account_name(page)
        account = config.accounts[name]
        profile = account.profile
        threads: dict[str, list[ThreadEvent]] = defaultdict(list)
        for customer, mid, from_business, created in messages:
            role = "business" if from_business else "customer"
            threads[customer].append(ThreadEvent(datetime.fromisoformat(created), role, mid))
        facts = [
            WaitFacts(
                w.opened_at, w.closed_at, w.response_seconds, w.business_seconds, w.tier, "dm"
            )
            for events in threads.values()
            for w in derive_waits(events, profile.rule, account.calendar)
        ]
        window = Window(result.as_of - profile.window, result.as_of, result.as_of)
        figures[name] = window_figures(facts, profile, window, account.calendar)
    return figures


def judge_figures(result: Run) -> Verdict:
    """``replywatch stats`` against the figures computed from the fake's ground truth."""
    command = [
        sys.executable,
        "-m",
        "monitor.cli",
        "--config",
        str(result.config),
        "--database",
        f"sqlite:///{result.database}",
        "stats",
        "--format",
        "json",
        "--as-of",
        result.as_of.isoformat(),
    ]
    done = subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
    rows = json.loads(done.stdout)
    theirs = {row["account"]: row for row in rows}
    ours = expected_figures(result)
    mismatches: list[str] = []
    for name, figures in sorted(ours.items()):
        row = theirs.get(name)
        if row is None:
            mismatches.append(f"{name}: not in replywatch stats")
            continue
        for key in FIELDS:
            if getattr(figures, key) != row[key]:
                mismatches.append(
                    f"{name} {key}: expected {getattr(figures, key)!r}, got {row[key]!r}"
                )
    waits = sum(f.waits for f in ours.values())
    answered = sum(f.answered for f in ours.values())
    return Verdict(
        "figures",
        f"{len(ours):,} accounts ({waits:,} waits, {answered:,} answered), "
        f"{len(mismatches)} mismatch(es)",
        "0 mismatches",
        not mismatches and len(theirs) == len(ours),
        mismatches[:10],
        value=len(mismatches),
        unit="mismatches",
    )


def report(verdicts: list[Verdict]) -> None:
    """Print the table: criterion, measured, target, PASS or FAIL; details below."""
    target = max(len(v.target) for v in verdicts) + 2
    print(f"\n{'criterion':<14}{'result':<8}{'target':<{target}}measured")
    for verdict in verdicts:
        result = "PASS" if verdict.passed else "FAIL"
        print(f"{verdict.name:<14}{result:<8}{verdict.target:<{target}}{verdict.measured}")
    for verdict in verdicts:
        for line in verdict.details:
            print(f"  {verdict.name}: {line}")


def save(result: Run, folder: Path) -> None:
    """Keep what the analysis reads beside the store, for --reanalyse."""
    facts = {
        key: getattr(result, key)
        for key in ("started", "warm", "stopped", "memory", "polls", "last_round_s", "log_lines")
    }
    facts["as_of"] = result.as_of.isoformat()
    (folder / "run.json").write_text(json.dumps(facts))
    (folder / "ground_truth.json").write_text(json.dumps(result.truth))


def load(folder: Path) -> Run:
    """A run kept with --keep."""
    facts = json.loads((folder / "run.json").read_text())
    return Run(
        started=facts["started"],
        warm=facts["warm"],
        stopped=facts["stopped"],
        memory=[(t, mb) for t, mb in facts["memory"]],
        polls=Counter(facts["polls"]),
        truth=json.loads((folder / "ground_truth.json").read_text()),
        config=folder / "soak.toml",
        database=folder / "soak.db",
        as_of=datetime.fromisoformat(facts["as_of"]),
        last_round_s=facts["last_round_s"],
        log_lines=Counter(facts["log_lines"]),
    )


def main() -> int:
    """Parse the options, run in a temporary folder, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=10.0, help="faulty traffic this long")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--interval", type=float, default=60.0, help="poll interval, seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        help=f"minutes from the start to the first memory window (default: "
        f"{WARMUP_MINUTES:g}, or a third of --minutes when that is shorter)",
    )
    parser.add_argument(
        "--tolerance", type=float, default=1.0, help="seconds of latency allowed beyond the jitter"
    )
    parser.add_argument("--last-round-minutes", type=float, default=40.0, help="give up after")
    parser.add_argument("--history", type=int, default=3, help="past conversations per Page")
    parser.add_argument(
        "--per-minute", type=float, default=1.0, help="new conversations per Page and minute"
    )
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="keep the store, config and log in this folder")
    add_results_option(parser)
    parser.add_argument(
        "--reanalyse", type=Path, metavar="FOLDER", help="judge a run kept with --keep again"
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = min(WARMUP_MINUTES, args.minutes / 3)
    # The memory windows: a minute each, or what fits after the warm-up on short runs.
    window_s = min(60.0, (args.minutes - args.warmup) * 60 / 2)
    with tempfile.TemporaryDirectory(prefix="replywatch-soak-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        if args.reanalyse:
            result = load(args.reanalyse)
        else:
            result = asyncio.run(run(args, folder))
            if args.keep:
                save(result, folder)
        polls = polls_from_log(result.truth["requests"])
        made = sum(len(p) for p in polls.values())
        print(
            f"done: {made:,} polls seen by the fake, {len(result.truth['requests']):,} requests; "
            f"last round took {result.last_round_s:.0f} s after the stop; replywatch log lines: "
            f"{dict(result.log_lines)}"
        )
        verdicts = [
            judge_memory(result, window_s),
            judge_schedule(polls, args.interval, args.accounts, args.tolerance, result.stopped),
            judge_faults(result, polls),
            judge_stored(result),
            judge_figures(result),
        ]
    report(verdicts)
    record(args.results, [verdict.result() for verdict in verdicts])
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
