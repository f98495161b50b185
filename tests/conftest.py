"""Shared fixtures: databases (SQLite and a real PostgreSQL), containers, users and the fake Claude.
The helpers they use live in tests/support."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic
from tests.support.postgres import PostgresServer
from tests.support.queue import RecordingQueue
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import DEFAULT_MODEL, Settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.db.models import Base
from ytresearch.services.users import AuthUser


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_database(pg_server: PostgresServer) -> str:
    """One migrated database for the run; tests empty its tables (faster than one DB each)."""
    url = pg_server.create_database("ytr_test")
    upgrade_to_head(test_settings(url))
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ytr.db"
        upgrade_to_head(test_settings(url))
        return url
    url = str(request.getfixturevalue("pg_database"))
    _truncate_all(url)
    return url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """PostgreSQL only (for behaviour that SQLite cannot show)."""
    _truncate_all(pg_database)
    return pg_database


def _truncate_all(url: str) -> None:
    from ytresearch.db.engine import make_engine

    engine = make_engine(test_settings(url))
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return test_settings(database_url)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = Container(settings, queue=RecordingQueue())
    yield c
    c.engine.dispose()


@pytest.fixture
def alice(container: Container) -> tuple[AuthUser, str]:
    return make_user(container, "alice@example.com")


@pytest.fixture
def bob(container: Container) -> tuple[AuthUser, str]:
    return make_user(container, "bob@example.com")


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, like the services."""
    return "asyncio"


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_claude(fake_anthropic_server: FakeAnthropic) -> FakeAnthropic:
    """The protocol-faithful Anthropic server, emptied for this test."""
    fake_anthropic_server.reset()
    fake_anthropic_server.responder = None
    fake_anthropic_server.chunks_per_second = None
    return fake_anthropic_server


@pytest.fixture
def claude(fake_claude: FakeAnthropic) -> Any:
    """The real Claude adapter (real SDK) pointed at the fake server, with fast retries."""
    from ytresearch.llm import AnthropicChatModel

    return AnthropicChatModel(
        api_key=DEFAULT_API_KEY,
        model=DEFAULT_MODEL,
        base_url=fake_claude.base_url,
        max_retries=3,
        backoff_base=0.01,
        backoff_max=0.05,
    )
