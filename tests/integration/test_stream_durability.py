"""Streams that survive: several processes sharing PostgreSQL, resume with Last-Event-ID on any
process, restarts, limits, slow clients and SIGTERM drains."""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.processes import ServiceProcess, service_env
from tests.support.sse import read_stream, text_of
from ytr.sse import SSEEvent
from ytresearch.bootstrap import Container
from ytresearch.db.models import ChatEvent, ChatRequest, Message

pytestmark = pytest.mark.postgres

ANSWER = "".join(f"sentence {i} of a long answer about solar panels. " for i in range(60))


@pytest.fixture(scope="module")
def two_processes(
    pg_database: str, fake_anthropic_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServiceProcess]]:
    """Two service processes for the module (starting them is the slow part)."""
    env = service_env(pg_database, fake_anthropic_server.base_url, DEFAULT_API_KEY, YTR_DRAIN_GRACE_SECONDS=3)
    procs = [ServiceProcess(env, log_dir=tmp_path_factory.mktemp("logs")) for _ in range(2)]
    for p in procs:
        p.start(wait=False)
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture
def services(
    two_processes: list[ServiceProcess], pg_url: str, fake_claude: FakeAnthropic
) -> list[ServiceProcess]:
    """Both processes up (a test before may have killed one); the database emptied."""
    for p in two_processes:
        if p.proc is None or p.proc.poll() is not None:
            p.start(wait=False)
    for p in two_processes:
        p.wait_healthy()
    return two_processes


def new_session(db: Container, key: str) -> str:
    """Sessions are created on the REST API (the Lambda); the streaming service only chats."""
    from ytresearch.services.sessions import create_session
    from ytresearch.services.users import authenticate

    return str(create_session(db.store, db.settings, authenticate(db.store, key), "t").id)


def messages(db: Container) -> list[Message]:
    with db.store.transaction() as repo:
        return list(repo.session.scalars(select(Message).order_by(Message.created_at)))


def test_post_on_one_process_stream_and_resume_on_the_other(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, b = services
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=4, delay_per_chunk=0.003))
    sid = new_session(db, key)
    started = client_for(a.base_url, key).post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()
    # Stream from B (it follows A's event log), and cut it mid-reply.
    _, first, _ = read_stream(client_for(b.base_url, key), "GET", started["stream_url"], stop_after=5)
    assert first[-1].id is not None
    # Reconnect to A with Last-Event-ID: exactly the missing events, then live ones until complete.
    _, rest, _ = read_stream(
        client_for(a.base_url, key), "GET", started["stream_url"], headers={"Last-Event-ID": first[-1].id}
    )
    assert rest[-1].event == "complete"
    ids = [int(e.id) for e in first + rest if e.id]
    assert ids == list(range(1, len(ids) + 1))  # no gap, no duplicate
    assert text_of(first) + text_of(rest) == ANSWER
    # And the polling endpoint on B agrees.
    state = client_for(b.base_url, key).get(f"/v1/requests/{started['request_id']}").json()
    assert state["status"] == "complete" and state["text"] == ANSWER


def test_a_streaming_reply_is_logged_in_checkpoints_and_read_whole_on_either_process(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, b = services
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=8, delay_per_chunk=0.007))  # about 2.5 s
    sid = new_session(db, key)
    began = time.monotonic()
    started = client_for(a.base_url, key).post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()
    _, on_a, _ = read_stream(client_for(a.base_url, key), "GET", started["stream_url"])
    elapsed = time.monotonic() - began
    _, on_b, _ = read_stream(client_for(b.base_url, key), "GET", started["stream_url"])

    # Every token event is read, under the same ids, on the owner and from the log elsewhere
    assert on_a[-1].event == "complete" and text_of(on_a) == ANSWER
    assert [(e.id, e.event, e.data) for e in on_b] == [(e.id, e.event, e.data) for e in on_a]
    token_events = sum(1 for e in on_a if e.event == "token")
    # but the log holds the text in checkpoints: the first token, then one row per half second
    with db.store.transaction() as repo:
        rows = repo.session.scalars(
            select(ChatEvent).where(ChatEvent.request_id == uuid.UUID(started["request_id"]))
        ).all()
    token_rows = [r for r in rows if r.type == "token"]
    checkpoint = db.settings.stream_checkpoint_seconds
    assert checkpoint == 0.5  # the default this test runs with
    assert len(token_rows) <= 2 + elapsed / checkpoint, (len(token_rows), elapsed)
    assert token_events >= 4 * len(token_rows), (token_events, len(token_rows))
    assert "".join(r.data["text"] for r in sorted(token_rows, key=lambda r: r.seq)) == ANSWER


