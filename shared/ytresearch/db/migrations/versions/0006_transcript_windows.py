"""transcript_windows and its full-text index; messages.citations

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14 09:00:00.000000

Written by hand. A new table, ``transcript_windows`` (``ytresearch.windows``: a transcript in
overlapping runs of caption lines), and its full-text index, which differs by backend and so is
not in the models (tests/integration/test_migrations.py leaves it out of the comparison):

- PostgreSQL: a ``tsv tsvector`` column, which ``repository.windows`` fills on insert with the
  text search configuration of the transcript's language, and a GIN index on it.
- SQLite: an FTS5 table over ``text`` with ``transcript_windows`` as its external content
  (``rowid`` = ``id``), kept in step by triggers, so every write path (and ON DELETE CASCADE from
  ``videos``) updates it. A batch ALTER of ``transcript_windows`` would rebuild the table and drop
  these triggers with it: a later migration doing one must create them again and run the FTS5
  ``'rebuild'`` command.

The windows are not built here (a migration stays schema only): ``upgrade_to_head`` builds them for
the ready videos that have none (``services.windows.backfill_windows``).

``messages.citations`` is a nullable column added in place, a plain ALTER on both (as in 0004; its
downgrade drops it in place on SQLite for the same reason).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# porter: English stemming ("panels" finds "panel"), over unicode61 words with accents folded. The
# local database's index; deployments use PostgreSQL's per-language configurations.
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE transcript_windows_fts USING fts5(text, content='transcript_windows', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
)
SQLITE_TRIGGERS = {
    "transcript_windows_fts_insert": (
        "CREATE TRIGGER transcript_windows_fts_insert AFTER INSERT ON transcript_windows BEGIN "
        "INSERT INTO transcript_windows_fts (rowid, text) VALUES (new.id, new.text); END"
    ),
    "transcript_windows_fts_delete": (
        "CREATE TRIGGER transcript_windows_fts_delete AFTER DELETE ON transcript_windows BEGIN "
        "INSERT INTO transcript_windows_fts (transcript_windows_fts, rowid, text) "
        "VALUES ('delete', old.id, old.text); END"
    ),
    "transcript_windows_fts_update": (
        "CREATE TRIGGER transcript_windows_fts_update AFTER UPDATE OF text ON transcript_windows BEGIN "
        "INSERT INTO transcript_windows_fts (transcript_windows_fts, rowid, text) "
        "VALUES ('delete', old.id, old.text); "
        "INSERT INTO transcript_windows_fts (rowid, text) VALUES (new.id, new.text); END"
    ),
}


def upgrade() -> None:
    op.create_table(
        "transcript_windows",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("video_id", sa.String(length=11), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_seconds", sa.Double(), nullable=False),
        sa.Column("end_seconds", sa.Double(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_transcript_windows_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_windows")),
        # Also the index of a video's windows (deletes, reads in order, the cascade).
        sa.UniqueConstraint("video_id", "seq", name=op.f("uq_transcript_windows_video_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("transcript_windows", sa.Column("tsv", postgresql.TSVECTOR(), nullable=True))
        op.create_index("ix_transcript_windows_tsv", "transcript_windows", ["tsv"], postgresql_using="gin")
    else:
        op.execute(SQLITE_FTS)
        for trigger in SQLITE_TRIGGERS.values():
            op.execute(trigger)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("citations", sa.JSON(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE messages DROP COLUMN citations")  # in place: see 0004
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE transcript_windows_fts")
    else:
        op.drop_column("messages", "citations")
        op.drop_index("ix_transcript_windows_tsv", table_name="transcript_windows")
    op.drop_table("transcript_windows")
