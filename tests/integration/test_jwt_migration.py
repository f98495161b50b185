"""Migration 0002 (users.external_id) on a database that already has users, keys and sessions:
nothing is lost going up or down, on SQLite (foreign keys on) and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from ytresearch.db.engine import make_engine
from ytresearch.db.migrations import alembic_config, current_revision


def _seed_at_0001(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "0001")
    user_id, session_id = uuid.uuid4().hex, uuid.uuid4().hex
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            user_id, session_id = str(uuid.UUID(user_id)), str(uuid.UUID(session_id))
        conn.execute(
            text(
                "INSERT INTO users (id, email, created_at) VALUES (:id, 'old@example.com', CURRENT_TIMESTAMP)"
            ),
            {"id": user_id},
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) "
                "VALUES (:id, :user, :hash, 'ytr_abc', CURRENT_TIMESTAMP)"
            ),
            {
                "id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4()),
                "user": user_id,
                "hash": "a" * 64,
            },
        )
        conn.execute(
            text(
                "INSERT INTO sessions (id, user_id, title, created_at, updated_at) "
                "VALUES (:id, :user, 'kept', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": session_id, "user": user_id},
        )


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("users", "api_keys", "sessions")
        )


def _up_and_down(engine: Engine) -> None:
    _seed_at_0001(engine)
    cfg = alembic_config(engine)

    command.upgrade(cfg, "0002")

    assert current_revision(engine) == "0002"
    assert _counts(engine) == (1, 1, 1)
    columns = {c["name"]: c for c in inspect(engine).get_columns("users")}
    assert columns["external_id"]["nullable"] is True
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("users")}
    assert indexes["ix_users_external_id"]["unique"]
    with engine.begin() as conn:  # two users without an identity: NULLs do not collide
        conn.execute(
            text(
                "INSERT INTO users (id, email, created_at) VALUES (:id, 'new@example.com', CURRENT_TIMESTAMP)"
            ),
            {"id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4())},
        )
        conn.execute(text("UPDATE users SET external_id = 'sub-1' WHERE email = 'old@example.com'"))

    command.downgrade(cfg, "0001")

    assert current_revision(engine) == "0001"
    assert _counts(engine) == (2, 1, 1)
    assert "external_id" not in {c["name"] for c in inspect(engine).get_columns("users")}
    command.upgrade(cfg, "head")
    assert _counts(engine) == (2, 1, 1)


def test_0002_keeps_every_row_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(test_settings(f"sqlite:///{tmp_path}/m.db"))
    try:
        _up_and_down(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_0002_keeps_every_row_on_postgres(pg_server: PostgresServer) -> None:
    url = pg_server.create_database(f"mig2_{uuid.uuid4().hex[:8]}")
    engine = make_engine(test_settings(url))
    try:
        _up_and_down(engine)
    finally:
        engine.dispose()
