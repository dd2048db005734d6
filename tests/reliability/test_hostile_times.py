"""Hostile times and text at intake: refused alone, with a reason; the good beside them stored.

Before issue 14 one event dated 9999-12-31T23:59:59Z, through ``/hooks/events`` or
``replywatch import``, made every later alert round fail with OverflowError (no conversation
alert for any account, across restarts, while /healthz said 200); the same time written with
a -01:00 offset answered 500 and killed a whole import; a year-1 event made the oldest wait
6.4e10 s; a lone UTF-16 surrogate failed the whole batch it came in. The hypothesis cases at
the end run ``REPLYWATCH_FUZZ_EXAMPLES`` times (2,000 by default; the store's, a tenth).
"""

from __future__ import annotations

import itertools
import logging
import os
import unicodedata
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from connectors.base import Event
from monitor.config.loading import Config, load_config
from monitor.core.intake_bounds import has_lone_surrogate
from monitor.intake.csv_import import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RowParser, parse_time
from monitor.service.runtime import Runtime
from monitor.store.accounts import AccountDirectory
from monitor.store.context import AppContext
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from monitor.store.tables import EVENTS
from tests.conftest import RunCli

EXAMPLES = int(os.environ.get("REPLYWATCH_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Each case of the store property is a transaction on SQLite: a tenth of the parser cases.
STORE_FUZZ = settings(FUZZ, max_examples=max(100, EXAMPLES // 10))
TOKEN = "rw-hostile-TEST-token-0014"
NINES = "9999-12-31T23:59:59Z"
NINES_WEST = "9999-12-31T23:59:59-01:00"  # a valid ISO time whose UTC instant is past 9999
YEAR_ONE = "0001-01-01T00:00:00Z"
CUT_EMOJI = "\ud83d"  # what JavaScript leaves when it cuts "😀" in half
PUSH_ACCOUNT = """
[[accounts]]
name = "helpdesk"
platform = "whatsapp"
source = "push"
"""
CONFIG = (
    """
[replywatch]
store_excerpts = true

[webhooks.events]
secrets = { token = "env:RW_HOSTILE_TOKEN" }
"""
    + PUSH_ACCOUNT
)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def item(message_id: str, created_at: str, **changes: Any) -> dict[str, Any]:
    """One /hooks/events item for the configured push account."""
    event = {
        "platform": "whatsapp",
        "account": "helpdesk",
        "thread_id": f"+49151{message_id}",
        "message_id": message_id,
        "author_role": "customer",
        "created_at": created_at,
        "channel": "dm",
    }
    event.update(changes)
    return event


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RW_HOSTILE_TOKEN", TOKEN)
    path = tmp_path / "replywatch.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
async def runtime(config_path: Path, sqlite_url: str) -> AsyncIterator[Runtime]:
    context = AppContext.open(config_path, sqlite_url)
    monitor = Runtime(context, port=0, figures_interval=3600)
    await monitor.start()
    await monitor.figures_ready.wait()  # the scheduler's first round is over: the test drives
    try:
        yield monitor
    finally:
        await monitor.stop()
        context.close()


def stored_rows(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(EVENTS.c.message_id, EVENTS.c.created_at, EVENTS.c.text_excerpt)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


def failures(runtime: Runtime, round_name: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "replywatch_round_failures_total", {"round": round_name}
    )
    return value or 0.0


async def test_absurd_times_through_the_events_hook_are_refused_with_the_window(
    runtime: Runtime,
) -> None:
    """9999 (with and without an offset) and year 1: rejected by name; the good ones stored.

    The round after it still decides outcomes and raises the good customer's alert.
    """
    now = datetime.now(UTC)
    items = [
        item("m1", iso(now - timedelta(minutes=20)), text=f"hi {CUT_EMOJI}there"),
        item("m2", NINES),
        item("m3", NINES_WEST),
        item("m4", YEAR_ONE),
        item("m5", iso(now + timedelta(hours=1))),
        item(f"m6{CUT_EMOJI}", iso(now - timedelta(minutes=1))),
        item("m7", iso(now - timedelta(minutes=1))),
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            runtime.address + "/hooks/events",
            json={"events": items},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        answer = await response.json()
    errors = {r["index"]: r.get("error", "") for r in answer["results"]}
    assert [r["status"] for r in answer["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert errors[1].startswith("created_at 9999-12-31T23:59:59+00:00 is more than 5 min ahead")
    assert "outside the years 1-9999" in errors[2]
    assert "is before 2000-01-01, the earliest time accepted for whatsapp" in errors[3]
    assert "ahead of this server's clock" in errors[4]
    assert "holds a lone UTF-16 surrogate" in errors[5]
    stored = stored_rows(runtime.context.engine)
    assert sorted(stored) == ["m1", "m7"]
    assert stored["m1"][1] == "hi \ufffdthere"  # the cut emoji is shown as such, not lost

    await runtime.refresh_now()
    with runtime.context.engine.connect() as connection:
        alerts = connection.execute(text("SELECT thread_id, level FROM conversation_alerts"))
        assert sorted(alerts) == [("+49151m1", "breach")]
        outcomes = connection.execute(text("SELECT thread_id, outcome FROM wait_outcomes"))
        assert sorted(outcomes) == [("+49151m1", "missed")]
    assert failures(runtime, "outcomes") == 0.0
    healthy, body = runtime.health()
    assert healthy and body["status"] == "ok"


async def test_pushed_events_the_store_refuses_are_counted(runtime: Runtime) -> None:
    """Webhooks and polls hand Events straight to the store: refused ones are in /metrics."""
    now = datetime.now(UTC)

    def pushed(message_id: str, created_at: datetime) -> Event:
        return Event("whatsapp", "helpdesk", "dm", "t", message_id, "customer", created_at)

    stored = await runtime.store_events(
        [pushed("p1", now), pushed("p2", datetime(9999, 12, 31, tzinfo=UTC)), pushed("p3", now)]
    )
    assert stored == 2
    rejected = runtime.metrics.registry.get_sample_value(
        "replywatch_events_rejected_total", {"platform": "whatsapp"}
    )
    assert rejected == 1.0


def write_csv(path: Path, rows: list[str]) -> Path:
    header = "platform,account,thread_id,message_id,author_role,created_at,channel"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_absurd_times_through_import_are_bad_rows_and_the_rest_is_stored(
    run_cli: RunCli, tmp_path: Path, sqlite_url: str
) -> None:
    """Each absurd time is one bad row with the window named; the batch around it is stored."""
    now = datetime.now(UTC).replace(microsecond=0)
    early = iso(now - timedelta(minutes=30))
    csv = write_csv(
        tmp_path / "events.csv",
        [
            f"facebook,shop,t1,m1,customer,{early},dm",
            f"facebook,shop,t2,m2,customer,{NINES},dm",
            f"facebook,shop,t3,m3,customer,{NINES_WEST},dm",
            f"facebook,shop,t4,m4,customer,{YEAR_ONE},dm",
            "facebook,shop,t5,m5,customer,2003-12-31T00:00:00Z,dm",
            f"facebook,shop,t1,m6,business,{iso(now - timedelta(minutes=10))},dm",
        ],
    )
    result = run_cli("--database", sqlite_url, "import", str(csv))
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    bad = result.err.strip().splitlines()
    assert len(bad) == 4, bad
    assert "line 3: created_at 9999-12-31T23:59:59+00:00 is more than 5 min ahead" in bad[0]
    assert "line 4: created_at '9999-12-31T23:59:59-01:00' is outside the years 1-9999" in bad[1]
    assert "line 5: created_at 0001-01-01T00:00:00+00:00 is before 2004-02-04" in bad[2]
    assert "line 6: created_at 2003-12-31T00:00:00+00:00 is before 2004-02-04" in bad[3]
    assert "2 new event(s)" in result.out and "4 bad row(s) skipped" in result.out
    engine = open_engine(sqlite_url)
    try:
        assert sorted(stored_rows(engine)) == ["m1", "m6"]
    finally:
        engine.dispose()
    stats = run_cli("--database", sqlite_url, "stats", "--format", "json")
    assert stats.code == 0, stats.err
    assert '"answered": 1' in stats.out


@dataclass
class Batch:
    """A batch for the Ingestor with the message ids that must and must not be stored."""

    events: list[Event]
    good: set[str]


def hostile_batch(now: datetime) -> Batch:
    def event(message_id: str, **changes: Any) -> Event:
        fields: dict[str, Any] = {
            "platform": "facebook",
            "account": "shop",
            "channel": "dm",
            "thread_id": f"t-{message_id}",
            "message_id": message_id,
            "author_role": "customer",
            "created_at": now - timedelta(minutes=5),
        }
        fields.update(changes)
        return Event(**fields)

    good = [
        event("g1", text_excerpt=f"half {CUT_EMOJI} an emoji\x00", thread_url="https://f.b/1"),
        event("g2", thread_url="https://f.b/2\x1b[31m"),
        event("g3", thread_url="https://f.b/" + "x" * 1100),
    ]
    bad = [
        event("b1", created_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        event("b2", created_at=datetime(1, 1, 1, tzinfo=UTC)),
        event(f"b3{CUT_EMOJI}"),
        event("b4", thread_id=f"t{CUT_EMOJI}"),
        event("b5", account=f"shop{CUT_EMOJI}"),
        event("b6", platform=f"face{CUT_EMOJI}book"),
        event("b7\x1b[2J"),
        event("b8" + "9" * 300),
    ]
    return Batch(good + bad, {e.message_id for e in good})


def test_one_hostile_event_never_fails_the_batch(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused alone, counted, logged once (ids only); text cleaned, unusable links dropped."""
    engine = open_engine(sqlite_url)
    try:
        ingestor = Ingestor(engine, AccountDirectory(Config.empty()), keep_text=True)
        now = datetime.now(UTC)
        batch = hostile_batch(now)
        result = ingestor.ingest(batch.events, seen_at=now)
        assert (result.received, result.stored, result.rejected) == (11, 3, 8)
        stored = stored_rows(engine)
        assert set(stored) == batch.good
        assert stored["g1"][1] == "half \ufffd an emoji"
        with engine.connect() as connection:
            rows = connection.execute(select(EVENTS.c.message_id, EVENTS.c.thread_url))
            links = {message_id: url for message_id, url in rows}
        assert links == {"g1": "https://f.b/1", "g2": None, "g3": None}
        warnings = [r for r in caplog.records if r.name == "monitor.ingest"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        message = warnings[0].getMessage()
        assert "refused 8 event(s)" in message and "and 5 more" in message
        assert CUT_EMOJI not in message and "\x1b" not in message  # escaped, never raw

        caplog.clear()
        again = ingestor.ingest(batch.events, seen_at=now + timedelta(minutes=1))
        assert (again.stored, again.rejected) == (0, 8)
        assert not [r for r in caplog.records if r.name == "monitor.ingest"]  # logged once
    finally:
        engine.dispose()


# ---- properties ------------------------------------------------------------------------------

HOSTILE_CHARACTERS = ["\ud800", "\udbff", "\udc00", "\udfff", CUT_EMOJI, "\x00", "\x1b", "\x7f"]
hostile_text = st.text(
    st.one_of(st.characters(), st.sampled_from(HOSTILE_CHARACTERS)), min_size=1, max_size=12
)
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
absurd_moments = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 3)),
    st.datetimes(min_value=datetime(9999, 12, 29), max_value=datetime(9999, 12, 31, 23, 59)),
    st.datetimes(),
)


@FUZZ
@given(absurd_moments, offsets)
def test_parse_time_only_refuses_with_value_error(moment: datetime, offset: timezone) -> None:
    """Any year from 1 to 9999 with any offset: the same instant in UTC, or ValueError."""
    written = moment.replace(tzinfo=offset)
    try:
        parsed = parse_time(written.isoformat())
    except ValueError as err:
        assert "outside the years 1-9999" in str(err)
        return
    assert parsed.tzinfo is UTC and parsed == written


@pytest.fixture(scope="module")
def push_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("hostile") / "replywatch.toml"
    path.write_text(PUSH_ACCOUNT)
    return load_config(path)


NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@FUZZ
@given(absurd_moments, offsets)
def test_row_parser_keeps_times_inside_the_window(
    push_config: Config, moment: datetime, offset: timezone
) -> None:
    """A row's time is inside the plausibility window, or the row is refused naming it."""
    parser = RowParser([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], push_config, None, clock=lambda: NOW)
    written = moment.replace(tzinfo=offset).isoformat()
    row = ["whatsapp", "helpdesk", "t", "m", "customer", written, "dm", "", ""]
    try:
        event = parser(row)
    except ValueError as err:
        assert str(err).startswith("created_at ")
        return
    bounds = push_config.intake
    assert bounds.earliest_for("whatsapp") <= event.created_at <= NOW + bounds.max_ahead


@FUZZ
@given(st.lists(hostile_text, min_size=9, max_size=9), st.integers(0, 8))
def test_row_parser_never_lets_a_lone_surrogate_through(
    push_config: Config, values: list[str], keep: int
) -> None:
    """Lone surrogates and controls in any field: refused (ids) or cleaned (text), never kept."""
    row = ["whatsapp", "helpdesk", "t", "m", "customer", iso(NOW), "dm", "", "text"]
    row[keep] = values[keep]
    parser = RowParser([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], push_config, None, clock=lambda: NOW)
    try:
        event = parser(row)
    except ValueError as err:
        assert str(err)
        return
    for value in (event.platform, event.account, event.thread_id, event.message_id):
        assert not has_lone_surrogate(value)
    assert event.text_excerpt is None or not has_lone_surrogate(event.text_excerpt)


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    engine = open_engine(f"sqlite:///{tmp_path_factory.mktemp('store') / 'fuzz.db'}")
    yield Ingestor(engine, AccountDirectory(Config.empty()), keep_text=True)
    engine.dispose()


_case = itertools.count()
SPOILED = ("platform", "account", "thread_id", "message_id", "text_excerpt", "thread_url")


def storable_id(value: str) -> bool:
    """No lone surrogate (Cs) and no control character (Cc): what a database and a log take."""
    return not any(unicodedata.category(c) in ("Cs", "Cc") for c in value)


@STORE_FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(SPOILED), hostile_text, st.one_of(st.none(), absurd_moments)),
        min_size=1,
        max_size=6,
    )
)
def test_the_store_takes_the_good_events_of_any_batch(
    fuzz_store: Ingestor, spoilers: list[tuple[str, str, datetime | None]]
) -> None:
    """A batch with hostile fields and times anywhere: no exception; exactly the good stored."""
    case = next(_case)
    now = datetime.now(UTC)
    bounds = fuzz_store.accounts.config.intake
    events, good = [], set()
    for index, (spoiled, value, when) in enumerate(spoilers):
        message_id = f"c{case}-{index}"
        fields: dict[str, Any] = {
            "platform": "facebook",
            "account": "shop",
            "channel": "dm",
            "thread_id": f"t{case}-{index}",
            "message_id": message_id,
            "author_role": "customer",
            "created_at": now - timedelta(minutes=index),
        }
        fields[spoiled] = value if spoiled != "message_id" else message_id + value
        if when is not None:
            fields["created_at"] = when.replace(tzinfo=UTC)
        event = Event(**fields)
        ids = (event.platform, event.account, event.thread_id, event.message_id)
        earliest = bounds.earliest_for(event.platform)
        if all(map(storable_id, ids)) and earliest <= event.created_at <= now:
            good.add(event.message_id)
        events.append(event)
    result = fuzz_store.ingest(events, seen_at=now)
    assert result.rejected == len(events) - len(good)
    with fuzz_store.engine.connect() as connection:
        rows = connection.execute(
            select(EVENTS.c.message_id, EVENTS.c.text_excerpt, EVENTS.c.thread_url).where(
                EVENTS.c.message_id.like(f"c{case}-%")
            )
        ).all()
    assert {row[0] for row in rows} == good
    for _message_id, excerpt, url in rows:
        assert not has_lone_surrogate(excerpt or "") and storable_id(url or "")