def test_client_resumes_across_a_process_restart(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, b = services
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=4, delay_per_chunk=0.01))
    sid = new_session(db, key)
    started = client_for(a.base_url, key).post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()
    _, first, _ = read_stream(client_for(b.base_url, key), "GET", started["stream_url"], stop_after=3)
    b.kill()  # the process the client was reading from goes away
    b.start(wait=False)
    events: list[SSEEvent] = list(first)
    deadline = time.monotonic() + 30
    while not events or events[-1].event != "complete":
        assert time.monotonic() < deadline, "client never completed"
        try:  # the client keeps retrying B with Last-Event-ID until it answers
            _, more, _ = read_stream(
                client_for(b.base_url, key),
                "GET",
                started["stream_url"],
                headers={"Last-Event-ID": events[-1].id or "0"},
            )
            events += more
        except httpx.HTTPError:
            time.sleep(0.1)
    assert text_of(events) == ANSWER


def test_sixth_concurrent_request_is_429_then_expiry_and_cleanup(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, _ = services
    api = client_for(a.base_url, key)
    sid = new_session(db, key)
    for _ in range(6):
        fake_claude.enqueue(Reply(text="x " * 200, chunk_size=2, delay_per_chunk=0.02))
    started = [api.post(f"/v1/sessions/{sid}/chat", json={"message": f"q{i}"}) for i in range(5)]
    assert all(r.status_code == 201 for r in started)
    sixth = api.post(f"/v1/sessions/{sid}/chat", json={"message": "one too many"})
    assert sixth.status_code == 429 and int(sixth.headers["Retry-After"]) > 0
    assert sixth.json()["error"]["code"] == "TOO_MANY_ACTIVE_REQUESTS"
    for r in started:  # let them finish, then a new one is accepted
        read_stream(api, "GET", r.json()["stream_url"])
    assert api.post(f"/v1/sessions/{sid}/chat", json={"message": "now ok"}).status_code == 201
    oversized = api.post(f"/v1/sessions/{sid}/chat", json={"message": "x" * 9000})
    assert oversized.status_code == 413 and oversized.json()["error"]["code"] == "MESSAGE_TOO_LARGE"


def test_expired_requests_answer_410_and_cleanup_frees_them(
    pg_url: str, key: str, db: Container, fake_claude: FakeAnthropic, tmp_path: Path
) -> None:
    env = service_env(pg_url, fake_claude.base_url, DEFAULT_API_KEY, YTR_REQUEST_TTL_SECONDS=1)
    proc = ServiceProcess(env, log_dir=tmp_path).start()
    try:
        api = client_for(proc.base_url, key)
        sid = new_session(db, key)
        fake_claude.enqueue(Reply(text="short"))
        rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]
        read_stream(api, "GET", f"/v1/streams/{rid}")
        time.sleep(1.5)
        gone = api.get(f"/v1/streams/{rid}")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "REQUEST_EXPIRED"
        assert api.get(f"/v1/requests/{rid}").status_code == 410
    finally:
        proc.stop()
    # Cleanup (run here in-process, as the service's periodic task does) deletes the event rows.
    import asyncio

    from streaming_service.chat_requests import ChatRequestManager
    from ytresearch.llm import OfflineChatModel

    # (The other service processes of this module run the same cleanup every 30 s; either way the
    # request must end up expired with its events deleted.)
    manager = ChatRequestManager(db.store, db.settings, OfflineChatModel())
    asyncio.run(manager.cleanup())
    with db.store.transaction() as repo:
        assert (
            repo.session.scalar(select(ChatRequest.status).where(ChatRequest.id == uuid.UUID(rid)))
            == "expired"
        )
        assert repo.chat_events_after(uuid.UUID(rid), 0) == []


