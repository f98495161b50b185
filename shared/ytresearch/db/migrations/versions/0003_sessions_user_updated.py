"""sessions(user_id, updated_at): per-minute write limits read only recently active sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 07:00:00.000000

Written by hand. Creating an index is a plain CREATE INDEX on PostgreSQL and SQLite (batch mode
does not rebuild the table for it).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_user_updated", ["user_id", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_user_updated")
