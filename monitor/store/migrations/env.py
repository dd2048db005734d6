"""Alembic environment: migrations run on the connection replywatch hands over at start."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from monitor.store.models import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic` run by hand: use the URL from the ini or -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(str(url))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
