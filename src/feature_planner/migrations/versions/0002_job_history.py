"""Job history: every job's input, state, result and times, kept for the history period.

Also drops the pre-Alembic ``schema_version`` table: ``alembic_version`` says it now.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "job_history",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("started_at_ms", sa.BigInteger, nullable=True),
        sa.Column("finished_at_ms", sa.BigInteger, nullable=True),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("last_event_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("suggestions_count", sa.Integer, nullable=True),
        sa.Column("parent_job_id", sa.String(36), nullable=True),
        sa.Column("shares_revoked_at_ms", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_job_history_user_created", "job_history", ["user_id", "created_at_ms", "job_id"]
    )
    op.create_index("ix_job_history_created", "job_history", ["created_at_ms"])
    if sa.inspect(op.get_bind()).has_table("schema_version"):
        op.drop_table("schema_version")


def downgrade() -> None:
    op.drop_index("ix_job_history_created", table_name="job_history")
    op.drop_index("ix_job_history_user_created", table_name="job_history")
    op.drop_table("job_history")
