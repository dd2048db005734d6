"""Several workers on one PostgreSQL database share the accounts (``replywatch worker``).

procrastinate hands out the polls: a periodic tick, deferred once per tick for the whole
cluster, defers one poll job per due account with a per-account lock; any worker runs it.
``poll_state`` (shared by all workers) says when each account is due and which job owns it.
``replywatch serve`` processes take webhooks and serve ``/metrics`` from the database.
"""
