"""Alembic is the only way the schema changes: the migrated schema must equal the models."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, inspect

from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from ytresearch.db.engine import make_engine
from ytresearch.db.migrations import current_revision, head_revision, upgrade_to_head
from ytresearch.db.models import Base

# The transcript index exists on one backend each, so it is not in the models (see
# db/models.py TranscriptWindow and migration 0006); everything else must match.
PG_ONLY_COLUMNS = {("transcript_windows", "tsv")}  # the tsvector, filled by repository.windows
PG_ONLY_INDEXES = {"ix_transcript_windows_tsv"}  # its GIN index
SQLITE_FTS_PREFIX = "transcript_windows_fts"  # the FTS5 table and its shadow tables (_data, _idx...)


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Reflected names to compare: all but SQLite's FTS5 tables."""
    return not (type_ == "table" and name is not None and name.startswith(SQLITE_FTS_PREFIX))


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Objects to compare: all but PostgreSQL's tsvector column and its index, found in the
    database only (a model declaring either would still be compared)."""
    if not reflected or compare_to is not None:
        return True
    if isinstance(obj, Column):
        return (obj.table.name, name) not in PG_ONLY_COLUMNS
    return not (type_ == "index" and name in PG_ONLY_INDEXES)


def _diff(url: str) -> list[object]:
    engine = make_engine(test_settings(url))
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_name": _include_name, "include_object": _include_object}
            ctx = MigrationContext.configure(conn, opts=opts)
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migrations_build_the_models_schema_on_empty_postgres(pg_server: PostgresServer) -> None:
    url = pg_server.create_database(f"mig_{uuid.uuid4().hex[:8]}")
    assert upgrade_to_head(test_settings(url)) == head_revision()
    assert _diff(url) == []
    engine = make_engine(test_settings(url))
    assert current_revision(engine) == head_revision()
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("messages")}
    assert "ix_messages_session_created" in indexes  # history pagination is served by an index
    engine.dispose()
    assert upgrade_to_head(test_settings(url)) == head_revision()  # re-running is a no-op


def test_migrations_build_the_models_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade_to_head(test_settings(url))
    assert _diff(url) == []
