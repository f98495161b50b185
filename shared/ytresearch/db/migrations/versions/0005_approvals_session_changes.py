"""tool_approvals; session_changes; chat_events.type widened to 32 characters

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 20:00:00.000000

Written by hand. Two new tables. ``chat_events.type`` grows from 16 to 32 characters for the
agent's event names (``approval_required`` has 17): on PostgreSQL an ALTER COLUMN TYPE to a longer
varchar rewrites nothing; SQLite rebuilds ``chat_events`` (nothing references it, so the rebuild
cascades nowhere) so that the declared schema matches the models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_approvals",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["chat_requests.id"],
            name=op.f("fk_tool_approvals_request_id_chat_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "call_id", name=op.f("pk_tool_approvals")),
    )
    op.create_table(
        "session_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_changes_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_changes")),
    )
    op.create_index("ix_session_changes_session_id", "session_changes", ["session_id", "id"], unique=False)
    op.create_index("ix_session_changes_created", "session_changes", ["created_at"], unique=False)
    _type_length(16, 32)


def downgrade() -> None:
    _type_length(32, 16)
    op.drop_index("ix_session_changes_created", table_name="session_changes")
    op.drop_index("ix_session_changes_session_id", table_name="session_changes")
    op.drop_table("session_changes")
    op.drop_table("tool_approvals")


def _type_length(old: int, new: int) -> None:
    with op.batch_alter_table("chat_events", schema=None) as batch_op:
        batch_op.alter_column(
            "type", existing_type=sa.String(length=old), type_=sa.String(length=new), existing_nullable=False
        )
