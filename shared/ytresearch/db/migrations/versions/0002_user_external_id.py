"""users.external_id: the identity provider's subject for token sign-in

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000

Written by hand. Adding a nullable column and a unique index are plain ALTERs on PostgreSQL and
on SQLite, so batch mode never rebuilds ``users`` (a rebuild would drop and re-create the table,
which with SQLite foreign keys on would cascade into every user's keys and sessions).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_external_id"), ["external_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_external_id"))
    if op.get_bind().dialect.name == "sqlite":
        # Batch mode would rebuild the table for a dropped column (see above); SQLite 3.35+ drops
        # an unindexed, unconstrained column in place.
        op.execute("ALTER TABLE users DROP COLUMN external_id")
    else:
        op.drop_column("users", "external_id")
