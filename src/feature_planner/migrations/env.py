"""Alembic's entry point: migrate the connection ``Database`` opened, inside its transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from feature_planner.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "feature_planner.migrations run through Database.start(), which passes its connection"
    )
# The connection is already in a transaction (holding the migration lock), so Alembic's
# begin_transaction() opens none of its own: every step commits or rolls back with it.
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
