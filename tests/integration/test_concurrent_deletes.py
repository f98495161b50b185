"""Parallel deletes of one thing over real HTTP: exactly one says 204, every other one 404.

Ten clients wait at a barrier, then send the same DELETE to the REST app served by real uvicorn,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from functions.api.app import create_app
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container

CLIENTS = 10
ROUNDS = 5  # a racy delete loses most rounds, not every one: several make a miss unlikely
VIDEO_ID = "SoLarP4nels"


@pytest.fixture
def wide_container(database_url: str) -> Iterator[Container]:
    """A pool with a connection for every client, so all ten deletes can run at once."""
    c = Container(test_settings(database_url, db_pool_size=CLIENTS), queue=RecordingQueue())
    yield c
    c.engine.dispose()


@pytest.fixture
def server(wide_container: Container) -> Iterator[LoopbackServer]:
    with serve(create_app(wide_container)) as s:
        yield s


def session_with_a_video(container: Container) -> tuple[str, str]:
    """A user's API key and one of their sessions, with a video linked to it."""
    user, key = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "doomed")
        repo.get_or_add_video(VIDEO_ID)
        repo.link_video(session.id, VIDEO_ID, None)
        return key, str(session.id)


def delete_at_once(base_url: str, key: str, path: str) -> list[httpx.Response]:
    """Sends ``DELETE path`` from CLIENTS connected clients released together by a barrier."""
    barrier = threading.Barrier(CLIENTS)

    def one(_: int) -> httpx.Response:
        with client_for(base_url, key) as client:
            client.get("/health")  # connected before the barrier: the DELETEs leave together
            barrier.wait(timeout=30)
            return client.delete(path)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def statuses_and_codes(responses: list[httpx.Response]) -> list[tuple[int, str | None]]:
    return sorted((r.status_code, r.json()["error"]["code"] if r.content else None) for r in responses)


def test_parallel_session_deletes_succeed_exactly_once(
    server: LoopbackServer, wide_container: Container
) -> None:
    for _ in range(ROUNDS):
        key, sid = session_with_a_video(wide_container)

        responses = delete_at_once(server.base_url, key, f"/v1/sessions/{sid}")

        assert statuses_and_codes(responses) == [(204, None)] + [(404, "SESSION_NOT_FOUND")] * (CLIENTS - 1)
        with wide_container.store.transaction() as repo:
            assert not repo.session_exists(uuid.UUID(sid))


def test_parallel_video_removals_succeed_exactly_once(
    server: LoopbackServer, wide_container: Container
) -> None:
    for _ in range(ROUNDS):
        key, sid = session_with_a_video(wide_container)

        responses = delete_at_once(server.base_url, key, f"/v1/sessions/{sid}/videos/{VIDEO_ID}")

        assert statuses_and_codes(responses) == [(204, None)] + [(404, "VIDEO_NOT_FOUND")] * (CLIENTS - 1)
        with wide_container.store.transaction() as repo:
            assert not repo.is_linked(uuid.UUID(sid), VIDEO_ID)
