"""Regression tests for stream defects found under faults and load: a reconnect after the end, a
session deleted while its reply streams, and parallel chat starts racing the active-request limit.

The first two run against a service process (a regression freezes that process, not the test run).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import pytest
import websockets

from local_run.app import create_local_app
from streaming_service.app import create_app
from streaming_service.chat_requests import ChatRequestManager
from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.postgres import running_postgres
from tests.support.processes import ServiceProcess, service_env
from tests.support.queue import RecordingQueue
from tests.support.server import serve
from tests.support.settings import test_settings
from tests.support.sse import read_stream, text_of
from tests.support.users import make_user
from ytr.sse import SSEEvent
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.events import StreamEvent
from ytresearch.llm import OfflineChatModel
from ytresearch.ports import ModelEvent, ModelRequest, TextDelta
from ytresearch.services.sessions import create_session, delete_session
from ytresearch.services.users import AuthUser, authenticate

ANSWER = "Panels turn light into current. " * 6


@pytest.fixture(scope="module")
def process(
    pg_database: str, fake_anthropic_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = service_env(pg_database, fake_anthropic_server.base_url, DEFAULT_API_KEY)
    proc = ServiceProcess(env, log_dir=tmp_path_factory.mktemp("logs"))
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.kill()  # a frozen process ignores SIGINT


@pytest.fixture
def service(process: ServiceProcess, pg_url: str, fake_claude: FakeAnthropic) -> ServiceProcess:
    if process.proc is None or process.proc.poll() is not None:
        process.start()
    return process


def owner(db: Container, key: str) -> AuthUser:
    return authenticate(db.store, key)


def new_session(db: Container, key: str) -> uuid.UUID:
    return create_session(db.store, db.settings, owner(db, key), "t").id


def health_answers(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def chat(api: httpx.Client, sid: uuid.UUID, message: str = "q") -> list[SSEEvent]:
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": message})
    assert started.status_code == 201, started.text
    return read_stream(api, "GET", started.json()["stream_url"])[1]


# ------------------------------------------------------------------ reconnect after the end


@pytest.mark.postgres
def test_reconnect_at_and_after_the_end_gets_the_end_again_and_never_freezes_the_server(
    service: ServiceProcess, db: Container, key: str, fake_claude: FakeAnthropic
) -> None:
    # Given a reply that just finished (still in the server's memory)
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=5))
    api = client_for(service.base_url, key)
    api.timeout = httpx.Timeout(5)
    started = api.post(f"/v1/sessions/{new_session(db, key)}/chat", json={"message": "q"}).json()
    _, events, _ = read_stream(api, "GET", started["stream_url"])
    terminal = events[-1]
    assert terminal.event == "complete" and terminal.id is not None
    last = int(terminal.id)
    for cursor in (last, last + 1):
        # When the client reconnects with the last id it has (or one past it)
        try:
            _, again, _ = read_stream(
                api, "GET", started["stream_url"], headers={"Last-Event-ID": str(cursor)}
            )
        except httpx.TimeoutException:
            again = []
        # Then it gets the end again, and the server keeps answering
        assert [(e.event, e.id, e.json()) for e in again] == [(terminal.event, terminal.id, terminal.json())]
        assert health_answers(service.base_url)


# ------------------------------------------------------------------ a session deleted mid-stream


@pytest.mark.postgres
def test_deleting_a_session_mid_stream_ends_its_reply_and_later_replies_are_unharmed(
    service: ServiceProcess, db: Container, key: str, fake_claude: FakeAnthropic
) -> None:
    # Given a reply streaming slowly in a session
    fake_claude.enqueue(Reply(text="slow words " * 200, chunk_size=5, delay_per_chunk=0.02))
    api = client_for(service.base_url, key)
    api.timeout = httpx.Timeout(15)
    doomed = new_session(db, key)
    started = api.post(f"/v1/sessions/{doomed}/chat", json={"message": "q"}).json()
    _, first, _ = read_stream(api, "GET", started["stream_url"], stop_after=3)
    # When the session is deleted (as the REST API does it, from another process)
    delete_session(db.store, owner(db, key), doomed)
    # Then the reply's readers are told it ended because the session is gone
    _, rest, _ = read_stream(
        api, "GET", started["stream_url"], headers={"Last-Event-ID": first[-1].id or "0"}
    )
    assert rest[-1].event == "error" and rest[-1].json()["code"] == "SESSION_DELETED"
    assert rest[-1].json()["retryable"] is False
    # And every later reply on the same server completes, more of them than the active limit
    other = new_session(db, key)
    for i in range(db.settings.max_active_requests_per_user + 1):
        fake_claude.enqueue(Reply(text=f"answer {i}"))
        began = time.monotonic()
        events = chat(api, other, f"q{i}")
        assert events[-1].event == "complete" and text_of(events) == f"answer {i}"
        assert time.monotonic() - began < 5, "a later reply waited on the deleted session's events"


# ------------------------------------------------------------------ the active-request limit


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return test_settings(database_url, db_pool_size=12)


@pytest.fixture
def slow_app(app_settings: Settings, claude: Any, fake_claude: FakeAnthropic) -> Iterator[tuple[str, str]]:
    fake_claude.responder = lambda _body: Reply(text="slow " * 400, chunk_size=5, delay_per_chunk=0.02)
    container = Container(app_settings, queue=RecordingQueue(), chat_model=claude)
    _, api_key = make_user(container)
    try:
        with serve(create_local_app(container)) as server:
            yield server.base_url, api_key
    finally:
        container.engine.dispose()


def test_parallel_chat_starts_never_exceed_the_active_request_limit(
    slow_app: tuple[str, str], app_settings: Settings
) -> None:
    # Given a user with a session and a slow model (nothing finishes during the test)
    base_url, api_key = slow_app
    sid = client_for(base_url, api_key).post("/v1/sessions", json={"title": "t"}).json()["id"]
    limit = app_settings.max_active_requests_per_user
    # When twelve chat starts arrive at once
    barrier = threading.Barrier(12)
    results: list[httpx.Response] = []

    def start() -> None:
        with client_for(base_url, api_key) as api:
            barrier.wait()
            results.append(api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}))

    threads = [threading.Thread(target=start) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then exactly the limit is accepted and the rest are told to wait
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * limit + [429] * (12 - limit)
    refused = [r.json()["error"]["code"] for r in results if r.status_code == 429]
    assert set(refused) == {"TOO_MANY_ACTIVE_REQUESTS"}
    for r in results:
        if r.status_code == 201:
            client_for(base_url, api_key).post(f"/v1/requests/{r.json()['request_id']}/cancel")


class BrokenModel(OfflineChatModel):
    """A model adapter with a bug: its stream raises something that is not a ModelError."""

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        yield TextDelta("partial ")
        raise KeyError("secret_internal_detail")


def test_a_reply_that_crashes_says_the_server_failed_with_the_request_id_and_keeps_the_text(
    container: Container, alice: tuple[AuthUser, str]
) -> None:
    user, _ = alice
    sid = create_session(container.store, container.settings, user, "t").id

    async def scenario() -> tuple[uuid.UUID, list[StreamEvent]]:
        manager = ChatRequestManager(container.store, container.settings, BrokenModel())
        await manager.start()
        try:
            row = await manager.start_request(user, sid, "q", None)
            events = [e async for e in manager.follow(row.id) if e is not None]
            return row.id, events
        finally:
            await manager.stop()

    request_id, events = asyncio.run(scenario())
    end = events[-1]
    assert end.type == "error" and end.data["code"] == "INTERNAL_ERROR"
    assert str(request_id) in end.data["message"]
    assert "KeyError" not in end.data["message"] and "secret" not in end.data["message"]
    # And the partial reply the client was shown is kept
    with container.store.transaction() as repo:
        reply = repo.recent_messages(sid, 10)[-1]
        assert (reply.role, reply.status, reply.content) == ("assistant", "failed", "partial ")
        assert reply.error_code == "INTERNAL_ERROR"


def test_a_cancelled_request_no_longer_counts_against_the_limit_once_cancel_answers(
    slow_app: tuple[str, str], app_settings: Settings
) -> None:
    # Given a user running as many slow replies as the limit allows
    base_url, api_key = slow_app
    api = client_for(base_url, api_key)
    sid = api.post("/v1/sessions", json={"title": "t"}).json()["id"]
    started = [
        api.post(f"/v1/sessions/{sid}/chat", json={"message": f"q{i}"})
        for i in range(app_settings.max_active_requests_per_user)
    ]
    assert all(r.status_code == 201 for r in started)
    # When they cancel them all
    for r in started:
        cancelled = api.post(f"/v1/requests/{r.json()['request_id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
    # Then a new chat is accepted at once
    again = api.post(f"/v1/sessions/{sid}/chat", json={"message": "next"})
    assert again.status_code == 201, again.text
    api.post(f"/v1/requests/{again.json()['request_id']}/cancel")


# ------------------------------------------------------------------ refused events, lost saves


class SlowWords(OfflineChatModel):
    """A model that says ``words`` one at a time, ``delay`` seconds apart."""

    def __init__(self, words: list[str], delay: float) -> None:
        super().__init__()
        self.words, self.delay = words, delay

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        for word in self.words:
            await asyncio.sleep(self.delay)
            yield TextDelta(word)
        async for event in super().stream(request):
            if not isinstance(event, TextDelta):
                yield event  # the offline model's StreamFinished


async def read_all(manager: ChatRequestManager, request_id: uuid.UUID) -> list[StreamEvent]:
    return [e async for e in manager.follow(request_id) if e is not None]


@pytest.mark.postgres
def test_a_request_whose_events_are_refused_is_ended_alone_and_the_others_are_written(
    pg_url: str,
) -> None:
    # Given two replies streaming on one process, in two sessions (heartbeats off, so only the
    # event-log writer can notice)
    db = Container(test_settings(pg_url))
    user, _ = make_user(db)
    doomed = create_session(db.store, db.settings, user, "doomed").id
    kept = create_session(db.store, db.settings, user, "kept").id
    words = [f"w{i} " for i in range(40)]

    async def scenario() -> tuple[list[StreamEvent], list[StreamEvent], uuid.UUID]:
        manager = ChatRequestManager(db.store, db.settings, SlowWords(words, 0.01), heartbeat_interval=3600)
        await manager.start()
        try:
            a = await manager.start_request(user, doomed, "q", None)
            b = await manager.start_request(user, kept, "q", None)
            readers = [asyncio.create_task(read_all(manager, r.id)) for r in (a, b)]
            await asyncio.sleep(0.1)
            # When one session is deleted (its request and event rows go with it)
            await asyncio.to_thread(delete_session, db.store, user, doomed)
            ended, finished = await asyncio.wait_for(asyncio.gather(*readers), 10)
            return ended, finished, b.id
        finally:
            await manager.stop()

    try:
        ended, finished, kept_id = asyncio.run(scenario())
        # Then the refused request alone ends, with SESSION_DELETED
        assert ended[-1].type == "error" and ended[-1].data["code"] == "SESSION_DELETED"
        # And the other reply completes, whole, and its log holds every event it sent
        assert finished[-1].type == "complete" and finished[-1].data["text"] == "".join(words)
        with db.store.transaction() as repo:
            logged = repo.chat_events_after(kept_id, 0)
        assert [e.seq for e in logged] == [e.id for e in finished]
    finally:
        db.engine.dispose()


@pytest.mark.postgres
def test_a_reply_that_cannot_be_saved_before_the_deadline_says_so_and_keeps_its_text() -> None:
    # Given a reply streaming against its own PostgreSQL, with a short save deadline
    with running_postgres() as pg:
        url = pg.create_database("save_deadline")
        upgrade_to_head(test_settings(url))
        db = Container(test_settings(url, reply_save_timeout_seconds=1.0))
        user, _ = make_user(db)
        sid = create_session(db.store, db.settings, user, "t").id
        words = [f"w{i} " for i in range(30)]

        async def scenario() -> tuple[list[StreamEvent], uuid.UUID]:
            manager = ChatRequestManager(db.store, db.settings, SlowWords(words, 0.05))
            await manager.start()
            try:
                row = await manager.start_request(user, sid, "q", None)
                reader = asyncio.create_task(read_all(manager, row.id))
                await asyncio.sleep(0.3)
                # When the database goes away before the reply ends, for longer than the deadline
                await asyncio.to_thread(pg.kill)
                events = await asyncio.wait_for(reader, 30)
                await asyncio.to_thread(pg.start_again)
                return events, row.id
            finally:
                await manager.stop()

        try:
            events, _ = asyncio.run(scenario())
            # Then the client is told the truth, with the whole text it was given
            end = events[-1]
            assert end.type == "error" and end.data["code"] == "REPLY_NOT_SAVED"
            assert end.data["retryable"] is True and end.data["text"] == "".join(words)
            assert "message_id" not in end.data
            # And nothing claims a saved reply
            with db.store.transaction() as repo:
                assert [m.role for m in repo.recent_messages(sid, 10)] == ["user"]
        finally:
            db.engine.dispose()


@pytest.mark.postgres
def test_a_websocket_message_during_a_database_outage_is_refused_and_the_next_is_answered() -> None:
    # Given a WebSocket open on a session, against a PostgreSQL we can stop
    with running_postgres() as pg:
        url = pg.create_database("ws_outage")
        upgrade_to_head(test_settings(url))
        container = Container(test_settings(url), queue=RecordingQueue(), chat_model=OfflineChatModel())
        user, api_key = make_user(container)
        sid = create_session(container.store, container.settings, user, "t").id
        try:
            with serve(create_app(container)) as server:

                async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
                    ws_url = f"ws://127.0.0.1:{server.port}/v1/sessions/{sid}/ws"
                    async with websockets.connect(ws_url, additional_headers={"X-API-Key": api_key}) as ws:
                        assert json.loads(await ws.recv())["type"] == "ready"
                        # When a message arrives while the database is away
                        await asyncio.to_thread(pg.kill)
                        await ws.send(json.dumps({"type": "message", "content": "first"}))
                        refused = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        await asyncio.to_thread(pg.start_again)
                        # Then the next message on the same socket is still answered
                        await ws.send(json.dumps({"type": "message", "content": "second"}))
                        frames = []
                        while not frames or frames[-1]["type"] not in ("complete", "error"):
                            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
                        return refused, frames

                refused, frames = asyncio.run(scenario())
        finally:
            container.engine.dispose()
    assert (refused["type"], refused["code"], refused["retryable"]) == ("error", "DATABASE_UNAVAILABLE", True)
    assert frames[-1]["type"] == "complete"
