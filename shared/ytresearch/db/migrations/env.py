"""Alembic environment: the engine comes from the caller (upgrade_to_head), never from a .ini."""

from alembic import context

from ytresearch.db.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
        compare_type=True,
    )
    context.run_migrations()
