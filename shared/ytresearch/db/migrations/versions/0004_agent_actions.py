"""agent_actions; session_videos.position and group_label; messages.tool_calls; sessions.tools_mode

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 09:00:00.000000

Written by hand. A new table, and nullable columns added to existing ones: plain ALTERs on
PostgreSQL and on SQLite, so batch mode never rebuilds ``sessions``, ``messages`` or
``session_videos`` (a rebuild drops and re-creates the table, which with SQLite foreign keys on
would cascade into everything hanging off it). The downgrade drops those columns in place for the
same reason (SQLite 3.35+ drops an unindexed, unconstrained column without a rebuild).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED_COLUMNS = (
    ("sessions", sa.Column("tools_mode", sa.String(length=16), nullable=True)),
    ("session_videos", sa.Column("position", sa.Integer(), nullable=True)),
    ("session_videos", sa.Column("group_label", sa.String(length=300), nullable=True)),
    ("messages", sa.Column("tool_calls", sa.JSON(), nullable=True)),
)


def upgrade() -> None:
    op.create_table(
        "agent_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mutating", sa.Boolean(), nullable=False),
        sa.Column("undo", sa.JSON(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_agent_actions_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_actions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_actions")),
    )
    op.create_index(
        "ix_agent_actions_session_created",
        "agent_actions",
        ["session_id", sa.text("created_at DESC"), sa.text("id DESC")],
        unique=False,
    )
    for table, column in ADDED_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(column)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in reversed(ADDED_COLUMNS):
        if sqlite:  # in place: batch mode would rebuild the table (see above)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")
        else:
            op.drop_column(table, column.name)
    op.drop_index("ix_agent_actions_session_created", table_name="agent_actions")
    op.drop_table("agent_actions")
