"""Recovery timing with the real scheduler: faulty accounts back off, the others keep time.

A :class:`Runtime` polls 32 fake Pages every 2 s with its own APScheduler jobs. Six Pages
fail on every request until the test clears them: a request that hangs until the request
timeout, a connection dropped mid-body, HTTP 500, HTTP 429 with ``Retry-After``, malformed
JSON and an expired token. Every poll is recorded through ``runtime.observers``, and the test
checks the timing the README promises:

* healthy Pages are polled every interval within the jitter the whole time, however the
  others fail: both when each poll starts and when its request reaches the fake platform
  (a hanging request that held them up would add up to its whole timeout);
* failing Pages back off as ``PollCoordinator._backoff`` says (interval, 2x, 4x, each
  +-10%), the 429 Page waits exactly what it was told, the expired token pauses its Page;
* once the faults clear, each failing Page recovers by itself at its next planned poll,
  goes back to ``ok`` and to the plain interval, and stores everything it had missed;
* every failed poll is one count of ``replywatch_polls_total`` with the fault's outcome.

Waits are on the observer's records with ``asyncio.wait_for`` bounds, never on sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from sqlalchemy import func, select

from connectors.fakes.meta import FakeMeta
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.service.runtime import Runtime
from monitor.store.context import AppContext
from monitor.store.tables import EVENTS

TOKEN = "EAA-SCHEDULE-TEST-SECRET-TOKEN-5"
INTERVAL = 2.0
JITTER = 0.1  # PollCoordinator.jitter: +-10% on backoff, 0-10% added by APScheduler's trigger
REQUEST_TIMEOUT = 1.5  # below the interval, so a hanging poll ends before its next is due
# Scheduling latency allowed on a loaded two-core machine. A healthy poll held up by a
# hanging one would be late by the whole request timeout, well past this.
SLACK = 0.5
RETRY_AFTER = 3.0  # longer than the interval, so honouring it shows
# page id -> (fault, options, the outcome every faulted poll must have)
FAULTY: dict[str, tuple[str, dict[str, Any], PollOutcome]] = {
    "300": ("slow", {}, PollOutcome.CONNECTION),
    "301": ("reset", {}, PollOutcome.CONNECTION),
    "302": ("server_error", {"status": 500, "code": 2}, PollOutcome.CONNECTION),
    "303": ("http_429", {"retry_after": int(RETRY_AFTER)}, PollOutcome.RATE_LIMITED),
    "304": ("expired_token", {}, PollOutcome.AUTH),
    "305": ("malformed", {}, PollOutcome.RESPONSE),
}
BACKING_OFF = ("300", "301", "302", "305")
HEALTHY = [str(page) for page in range(306, 332)]
PAGES = [*FAULTY, *HEALTHY]


def name(page: str) -> str:
    """The account name of a fake Page."""
    return f"page-{page}"


class PollLog:
    """The observer: every finished poll, per account, and a wake-up for waiters."""

    def __init__(self) -> None:
        self.records: dict[str, list[PollRecord]] = {name(page): [] for page in PAGES}
        self._changed = asyncio.Event()

    def __call__(self, record: PollRecord) -> None:
        self.records[record.account].append(record)
        self._changed.set()

    def of(self, page: str) -> list[PollRecord]:
        """The polls of one Page so far."""
        return self.records[name(page)]

    async def until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Return once ``condition()`` holds after some poll; fail after ``timeout`` s."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            polls = {account: [r.outcome.value for r in rs] for account, rs in self.records.items()}
            raise AssertionError(f"not reached within {timeout:g} s: {polls}") from None


def seconds(delta: timedelta) -> float:
    """A timedelta in seconds."""
    return delta.total_seconds()


def gaps(records: list[PollRecord]) -> list[float]:
    """Seconds between the starts of consecutive polls."""
    return [seconds(b.started_at - a.started_at) for a, b in itertools.pairwise(records)]


Fake = tuple[FakeMeta, str, dict[str, list[datetime]]]


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    """The fake Graph API, faults set, and when each Page's polls reached it (first pages)."""
    meta = FakeMeta()
    arrivals: dict[str, list[datetime]] = {page: [] for page in PAGES}

    @web.middleware
    async def note_arrival(request: web.Request, handler: Handler) -> web.StreamResponse:
        # A poll's first request has no paging cursor; later pages of the same poll have one.
        if request.match_info.get("edge") == "conversations" and "after" not in request.query:
            arrivals[request.match_info["node"]].append(datetime.now(UTC))
        return await handler(request)

    meta.app.middlewares.append(note_arrival)
    now = datetime.now(UTC)
    for page in PAGES:
        meta.add_page(page, TOKEN)
        meta.customer_message(page, f"h{page}", now - timedelta(hours=2))
        meta.business_reply(page, f"h{page}", now - timedelta(hours=1))
    for page, (kind, options, _outcome) in FAULTY.items():
        meta.fail_account(page, kind, times=None, **options)
    server = TestServer(meta.app, host="127.0.0.1")
    await server.start_server(access_log=None)
    yield meta, str(server.make_url("")).rstrip("/"), arrivals
    meta.release_slow()
    await server.close()