def test_orphaned_request_is_closed_with_its_partial_reply(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, b = services
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=4, delay_per_chunk=0.02))
    sid = new_session(db, key)
    started = client_for(a.base_url, key).post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()
    read_stream(client_for(a.base_url, key), "GET", started["stream_url"], stop_after=5)
    a.kill()  # the process generating the reply dies without a word
    _, events, _ = read_stream(client_for(b.base_url, key), "GET", started["stream_url"])
    assert events[-1].event == "error" and events[-1].json()["code"] == "REQUEST_INTERRUPTED"
    saved = [m for m in messages(db) if m.role == "assistant"]
    assert len(saved) == 1 and saved[0].status == "failed" and saved[0].content == text_of(events)


def test_a_client_that_stops_reading_does_not_stall_others(
    services: list[ServiceProcess], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, _ = services
    api = client_for(a.base_url, key)
    sid = new_session(db, key)
    big = "y" * 400_000
    fake_claude.enqueue(Reply(text=big, chunk_size=2000), Reply(text=ANSWER, chunk_size=8))
    slow_rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "big"}).json()["request_id"]
    # A raw socket with a tiny receive buffer that never reads: the server's writes back up.
    paused = socket.socket()
    paused.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    paused.connect(("127.0.0.1", a.port))
    paused.sendall(f"GET /v1/streams/{slow_rid} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode())
    time.sleep(0.5)
    fast = api.post(f"/v1/sessions/{sid}/chat", json={"message": "fast"}).json()
    done = threading.Event()
    result: dict[str, Any] = {}

    def read() -> None:
        result["events"] = read_stream(client_for(a.base_url, key), "GET", fast["stream_url"])[1]
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(30), "the second client's stream stalled"
    assert text_of(result["events"]) == ANSWER
    assert httpx.get(a.base_url + "/health").status_code == 200
    paused.close()


def test_sigterm_drains_streams_and_every_reply_gets_a_final_status(
    pg_url: str, key: str, fake_claude: FakeAnthropic, db: Container, tmp_path: Path
) -> None:
    env = service_env(pg_url, fake_claude.base_url, DEFAULT_API_KEY, YTR_DRAIN_GRACE_SECONDS=2)
    proc = ServiceProcess(env, log_dir=tmp_path).start()
    api = client_for(proc.base_url, key)
    sid = new_session(db, key)
    fake_claude.enqueue(
        Reply(text="short answer " * 10, chunk_size=4, delay_per_chunk=0.02),
        Reply(text="very long answer " * 400, chunk_size=4, delay_per_chunk=0.02),
    )
    short = api.post(f"/v1/sessions/{sid}/chat", json={"message": "short"}).json()
    long = api.post(f"/v1/sessions/{sid}/chat", json={"message": "long"}).json()
    outcomes: dict[str, list[SSEEvent]] = {}

    def follow(name: str, url: str) -> None:
        outcomes[name] = read_stream(client_for(proc.base_url, key), "GET", url)[1]

    threads = [
        threading.Thread(target=follow, args=(n, r["stream_url"]))
        for n, r in (("short", short), ("long", long))
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)
    proc.signal(signal.SIGTERM)
    time.sleep(0.2)
    health = httpx.get(proc.base_url + "/health")
    assert health.status_code == 503 and health.json()["error"]["code"] == "SERVICE_DRAINING"
    refused = api.post(f"/v1/sessions/{sid}/chat", json={"message": "late"})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "SERVICE_DRAINING"
    assert proc.wait(20) == 0  # exits in time, well within an ECS stop timeout
    for t in threads:
        t.join(10)
    assert outcomes["short"][-1].event == "complete"
    assert outcomes["long"][-1].event == "reconnect"
    with db.store.transaction() as repo:
        replies = [m for m in messages(db) if m.role == "assistant"]
        statuses = {r.status for r in replies}
        assert len(replies) == 2 and statuses == {"complete", "failed"}
        interrupted = next(r for r in replies if r.status == "failed")
        assert interrupted.error_code == "REQUEST_INTERRUPTED" and interrupted.content
        assert not list(repo.session.scalars(select(ChatRequest).where(ChatRequest.status == "streaming")))
        # The log ends with the interruption, so a client reconnecting anywhere learns the outcome.
        long_events = repo.chat_events_after(uuid.UUID(long["request_id"]), 0)
        assert long_events[-1].type == "error"
    assert ChatEvent  # the event log model is what replay reads
