"""Fixtures several integration modules share: the all-in-one app on loopback with fake Claude and
a user, and a PostgreSQL-backed container with a user's key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_run.app import create_local_app
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings


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
def user_key(app_container: Container) -> str:
    return make_user(app_container)[1]


@pytest.fixture
def db(pg_url: str) -> Iterator[Container]:
    """The domain on PostgreSQL only (what several processes share)."""
    c = Container(test_settings(pg_url))
    yield c
    c.engine.dispose()


@pytest.fixture
def key(db: Container) -> str:
    return make_user(db)[1]