def write_config(folder: Path, url: str) -> Path:
    """One Facebook account per Page, polled every INTERVAL seconds."""
    parts = [
        f"""
[[accounts]]
name = "{name(page)}"
platform = "facebook"
ids = {{ page_id = "{page}" }}
channels = ["dm"]
poll_interval = "{INTERVAL:g}s"
base_url = "{url}"
secrets = {{ access_token = "env:SCHEDULE_TOKEN" }}
"""
        for page in PAGES
    ]
    path = folder / "replywatch.toml"
    path.write_text("".join(parts))
    return path


def failed_polls(runtime: Runtime) -> dict[str, float]:
    """replywatch_polls_total of the Pages' platform by non-success outcome (zeros left out)."""
    counts = {}
    for outcome in PollOutcome:
        value = runtime.metrics.registry.get_sample_value(
            "replywatch_polls_total", {"platform": "facebook", "outcome": outcome.value}
        )
        if outcome is not PollOutcome.SUCCESS and value:
            counts[outcome.value] = value
    return counts


async def test_faulty_accounts_back_off_and_heal_while_the_others_keep_time(
    tmp_path: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Healthy Pages on time; faulty ones back off, recover on schedule; every fault counted."""
    meta, url, arrivals = fake
    monkeypatch.setenv("SCHEDULE_TOKEN", TOKEN)
    context = AppContext.open(write_config(tmp_path, url), f"sqlite:///{tmp_path / 's.db'}")
    runtime = Runtime(
        context,
        port=0,
        request_timeout=REQUEST_TIMEOUT,
        first_poll_spread=0.5,
        figures_interval=3600,
    )
    log = PollLog()
    runtime.observers.append(log)
    await runtime.start()
    try:
        # Phase 1: three failed polls per backing-off Page (backoff 1x, 2x, 4x the interval).
        def faults_seen() -> bool:
            return (
                all(len(log.of(page)) >= 3 for page in BACKING_OFF)
                and len(log.of("303")) >= 3
                and len(log.of("304")) >= 1
            )

        await log.until(faults_seen, timeout=20)
        # Messages the failing Pages cannot deliver yet; the healthy ones take theirs now.
        now = datetime.now(UTC)
        for page in PAGES:
            meta.customer_message(page, f"n{page}", now)
        cleared_at = datetime.now(UTC)
        for page in FAULTY:
            meta.clear_failures(page)
        # The next poll of a Page with f failures is planned at most interval * 2**(f-1) * 1.1
        # after the last one started (before now); a poll still in flight (the hanging one)
        # fails once more and plans the next at most interval * 2**f * 1.1 after its start.
        worst = max(runtime.coordinators[name(p)].failures for p in BACKING_OFF)
        bound = INTERVAL * 2**worst * (1 + JITTER) + SLACK
        recovering = [*BACKING_OFF, "303"]

        # Phase 2: each recovers by itself, then polls once more on the plain interval.
        def healed() -> bool:
            return all(
                sum(r.outcome is PollOutcome.SUCCESS for r in log.of(page)) >= 2
                for page in recovering
            )

        await log.until(healed, timeout=bound + INTERVAL * (1 + JITTER) + SLACK)
        ended_at = datetime.now(UTC)
        stored_by_page = {}
        with context.engine.connect() as connection:
            for page in PAGES:
                stored_by_page[page] = connection.execute(
                    select(func.count())
                    .select_from(EVENTS)
                    .where(EVENTS.c.thread_id.in_([f"dm/h{page}", f"dm/n{page}"]))
                ).scalar_one()
        paused_job = runtime.scheduler.get_job(name("304"))
    finally:
        await runtime.stop()
        context.close()

    # Healthy Pages: every poll succeeded, every gap is the interval plus 0-10% jitter (as
    # started and as seen by the platform), and no poll is missing over the whole run. Timing
    # is judged once the first round (the backfills, while the runtime warms up) is over.
    settled = max(
        rs[0].started_at + timedelta(seconds=rs[0].duration_s) for rs in log.records.values()
    )
    healthy_gaps = []
    for page in HEALTHY:
        records = log.of(page)
        assert all(r.outcome is PollOutcome.SUCCESS for r in records), page
        seen = arrivals[page]
        assert len(seen) == len(records), page
        timed = [(r, at) for r, at in zip(records, seen, strict=True) if r.started_at >= settled]
        assert len(timed) >= 3, (page, len(timed))
        for (a, a_seen), (b, b_seen) in itertools.pairwise(timed):
            for gap in (seconds(b.started_at - a.started_at), seconds(b_seen - a_seen)):
                assert INTERVAL - SLACK <= gap <= INTERVAL * (1 + JITTER) + SLACK, (page, gap)
            healthy_gaps.append(seconds(b.started_at - a.started_at))
        for record, reached in timed:
            assert 0 <= seconds(reached - record.started_at) <= SLACK, (page, record, reached)
        span = seconds(ended_at - records[0].started_at)
        assert len(records) >= span / (INTERVAL * (1 + JITTER) + SLACK), (page, len(records))
    # The jitter really is 0-10% on top of the interval, not latency piling up.
    assert INTERVAL <= statistics.median(healthy_gaps) <= INTERVAL * (1 + JITTER) + 0.05

    # Backing-off Pages: k-th failure in a row -> next poll interval * 2**(k-1) +-10% after
    # the failed one started, and the runtime polls exactly then.
    for page in BACKING_OFF:
        _kind, _options, outcome = FAULTY[page]
        records = log.of(page)
        first_success = next(i for i, r in enumerate(records) if r.outcome is PollOutcome.SUCCESS)
        failed = records[:first_success]
        assert len(failed) >= 3, page
        for k, record in enumerate(failed, start=1):
            assert record.outcome is outcome, (page, k, record)
            assert record.state is AccountState.FAILING
            assert record.next_poll_at is not None
            planned = INTERVAL * 2 ** (k - 1)
            delay = seconds(record.next_poll_at - record.started_at)
            assert planned * (1 - JITTER) <= delay <= planned * (1 + JITTER), (page, k, delay)
        for before, after in itertools.pairwise(records[: first_success + 1]):
            assert before.next_poll_at is not None
            late = seconds(after.started_at - before.next_poll_at)
            assert -0.01 <= late <= SLACK, (page, late)
        # Healing happens at the first poll started after the faults cleared, by itself.
        recovery = records[first_success]
        assert all(r.started_at < cleared_at for r in failed), page
        assert seconds(recovery.started_at - cleared_at) <= bound, page
        assert recovery.state is AccountState.OK
        # Back on the plain interval afterwards.
        assert all(r.outcome is PollOutcome.SUCCESS for r in records[first_success:]), page
        after_gaps = gaps(records[first_success:])
        assert after_gaps, page
        assert all(INTERVAL - SLACK <= g <= INTERVAL * (1 + JITTER) + SLACK for g in after_gaps)
        assert stored_by_page[page] == 3  # the history and the message sent during the fault

    # HTTP 429 with Retry-After: 3 -> exactly 3 s later (no jitter, no doubling).
    records = log.of("303")
    first_success = next(i for i, r in enumerate(records) if r.outcome is PollOutcome.SUCCESS)
    limited = records[:first_success]
    assert len(limited) >= 3
    for before, after in itertools.pairwise(records[: first_success + 1]):
        assert before.outcome is PollOutcome.RATE_LIMITED
        assert before.state is AccountState.RATE_LIMITED
        assert before.next_poll_at == before.started_at + timedelta(seconds=RETRY_AFTER)
        assert -0.01 <= seconds(after.started_at - before.next_poll_at) <= SLACK
    assert records[first_success].state is AccountState.OK
    assert seconds(records[first_success].started_at - cleared_at) <= RETRY_AFTER + SLACK
    assert stored_by_page["303"] == 3

    # Expired token: one poll, then paused: not polled again although the fault cleared.
    records = log.of("304")
    assert len(records) == 1
    assert records[0].outcome is PollOutcome.AUTH and records[0].next_poll_at is None
    assert records[0].state is AccountState.AUTH_FAILED
    assert runtime.coordinators[name("304")].state is AccountState.AUTH_FAILED
    assert paused_job is not None and paused_job.next_run_time is None
    assert stored_by_page["304"] == 0

    # Every failed poll is in the platform's counters, under its own outcome, and no other.
    seen: dict[str, float] = {}
    for records in log.records.values():
        for record in records:
            if record.outcome is not PollOutcome.SUCCESS:
                seen[record.outcome.value] = seen.get(record.outcome.value, 0) + 1
    assert failed_polls(runtime) == seen
    assert seen["rate_limited"] >= 3 and seen["auth"] == 1

    for page in [*BACKING_OFF, "303", *HEALTHY]:
        assert runtime.coordinators[name(page)].state is AccountState.OK, page
        assert stored_by_page[page] == 3, page
