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


# The most the windows backfill may add to an upgrade (the migrate function has 300 s by default);
# what is left is built by the next upgrade, or by `ytr-admin backfill-windows`.
BACKFILL_SECONDS = 120.0


def upgrade_to_head(
    settings: Settings | None = None, engine: Engine | None = None, *, backfill: bool = True
) -> str:
    """Apply every pending migration, then build the transcript windows that are missing (one
    query when none are; ``backfill=False`` skips it); return the head revision. Safe to run on
    every deploy."""
    from ytresearch.db.engine import make_engine, make_session_factory

    own_engine = engine is None
    engine = engine or make_engine(settings or get_settings())
    try:
        cfg = alembic_config(engine)
        command.upgrade(cfg, "head")
        if backfill:
            from ytresearch.repository import Store
            from ytresearch.services.windows import backfill_windows

            backfill_windows(Store(make_session_factory(engine)), time_limit=BACKFILL_SECONDS)
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
