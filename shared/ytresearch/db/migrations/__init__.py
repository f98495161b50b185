"""Alembic migrations, shipped inside the package so Lambdas and the container can run them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ytresearch.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_to_head(settings: Settings | None = None, engine: Engine | None = None) -> str:
    """Apply every pending migration; return the head revision. Safe to run on every deploy."""
    from ytresearch.db.engine import make_engine

    own_engine = engine is None
    engine = engine or make_engine(settings or get_settings())
    try:
        cfg = alembic_config(engine)
        command.upgrade(cfg, "head")
        return head_revision()
    finally:
        if own_engine:
            engine.dispose()


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
