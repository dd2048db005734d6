"""Several workers share 500 accounts through PostgreSQL; one is killed, one frozen.

Each test starts real ``replywatch worker`` processes against one fresh database and a fake
Graph API with 500 Pages that keeps getting messages. A worker is SIGKILLed (or SIGSTOPped,
then continued) while it has a poll in flight, checked in procrastinate's own table. The
workers' poll logs must then show that no two committed polls of one account overlapped,
that no account went unpolled longer than the stated bound, and that the killed or frozen
worker's accounts were taken over. The store must hold exactly what a single ``replywatch
run`` polls from the same fake, and two ``replywatch serve`` replicas must serve identical
figures, equal to the single process's, with every committed poll counted once.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine, create_engine, select, text

from connectors.fakes.meta import FakeMeta
from monitor.export.figures_exporter import FiguresSnapshot
from monitor.service.runtime import Runtime
from monitor.store.accounts import account_names
from monitor.store.context import AppContext
from monitor.store.tables import EVENTS, WAITS
from tests.cluster.fleet import (
    BOUND,
    PER_PROCESS,
    TOKEN,
    Fleet,
    Poll,
    Process,
    gaps,
    overlaps,
    page_id,
    samples,
    seed,
    start,
    start_worker,
    write_config,
)
from tests.stack import free_port

# A run takes about 50 s; a stuck one fails with its stacks instead of holding up the suite.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

PAGES = 500
# What is not a window figure (metrics.md section 4): the rest is compared with one process's.
_NOT_FIGURES = (
    "replywatch_sli_outcomes",
    "replywatch_response_time_seconds",
    "replywatch_polls",
    "replywatch_account_state",
    "replywatch_last",
    "replywatch_connector_missed",
    "replywatch_platform_quota",
    "replywatch_poll_interval",
    "replywatch_target",
    "replywatch_profile_min_waits",
    "replywatch_alert",
    "replywatch_weekly_report",
)


@pytest.fixture(autouse=True)
async def task_stacks_before_the_timeout(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Print every task's stack 30 s before pytest-timeout stops a stuck test.

    pytest-timeout shows the threads, where a stuck event loop only shows ``select``: the
    task stacks show what the test's coroutine waits for.
    """
    marker = request.node.get_closest_marker("timeout")
    loop = asyncio.get_running_loop()

    def dump() -> None:
        for task in asyncio.all_tasks(loop):
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)

    watchdog = threading.Timer(float(marker.args[0]) - 30, lambda: loop.call_soon_threadsafe(dump))
    watchdog.daemon = True
    watchdog.start()
    yield
    watchdog.cancel()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeMeta, str]]:
    meta = FakeMeta(app_call_limit=10**9)
    seed(meta, PAGES)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/")
    await server.close()


class Traffic:
    """Customers write (and are answered) as polls come in: one message per 10 polls."""

    def __init__(self, meta: FakeMeta, fleet: Fleet, seed_: int) -> None:
        self.meta, self.fleet, self.rng = meta, fleet, random.Random(seed_)
        self.written = 0
        self.last_at = datetime.now(UTC)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        mark = len(self.fleet.polls)
        while True:
            mark += 10
            await self.fleet.until(
                lambda mark=mark: len(self.fleet.polls) >= mark, 120, "more polls"
            )
            page = page_id(self.rng.randrange(PAGES))
            customer = f"live{self.written}"
            self.last_at = datetime.now(UTC)
            self.meta.customer_message(page, customer, self.last_at)
            if self.rng.random() < 0.7:
                self.meta.business_reply(page, customer, self.last_at)
            self.written += 1

    async def stop(self) -> datetime:
        """No more messages; returns the time of the last one."""
        self.task.cancel()
        async with asyncio.timeout(30):
            await asyncio.gather(self.task, return_exceptions=True)
        return self.last_at


async def catch_in_flight(fleet: Fleet, worker: Process, engine: Engine) -> list[int]:
    """SIGSTOP the worker at a moment it has a poll job running; returns those job ids."""
    tried: set[int] = set()
    while True:
        await fleet.until(
            lambda: bool(set(fleet.in_flight(worker.name)) - tried), 60, "a poll in flight"
        )
        worker.signal(signal.SIGSTOP)
        candidates = fleet.in_flight(worker.name)
        tried.update(candidates)
        # A query the worker sent just before it stopped may still end its job: let the
        # others finish a few polls (the database serves that query meanwhile), then look.
        seen = len(fleet.polls)
        await fleet.until(lambda seen=seen: len(fleet.polls) >= seen + 5, 60, "other polls")
        # Lines it wrote before it stopped have been read by now: those polls had ended.
        candidates = sorted(set(candidates) & set(fleet.in_flight(worker.name)))
        # In a thread: the fake and the pipe readers live in this loop and must keep going.
        caught = await asyncio.wait_for(asyncio.to_thread(jobs_in_flight, engine, candidates), 60)
        if caught:
            return caught
        worker.signal(signal.SIGCONT)  # it finished meanwhile: try the next one


