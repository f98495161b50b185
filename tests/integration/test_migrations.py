"""Alembic is the only way the schema changes: the migrated schema must equal the models."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from ytresearch.db.engine import make_engine
from ytresearch.db.migrations import current_revision, head_revision, upgrade_to_head
from ytresearch.db.models import Base


def _diff(url: str) -> list[object]:
    engine = make_engine(test_settings(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
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
