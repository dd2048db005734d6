"""The procrastinate app the workers share: its connection, its schema, its cron lines."""

from __future__ import annotations

import logging

from procrastinate import App, PsycopgConnector
from procrastinate.schema import SchemaManager
from sqlalchemy import Engine, text

__all__ = ["QUEUE", "build_queue_app", "cron_every", "ensure_queue_schema", "tidy_queue_tables"]

log = logging.getLogger("monitor.cluster")

QUEUE = "replywatch"
_LOCK_INDEX = (
    "CREATE INDEX IF NOT EXISTS replywatch_jobs_waiting_by_lock ON procrastinate_jobs "
    "(lock, priority, id) WHERE status IN ('todo', 'doing')"
)
# Advisory lock key held while procrastinate's schema is applied ("rwjobs").
_SCHEMA_LOCK = 0x72776A6F6273


def build_queue_app(engine: Engine, pool_size: int, idle_transaction_seconds: float) -> App:
    """A procrastinate app on the same PostgreSQL database as the store.

    A worker frozen inside one of procrastinate's transactions holds row locks that stop
    every other worker from finishing its jobs: the server ends such a session after
    ``idle_transaction_seconds`` (the stall time), as it does for the store's sessions.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError("several workers need PostgreSQL: pass --database postgresql://...")
    # libpq wants a plain postgresql:// URL; this string holds the password: never log it.
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    milliseconds = max(1, round(idle_transaction_seconds * 1000))
    options = {"options": f"-c idle_in_transaction_session_timeout={milliseconds}"}
    connector = PsycopgConnector(conninfo=conninfo, min_size=1, max_size=pool_size, kwargs=options)
    return App(connector=connector)


def ensure_queue_schema(engine: Engine) -> bool:
    """Create procrastinate's tables when the database has none; True when it did."""
    with engine.begin() as connection:
        # Workers starting together: one creates the schema, the others then find it.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        exists = connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
        if exists is None:
            # The schema is many statements with $$-quoted bodies: send it as one driver
            # call without parameters, so nothing in it is taken for a placeholder.
            cursor = connection.connection.cursor()
            cursor.execute(SchemaManager.get_schema())
            cursor.close()
            log.info("created the job queue's tables (procrastinate)")
        # Every poll job has its own lock (the account). Fetching a job checks that no other
        # job with its lock runs or waits ahead of it; procrastinate's indexes cannot answer
        # that by lock, so with 10,000 queued jobs each fetch read the whole table (a worker
        # managed a few polls a second). This index answers it by lock.
        connection.execute(text(_LOCK_INDEX))
    return exists is None


# Every poll rewrites a row of each. Left to autovacuum (off on some servers, behind on busy
# ones) their statistics went stale: with 10,000 jobs waiting, procrastinate's fetch sorted
# every waiting job (31 ms) instead of reading one from its index (0.3 ms), and one worker
# started 20 polls a second.
_CHURNING_TABLES = ("procrastinate_jobs", "poll_state")


def tidy_queue_tables(engine: Engine) -> None:
    """VACUUM and ANALYZE the tables every poll rewrites (run by one worker at a time)."""
    statement = text(f"VACUUM (ANALYZE) {', '.join(_CHURNING_TABLES)}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(statement)


def cron_every(seconds: float) -> str:
    """A cron line (procrastinate's, seconds last) firing every ``seconds``."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"* * * * * */{whole}"
    return f"*/{max(1, whole // 60)} * * * *"