def jobs_in_flight(engine: Engine, jobs: list[int]) -> list[int]:
    """Those of ``jobs`` still running: procrastinate's status, and still holding the lease.

    A job whose worker stopped after giving its account back but before it logged that (or
    before procrastinate marked it done) has finished its poll: it is not in flight.
    """
    with engine.connect() as connection:
        doing = connection.execute(
            text(
                "SELECT job.id FROM procrastinate_jobs AS job "
                "JOIN poll_state AS state ON state.lease = job.id "
                "WHERE job.status = 'doing' AND job.id = ANY(:ids)"
            ),
            {"ids": jobs},
        ).scalars()
        return sorted(int(job) for job in doing)


async def committed_unlogged(
    fleet: Fleet, worker: Process, engine: Engine, caught: list[int]
) -> dict[int, datetime]:
    """The stopped worker's polls that committed but have not logged their end, and when.

    Such a poll gave its account back (the lease is free) after it took it, and no other
    worker has polled the account since; a job whose lease was taken over is not among them.
    """
    jobs = {fleet.started[j].account: j for j in fleet.in_flight(worker.name) if j not in caught}

    def read() -> list[Any]:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT account.name, state.lease, state.last_poll_at "
                        "FROM poll_state AS state "
                        "JOIN accounts AS account ON account.id = state.account_id "
                        "WHERE account.name = ANY(:names)"
                    ),
                    {"names": list(jobs)},
                )
            )

    # In a thread: the fake and the pipe readers live in this loop and must keep going.
    rows = await asyncio.wait_for(asyncio.to_thread(read), 60)
    found: dict[int, datetime] = {}
    for name, lease, last_poll_at in rows:
        job = jobs[name]
        took = fleet.started[job].at
        latest = fleet.last_poll(name)
        polled_since = latest is not None and latest > took
        if lease is None and last_poll_at is not None and last_poll_at >= took and not polled_since:
            found[job] = last_poll_at
    return found


def queue_state(engine: Engine, accounts: set[str]) -> str:
    """The poll state and queued jobs of these accounts, the workers and the sessions."""
    queries = {
        "now": "SELECT now()",
        "poll_state": (
            "SELECT a.name, s.next_poll_at, s.lease, s.last_poll_at, s.state FROM poll_state s "
            "JOIN accounts a ON a.id = s.account_id WHERE a.name = ANY(:names)"
        ),
        "jobs": (
            "SELECT j.id, j.lock, j.status, j.worker_id, j.scheduled_at FROM procrastinate_jobs j "
            "JOIN accounts a ON j.lock = 'poll:' || a.id WHERE a.name = ANY(:names)"
        ),
        "jobs by status": "SELECT status, COUNT(*) FROM procrastinate_jobs GROUP BY status",
        "workers": "SELECT id, last_heartbeat FROM procrastinate_workers",
        "sessions": (
            "SELECT pid, state, wait_event_type, wait_event, now() - xact_start, left(query, 120) "
            "FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle'"
        ),
    }
    lines = []
    with engine.connect() as connection:
        for title, query in queries.items():
            rows = connection.execute(text(query), {"names": sorted(accounts)}).all()
            lines.append(f"{title}: " + "; ".join(str(tuple(row)) for row in rows))
    return "\n".join(lines)


def all_polled_after(fleet: Fleet, moment: datetime, success: bool = False) -> bool:
    """Whether every account has a committed poll that started after ``moment``."""
    return fleet.accounts_polled_since(moment, success) == PAGES


def released(fleet: Fleet, jobs: list[int]) -> bool:
    """Whether some worker logged the release of each of these stalled jobs."""
    lines = [line for pid_lines in fleet.stderr.values() for line in pid_lines]
    return all(any(f"replywatch.poll job {job}:" in line for line in lines) for job in jobs)


