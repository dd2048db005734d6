"""replywatch_account_state: one series per account, and ``stale`` when nobody polls it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from connectors.base import Event
from monitor.config.loading import Config
from monitor.core.polls import AccountState, PollOutcome, PollRecord
from monitor.export.cluster_health import ClusterHealth
from monitor.export.metrics import Metrics
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor
from tests.cluster_rows import record_cluster_polls

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
INTERVAL = 60.0


def states(registry: CollectorRegistry, account: str) -> dict[str, float]:
    """The account's replywatch_account_state series, by state label."""
    return {
        sample.labels["state"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "replywatch_account_state" and sample.labels["account"] == account
    }


def poll(account: str, at: datetime, outcome: PollOutcome, state: AccountState) -> PollRecord:
    """A finished poll of a Facebook account."""
    return PollRecord("facebook", account, outcome, at, 0.2, 1, 0, 0, None, None, state)


def test_the_state_is_one_series_that_moves() -> None:
    """Starting, then ok, then failing: always exactly one series, the current state's."""
    metrics = Metrics()
    metrics.prepare_account("facebook", "shop", INTERVAL)
    assert states(metrics.registry, "shop") == {"starting": 1.0}
    metrics.record_poll(poll("shop", NOW, PollOutcome.SUCCESS, AccountState.OK))
    assert states(metrics.registry, "shop") == {"ok": 1.0}
    metrics.record_poll(poll("shop", NOW, PollOutcome.CONNECTION, AccountState.FAILING))
    assert states(metrics.registry, "shop") == {"failing": 1.0}


def test_an_account_nobody_polls_turns_stale_and_back() -> None:
    """No poll ended for three intervals: stale; the next poll shows its own state again."""
    metrics = Metrics()
    for account in ("shop", "broken", "paused"):
        metrics.prepare_account("facebook", account, INTERVAL)
    metrics.record_poll(poll("shop", NOW, PollOutcome.SUCCESS, AccountState.OK))
    metrics.record_poll(poll("broken", NOW, PollOutcome.CONNECTION, AccountState.FAILING))
    metrics.record_poll(poll("paused", NOW, PollOutcome.AUTH, AccountState.AUTH_FAILED))
    now = NOW.timestamp()
    metrics.mark_stale(now + 3 * INTERVAL)  # exactly three intervals: not yet
    assert states(metrics.registry, "shop") == {"ok": 1.0}
    metrics.mark_stale(now + 3 * INTERVAL + 1)
    assert states(metrics.registry, "shop") == {"stale": 1.0}
    # A failing or paused account says why it is quiet; stale is for a silent poller.
    assert states(metrics.registry, "broken") == {"failing": 1.0}
    assert states(metrics.registry, "paused") == {"auth_failed": 1.0}
    later = NOW + timedelta(seconds=4 * INTERVAL)
    metrics.record_poll(poll("shop", later, PollOutcome.SUCCESS, AccountState.OK))
    metrics.mark_stale(later.timestamp() + 1)
    assert states(metrics.registry, "shop") == {"ok": 1.0}


def test_an_account_never_polled_counts_from_the_first_round() -> None:
    """Prepared but never polled (the scheduler never ran it): stale three intervals later."""
    metrics = Metrics()
    metrics.prepare_account("facebook", "new", INTERVAL)
    now = NOW.timestamp()
    metrics.mark_stale(now)
    metrics.mark_stale(now + 3 * INTERVAL)
    assert states(metrics.registry, "new") == {"starting": 1.0}
    metrics.mark_stale(now + 3 * INTERVAL + 1)
    assert states(metrics.registry, "new") == {"stale": 1.0}


def test_serve_shows_stale_for_accounts_no_worker_polls(sqlite_url: str) -> None:
    """The cluster's ok accounts whose last poll is three intervals old read stale."""
    engine = open_engine(sqlite_url)
    directory = AccountDirectory(Config.empty())
    Ingestor(engine, directory).ingest(
        [Event("facebook", "shop", "dm", "t", "q", "customer", NOW - timedelta(hours=1))]
    )
    record_cluster_polls(
        engine,
        NOW,
        state="ok",
        failures=0,
        duration=0.1,
        quota=0.1,
        stored=1,
        missed=0,
        successes=1,
    )
    clock = [NOW + timedelta(seconds=3 * INTERVAL)]
    health = ClusterHealth(engine, {"shop": INTERVAL}, clock=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(health)
    health.refresh()
    assert states(registry, "shop") == {"ok": 1.0}
    clock[0] += timedelta(seconds=1)
    health.refresh()
    assert states(registry, "shop") == {"stale": 1.0}
    engine.dispose()
