"""What runs cost, and the GitHub issues filed from their suggestions.

``job_history`` gains each finished run's ``tokens`` (input + output) and ``cost_usd`` (where
the provider reports one), and an index to sum a user's recent runs (the daily budget).
``issue_links`` remembers the issue filed for each suggestion, so that filing it again
returns the same issue.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("job_history", sa.Column("tokens", sa.BigInteger, nullable=True))
    op.add_column("job_history", sa.Column("cost_usd", sa.Float, nullable=True))
    op.create_index("ix_job_history_user_finished", "job_history", ["user_id", "finished_at_ms"])
    op.create_table(
        "issue_links",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("suggestion_index", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),  # None: being filed
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("issue_links")
    op.drop_index("ix_job_history_user_finished", table_name="job_history")
    op.drop_column("job_history", "cost_usd")
    op.drop_column("job_history", "tokens")
