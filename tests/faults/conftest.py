"""The fault suite's world: its own throwaway PostgreSQL (tests stop and start it), the scripted fake
Claude, and one real server process (`python -m local_run`: REST and streaming routes
in one uvicorn) for the whole package, started again only when a test killed or wedged it.

Every test gets a health poller on that server and a fresh user; it asserts at the end that
/health always answered within 1 s and that a new chat completes after the fault.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic
from tests.faults.steps import (
    CHAT_POSTS_PER_MINUTE,
    MAX_ACTIVE,
    REPLY_SAVE_TIMEOUT,
    STALE_AFTER,
    ScriptedClaude,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess
from tests.support.postgres import PostgresServer
from tests.support.processes import service_env
from tests.support.settings import test_settings
from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.security import generate_api_key
from ytresearch.services.users import create_user


@pytest.fixture(scope="package")
def fault_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL of the package's own: tests take it away, so it is not the run's shared one."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def fault_db_url(fault_pg: PostgresServer) -> str:
    url = fault_pg.create_database("ytr_faults")
    upgrade_to_head(test_settings(url))
    return url


@pytest.fixture(scope="package")
def domain(fault_db_url: str) -> Iterator[Container]:
    """The domain package on the same database, for what an operator does outside HTTP (users)."""
    c = Container(test_settings(fault_db_url))
    yield c
    c.engine.dispose()


@pytest.fixture(scope="package")
def fake_model() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="package")
def model(fake_model: FakeAnthropic) -> ScriptedClaude:
    return ScriptedClaude(fake_model)


@pytest.fixture(scope="package")
def server_env(fault_db_url: str, fake_model: FakeAnthropic) -> dict[str, str]:
    return service_env(
        fault_db_url,
        fake_model.base_url,
        DEFAULT_API_KEY,
        YTR_STREAM_STALE_AFTER_SECONDS=STALE_AFTER,
        YTR_STREAM_POLL_SECONDS=0.05,
        YTR_STREAM_PING_SECONDS=1,  # quiet streams (a database outage) still get a frame a second
        YTR_REPLY_SAVE_TIMEOUT_SECONDS=REPLY_SAVE_TIMEOUT,
        YTR_MAX_ACTIVE_REQUESTS_PER_USER=MAX_ACTIVE,
        YTR_CHAT_POSTS_PER_MINUTE=CHAT_POSTS_PER_MINUTE,
        YTR_DB_POOL_SIZE=10,
        # The local runner makes a dev user; given a key it writes no key file into the tree.
        YTR_DEV_API_KEY=generate_api_key(),
    )


@pytest.fixture(scope="package")
def server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServiceProcess]:
    with LocalServiceProcess(server_env, log_dir=tmp_path_factory.mktemp("fault-logs")).running() as proc:
        yield proc


def _database_answers(url: str) -> bool:
    import pg8000.native
    from sqlalchemy.engine import make_url

    u = make_url(url)
    try:
        pg8000.native.Connection("postgres", host=u.host, port=u.port, database=u.database, timeout=2).close()
        return True
    except Exception:
        return False


def _answers_health(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def service(server: LocalServiceProcess, fault_pg: PostgresServer, fault_db_url: str) -> LocalServiceProcess:
    """The package's server, healthy: the database is brought back if a failed test left it down,
    and a server that a test killed, or left wedged, is started again."""
    if not _database_answers(fault_db_url):
        with contextlib.suppress(Exception):
            fault_pg.start_again()
    if server.alive and not _answers_health(server.base_url):
        with contextlib.suppress(Exception):
            server.wait_healthy(timeout=5)
    if not server.alive or not _answers_health(server.base_url):
        if server.alive:
            server.kill()  # wedged: a blocked event loop ignores SIGINT
        server.start()
    return server


@pytest.fixture
def health(service: LocalServiceProcess) -> Iterator[HealthPoller]:
    poller = HealthPoller(service.base_url).start()
    yield poller
    poller.stop()


@pytest.fixture
def user_key(domain: Container) -> str:
    """A fresh user per test: limits are per user, and no test inherits another's requests."""
    return create_user(domain.store, f"fault-{uuid.uuid4().hex[:10]}@example.com")[1]


@pytest.fixture
def api(service: LocalServiceProcess, user_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": user_key}, timeout=10) as client:
        yield client


@pytest.fixture
def log_mark(service: LocalServiceProcess) -> int:
    """Where the server's log stood when the test began."""
    return len(service.log())