async def clean_run(tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    """What one ``replywatch run`` on SQLite stores from the same fake: one poll per account."""
    monkeypatch.setenv("CLUSTER_TOKEN", TOKEN)
    context = AppContext.open(config, f"sqlite:///{tmp_path / 'single.db'}")
    runtime = Runtime(context, port=0, first_poll_spread=3600, figures_interval=3600)
    await runtime.start()
    try:
        records = await asyncio.gather(*(c.poll() for c in runtime.coordinators.values()))
        assert {r.outcome.value for r in records} == {"success"}
    finally:
        await runtime.stop()
    return context


def stored(engine: Engine) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """Every event and every wait, by account name (ids differ between stores)."""
    with engine.connect() as connection:
        who = account_names(connection)
        e, w = EVENTS.c, WAITS.c
        events = [
            (who[a][1], m, t, r, c.replace(microsecond=0) if c.tzinfo else c)
            for a, m, t, r, c in connection.execute(
                select(e.account_id, e.message_id, e.thread_id, e.author_role, e.created_at)
            )
        ]
        waits = [
            (who[a][1], t, o, c, tier)
            for a, t, o, c, tier in connection.execute(
                select(w.account_id, w.thread_id, w.opened_at, w.closed_at, w.tier)
            )
        ]
    assert len(events) == len(set(events)), "an event is stored twice"
    assert len(waits) == len(set(waits)), "a wait is stored twice"
    return set(events), set(waits)


async def scrape(address: str) -> str:
    """One /metrics scrape."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{address}/metrics") as reply,
    ):
        assert reply.status == 200
        return await reply.text()


async def check_serving(fleet: Fleet, config: Path, database: str, single: AppContext) -> None:
    """Two serve replicas agree with each other and with one process; no poll counted twice."""
    replicas = []
    for _ in range(2):
        port = free_port()
        replicas.append(
            (
                await start(
                    fleet,
                    config,
                    database,
                    ["serve", "--listen", f"127.0.0.1:{port}"],
                    "figures ready",
                ),
                f"http://127.0.0.1:{port}",
            )
        )
    try:
        texts = [await scrape(address) for _process, address in replicas]
    finally:
        for process, _address in replicas:
            assert await process.stop() == 0
    first, second = (samples(t, PER_PROCESS) for t in texts)
    assert first == second, "two replicas serve different numbers"
    polls = sum(v for (name, _l), v in first.items() if name == "replywatch_polls_total")
    # Every committed poll counted once, no more. A killed worker may have recorded a poll
    # and died before it logged it: those are the polls it started and never ended.
    cut_off = len(set(fleet.started) - fleet.ended)
    assert len(fleet.committed()) <= polls <= len(fleet.committed()) + cut_off
    one = FiguresSnapshot(single.engine, single.accounts, include_live=False)
    one.refresh()
    rendered = (one.render_static() + one.render_live()).decode()
    expected = window_figures(samples(rendered, PER_PROCESS))
    figures = window_figures(first)
    assert figures and figures == expected, "the cluster's figures differ from one process's"


def window_figures(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> dict[object, float]:
    """The window-figure samples of an exposition (not SLI counters, targets or poll health)."""
    return {
        key: value
        for key, value in found.items()
        if key[0].startswith("replywatch_") and not key[0].startswith(_NOT_FIGURES)
    }


def check_outputs(fleet: Fleet, processes: list[Process]) -> None:
    """The token appears in no output of any process."""
    for process in processes:
        assert not any(TOKEN in line for line in process.lines)
    for lines in fleet.stderr.values():
        assert not any(TOKEN in line for line in lines)


async def settle_and_check_polls(
    fleet: Fleet, traffic: Traffic, running: list[Process]
) -> list[Poll]:
    """Stop the traffic, let every account be polled once more, stop the workers; check the log.

    No two committed polls of one account overlap, and no account waited over the bound.
    """
    last_message = await traffic.stop()
    await fleet.until(
        lambda: all_polled_after(fleet, last_message, success=True), 90, "a calm round"
    )
    for worker in running:
        assert await worker.stop() == 0
    committed = fleet.committed()
    assert overlaps(committed) == []
    longest = gaps(committed, datetime.now(UTC))
    assert len(longest) == PAGES
    worst = sorted(longest.items(), key=lambda i: -i[1])[:5]
    assert max(longest.values()) <= BOUND, (
        f"longest gaps {worst}\npolls started, every 2 s:\n{fleet.timeline()}\n"
        f"the polls of {worst[0][0]}:\n{fleet.history(worst[0][0])}\n"
        f"the processes said:\n{fleet.said(30)}"
    )
    return committed


async def check_against_one_process(
    fleet: Fleet,
    workers: list[Process],
    engine: Engine,
    setup: tuple[Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store equals one process's, the replicas agree with it, no output has the token."""
    tmp_path, config, database = setup
    # Every wait here has its own bound, so a stuck step fails under its own name.
    async with asyncio.timeout(180):
        single = await clean_run(tmp_path, config, monkeypatch)
    try:
        assert await asyncio.wait_for(asyncio.to_thread(stored, engine), 120) == stored(
            single.engine
        )
        await check_serving(fleet, config, database, single)
        check_outputs(fleet, workers)
    finally:
        single.close()


async def test_a_killed_worker_s_accounts_are_taken_over_by_the_others(
    tmp_path: Path,
    fake: tuple[FakeMeta, str],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three workers; one SIGKILLed mid-poll: no overlap, no gap over the bound, no loss."""
    meta, url = fake
    config = write_config(tmp_path, url, PAGES)
    engine = create_engine(postgres_url)
    fleet = Fleet()
    workers = [await start_worker(fleet, config, postgres_url) for _ in range(3)]
    victim, survivors = workers[0], workers[1:]
    traffic = Traffic(meta, fleet, 3)
    try:
        started = datetime.now(UTC)
        await fleet.until(lambda: all_polled_after(fleet, started), 90, "every account polled")
        caught = await catch_in_flight(fleet, victim, engine)
        # Polls that gave their account back while it was stopped never log their end.
        unlogged = await committed_unlogged(fleet, victim, engine, caught)
        victim.signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        for job, finished in unlogged.items():
            fleet.ended_without_a_line(job, finished)
        await asyncio.wait_for(victim.process.wait(), 30)
        accounts = {fleet.started[job].account for job in caught}
        await fleet.until(
            lambda: released(fleet, caught),
            60,
            "the killed worker's jobs released",
            explain=lambda: queue_state(engine, accounts),
        )
        await fleet.until(
            lambda: all_polled_after(fleet, killed_at),
            90,
            "polls after the kill",
            explain=lambda: queue_state(engine, accounts),
        )
        committed = await settle_and_check_polls(fleet, traffic, survivors)
        share = {w.name: sum(p.worker == w.name for p in committed) for w in workers}
        assert min(share.values()) > len(committed) / 10, share  # the work was shared
        assert traffic.written >= 50
        await check_against_one_process(
            fleet, workers, engine, (tmp_path, config, postgres_url), monkeypatch
        )
    finally:
        await traffic.stop()
        for worker in workers:
            if worker.process.returncode is None:
                worker.process.kill()
                await asyncio.wait_for(worker.process.wait(), 30)
        engine.dispose()


async def test_a_frozen_worker_that_wakes_up_counts_nothing_twice(
    tmp_path: Path,
    fake: tuple[FakeMeta, str],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers; one SIGSTOPped mid-poll past the stall time, then continued."""
    meta, url = fake
    config = write_config(tmp_path, url, PAGES)
    engine = create_engine(postgres_url)
    fleet = Fleet()
    workers = [await start_worker(fleet, config, postgres_url) for _ in range(2)]
    frozen, other = workers
    traffic = Traffic(meta, fleet, 4)
    try:
        started = datetime.now(UTC)
        await fleet.until(lambda: all_polled_after(fleet, started), 90, "every account polled")
        caught = await catch_in_flight(fleet, frozen, engine)
        frozen_at = datetime.now(UTC)
        accounts = {fleet.started[job].account for job in caught}
        await fleet.until(
            lambda: released(fleet, caught),
            60,
            f"the frozen worker's jobs {caught} released",
            explain=lambda: queue_state(engine, accounts),
        )

        def taken_over() -> bool:
            latest = [fleet.last_poll_by(a, other.name) for a in accounts]
            return all(t is not None and t > frozen_at for t in latest)

        await fleet.until(
            taken_over,
            60,
            "the other worker polling the frozen one's accounts",
            explain=lambda: queue_state(engine, accounts),
        )
        frozen.signal(signal.SIGCONT)
        await fleet.until(lambda: all(j in fleet.ended for j in caught), 60, "the late polls")
        # A poll that ended before the freeze (only its log line was late) keeps its result;
        # one still running at the freeze lost its lease and recorded nothing.
        late = [p for p in fleet.polls if p.job in caught]
        assert all(p.finished < frozen_at for p in late if p.committed), late
        assert any(not p.committed for p in late), late
        woke, before = datetime.now(UTC), len(fleet.committed_by(frozen.name))
        await fleet.until(
            lambda: sum(p.started > woke for p in fleet.committed_by(frozen.name)[before:]) >= 20,
            60,
            "the woken worker polling again",
        )
        await settle_and_check_polls(fleet, traffic, workers)
        await check_against_one_process(
            fleet, workers, engine, (tmp_path, config, postgres_url), monkeypatch
        )
    finally:
        await traffic.stop()
        for worker in workers:
            if worker.process.returncode is None:
                worker.signal(signal.SIGCONT)
                worker.process.kill()
                await asyncio.wait_for(worker.process.wait(), 30)
        engine.dispose()
