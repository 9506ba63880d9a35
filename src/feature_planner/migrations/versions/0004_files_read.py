"""The files each run read, for its follow-ups.

``job_history`` gains ``files_read``: the paths a run read (its ``Read`` activity), recorded
when it ends, so that a follow-up on any replica starts from them without reading the
repository again from scratch.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("job_history", sa.Column("files_read", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    op.drop_column("job_history", "files_read")
