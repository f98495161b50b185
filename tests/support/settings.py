"""Settings for tests: a database, sample transcripts, the offline model and the embedded queue."""

from __future__ import annotations

from typing import Any

from ytresearch.config import Settings, load_settings


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        environment="test",
        database_url=database_url,
        transcript_source="samples",
        llm_provider="offline",
        queue_backend="embedded",
        db_pool_size=5,
    )
    values.update(overrides)
    return load_settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test to collect
