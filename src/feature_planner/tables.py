"""The SQL tables, as the code reads and writes them today: one ``MetaData`` for every store.

The migrations (``migrations/versions``) build the same tables step by step, each step frozen
as it was written; this is the schema at head, which the stores query and Alembic's
``--autogenerate`` compares a database against.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["custom_agents", "issue_links", "job_history", "metadata"]

metadata = MetaData()

custom_agents = Table(
    "custom_agents",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(500), nullable=False),
    Column("focus", String(500), nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("temperature", Float, nullable=False),
    Column("tools", JSON, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

job_history = Table(
    "job_history",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", JSON, nullable=False),  # the create body, in wire form
    Column("created_at_ms", BigInteger, nullable=False),
    Column("started_at_ms", BigInteger, nullable=True),
    Column("finished_at_ms", BigInteger, nullable=True),
    Column("provider", String(100), nullable=True),
    Column("model", String(200), nullable=True),
    Column("last_event_id", Integer, nullable=False, default=0, server_default="0"),
    # none_as_null: a missing result is SQL NULL, not the JSON text 'null'.
    Column("result", JSON(none_as_null=True), nullable=True),
    Column("error", JSON(none_as_null=True), nullable=True),
    Column("suggestions_count", Integer, nullable=True),
    Column("parent_job_id", String(36), nullable=True),
    Column("shares_revoked_at_ms", BigInteger, nullable=True),
    Column("tokens", BigInteger, nullable=True),  # input + output, once finished
    Column("cost_usd", Float, nullable=True),  # where the provider reports a cost
    # The paths the run read (its Read activity), for a follow-up to start from.
    Column("files_read", JSON(none_as_null=True), nullable=True),
    # A user's page of runs, newest first: keyset paging on (created_at_ms, job_id).
    Index("ix_job_history_user_created", "user_id", "created_at_ms", "job_id"),
    # Pruning by age.
    Index("ix_job_history_created", "created_at_ms"),
    # A user's tokens of the last 24 hours (the daily budget).
    Index("ix_job_history_user_finished", "user_id", "finished_at_ms"),
)

# The GitHub issue filed for a suggestion: filing it again returns this one.
issue_links = Table(
    "issue_links",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("suggestion_index", Integer, primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("repository", String(200), nullable=False),  # owner/name
    Column("number", Integer, nullable=True),  # None while it is being filed
    Column("url", String(500), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
)
