"""Persistence: SQLAlchemy 2.0 models, engine factory and Alembic migrations."""
