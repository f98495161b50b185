"""Fixtures several integration modules share: the all-in-one app on loopback with fake Claude and
a user, and a PostgreSQL-backed container with a user's key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from local_run.app import create_local_app
from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic
from tests.support.clients import client_for
from tests.support.postgres import PostgresServer
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.tls import CertificateSet, make_certificates, running_tls_postgres
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.llm import AnthropicChatModel


@pytest.fixture
def app_container(settings: Settings, claude: Any) -> Iterator[Container]:
    """The domain on the run's database (SQLite and PostgreSQL), with fake Claude."""
    c = Container(settings, queue=RecordingQueue(), chat_model=claude)
    yield c
    c.engine.dispose()


@pytest.fixture
def server(app_container: Container) -> Iterator[LoopbackServer]:
    """REST and streaming routes in one uvicorn on loopback."""
    with serve(create_local_app(app_container)) as s:
        yield s


@pytest.fixture
def agent_overrides() -> dict[str, Any]:
    """Settings an agent module changes for its tests (override the fixture in the module)."""
    return {"agent_ingest_wait_seconds": 0}


@pytest.fixture
def agent_container(settings: Settings, claude: Any, agent_overrides: dict[str, Any]) -> Iterator[Container]:
    """The domain with the research agent (a recording ingest queue) and fake Claude."""
    c = Container(settings.model_copy(update=agent_overrides), queue=RecordingQueue(), chat_model=claude)
    yield c
    c.engine.dispose()


@pytest.fixture
def agent_app(agent_container: Container) -> Iterator[LoopbackServer]:
    with serve(create_local_app(agent_container)) as s:
        yield s


@pytest.fixture
def agent_api(agent_app: LoopbackServer, agent_container: Container) -> httpx.Client:
    """A new user's client for the agent app."""
    return client_for(agent_app.base_url, make_user(agent_container)[1])


@pytest.fixture
def user_key(app_container: Container) -> str:
    return make_user(app_container)[1]


@pytest.fixture
def fake(fake_claude: FakeAnthropic) -> FakeAnthropic:
    """The shared fake server (tests/conftest.py), emptied for this test."""
    return fake_claude


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every retry delay the Claude adapter asks for (and do not actually wait)."""
    from ytresearch.llm import anthropic_model

    recorded: list[float] = []

    async def record(delay: float) -> None:
        recorded.append(delay)
        await asyncio.sleep(0)

    monkeypatch.setattr(anthropic_model, "_sleep", record)
    return recorded


@pytest.fixture
async def model(fake: FakeAnthropic) -> AsyncIterator[AnthropicChatModel]:
    """The Claude adapter (real SDK) on the fake server, with near-instant retry backoff."""
    built = AnthropicChatModel(
        api_key=DEFAULT_API_KEY,
        model="claude-test-model",
        base_url=fake.base_url,
        max_retries=3,
        backoff_base=0.001,
        backoff_max=0.01,
    )
    yield built
    await built.aclose()


@pytest.fixture
def db(pg_url: str) -> Iterator[Container]:
    """The domain on PostgreSQL only (what several processes share)."""
    c = Container(test_settings(pg_url))
    yield c
    c.engine.dispose()


@pytest.fixture
def key(db: Container) -> str:
    return make_user(db)[1]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """A CA, a server certificate for localhost and a second CA that did not sign it."""
    return make_certificates(tmp_path_factory.mktemp("tls"), hostnames=("localhost",))


@pytest.fixture(scope="module")
def tls_server(certificates: CertificateSet) -> Iterator[PostgresServer]:
    """A PostgreSQL server that speaks TLS with ``certificates``' server certificate."""
    with running_tls_postgres(certificates) as server:
        yield server
