"""Each streaming transport against uvicorn on loopback, with real HTTP/SSE/WebSocket clients, the
real anthropic SDK and the protocol-faithful fake Claude."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.server import LoopbackServer
from tests.support.sse import read_stream, text_of
from tests.support.users import make_user
from ytr.sse import SSEParser
from ytresearch.bootstrap import Container
from ytresearch.db.models import Message

ANSWER = "The panels turn sunlight into current through the photovoltaic effect. " * 4


@pytest.fixture
def api(server: LoopbackServer, user_key: str) -> Iterator[httpx.Client]:
    with client_for(server.base_url, user_key) as c:
        yield c


def new_session(api: httpx.Client) -> str:
    return str(api.post("/v1/sessions", json={"title": "t"}).json()["id"])


def saved(container: Container, sid: str) -> list[Message]:
    with container.store.transaction() as repo:
        return repo.recent_messages(uuid.UUID(sid), 100)


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# ------------------------------------------------------------------ POST-then-SSE


def test_post_then_sse_reassembles_the_reply(
    api: httpx.Client, fake_claude: FakeAnthropic, app_container: Container
) -> None:
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=3))
    sid = new_session(api)
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "How do panels work?"})
    assert started.status_code == 201
    body = started.json()
    assert body["stream_url"] == f"/v1/streams/{body['request_id']}" and body["status"] == "streaming"
    status, events, meta = read_stream(api, "GET", body["stream_url"])
    assert status == 200 and meta["retry"] > 0
    assert text_of(events) == ANSWER
    assert [int(e.id) for e in events if e.id] == list(range(1, len(events) + 1))  # a per-request sequence
    kinds = [e.event for e in events]
    assert kinds[0] == "stage" and kinds[-2:] == ["usage", "complete"]
    complete = events[-1].json()
    assert complete["text"] == ANSWER and complete["stop_reason"] == "end_turn"
    history = api.get(f"/v1/sessions/{sid}/messages").json()["items"]
    assert [(m["role"], m["status"]) for m in history] == [("assistant", "complete"), ("user", "complete")]
    assert history[0]["content"] == ANSWER and history[0]["id"] == complete["message_id"]


def test_last_event_id_resumes_without_gap_or_duplicate(
    api: httpx.Client, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=2, delay_per_chunk=0.002))
    sid = new_session(api)
    url = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["stream_url"]
    _, first, _ = read_stream(api, "GET", url, stop_after=3)  # the client drops mid-reply
    last_id = first[-1].id
    assert last_id is not None
    _, rest, _ = read_stream(api, "GET", url, headers={"Last-Event-ID": last_id})
    assert int(rest[0].id or 0) == int(last_id) + 1
    assert text_of(first) + text_of(rest) == ANSWER


def test_stream_errors_400_404_and_foreign(
    api: httpx.Client, server: LoopbackServer, app_container: Container, fake_claude: FakeAnthropic
) -> None:
    assert api.get("/v1/streams/not-a-uuid").status_code == 400
    unknown = api.get(f"/v1/streams/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    sid = new_session(api)
    rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]
    other = client_for(server.base_url, make_user(app_container)[1])
    for method, path in (
        ("GET", f"/v1/streams/{rid}"),
        ("GET", f"/v1/requests/{rid}"),
        ("POST", f"/v1/requests/{rid}/cancel"),
        ("POST", f"/v1/sessions/{sid}/chat"),
    ):
        r = other.request(method, path, json={"message": "x"} if method == "POST" else None)
        assert r.status_code == 404, path
    assert httpx.get(f"{server.base_url}/v1/streams/{rid}").status_code == 401
    bad = api.get(f"/v1/streams/{rid}", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_EVENT_ID"


# ------------------------------------------------------------------ polling, cancel, disconnect


def test_polling_returns_status_and_text_so_far(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=4, delay_per_chunk=0.01))
    sid = new_session(api)
    rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]
    seen_partial = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = api.get(f"/v1/requests/{rid}").json()
        if state["status"] == "streaming" and 0 < len(state["text"]) < len(ANSWER):
            assert ANSWER.startswith(state["text"])
            seen_partial = True
        if state["status"] == "complete":
            break
        time.sleep(0.02)
    assert seen_partial and state["status"] == "complete" and state["text"] == ANSWER
    assert state["message_id"] is not None


def test_cancel_closes_upstream_and_saves_partial(
    api: httpx.Client, fake_claude: FakeAnthropic, app_container: Container
) -> None:
    fake_claude.enqueue(Reply(text="slow " * 400, chunk_size=5, delay_per_chunk=0.02))
    sid = new_session(api)
    rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]
    wait_until(lambda: len(api.get(f"/v1/requests/{rid}").json()["text"]) > 20)
    r = api.post(f"/v1/requests/{rid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert fake_claude.wait_for_disconnect(10)  # the upstream Claude stream was closed
    _, events, _ = read_stream(api, "GET", f"/v1/streams/{rid}")
    assert events[-1].event == "cancelled"
    partial = text_of(events)
    assert 0 < len(partial) < len("slow " * 400)
    messages = saved(app_container, sid)
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "cancelled")]
    assert messages[-1].content == partial
    assert api.post(f"/v1/requests/{rid}/cancel").json()["status"] == "cancelled"  # idempotent


def test_client_disconnect_does_not_cancel(
    api: httpx.Client, fake_claude: FakeAnthropic, app_container: Container
) -> None:
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=4, delay_per_chunk=0.005))
    sid = new_session(api)
    url = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["stream_url"]
    read_stream(api, "GET", url, stop_after=2)
    wait_until(lambda: any(m.role == "assistant" for m in saved(app_container, sid)))
    reply = saved(app_container, sid)[-1]
    assert reply.status == "complete" and reply.content == ANSWER
    assert not fake_claude.disconnects


# ------------------------------------------------------------------ one-step SSE


def test_one_step_sse(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=7))
    sid = new_session(api)
    status, events, _ = read_stream(api, "POST", f"/v1/sessions/{sid}/messages/stream", json={"message": "q"})
    assert status == 200
    assert events[0].json()["stage"] == "accepted" and events[0].json()["request_id"]
    assert text_of(events) == ANSWER and events[-1].event == "complete"
    bad_status, _, meta = read_stream(
        api, "POST", f"/v1/sessions/{sid}/messages/stream", json={"message": ""}
    )
    assert bad_status == 400 and meta["body"]["error"]["code"] == "VALIDATION_ERROR"


# ------------------------------------------------------------------ sync REST


def test_sync_chat_returns_the_assistant_message(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    fake_claude.enqueue(Reply(text=ANSWER))
    sid = new_session(api)
    r = api.post(f"/v1/sessions/{sid}/messages", json={"message": "q"})
    assert r.status_code == 201
    body = r.json()
    assert body["role"] == "assistant" and body["content"] == ANSWER and body["status"] == "complete"
    assert body["usage"]["output_tokens"] > 0
    assert fake_claude.message_requests[-1].body["max_tokens"] <= 1024  # fits API Gateway's 30 s


# ------------------------------------------------------------------ WebSocket


def ws_url(server: LoopbackServer, sid: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/sessions/{sid}/ws"


async def ws_collect(ws: Any, until: int) -> list[dict[str, Any]]:
    """Frames until ``until`` terminal events (complete/error/cancelled) were seen."""
    frames, done = [], 0
    while done < until:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        frames.append(frame)
        done += frame["type"] in ("complete", "error", "cancelled")
    return frames


def test_websocket_chat_follow_up_queue_and_cancel(
    server: LoopbackServer,
    api: httpx.Client,
    user_key: str,
    fake_claude: FakeAnthropic,
    app_container: Container,
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(
        Reply(text="first " * 20, chunk_size=6, delay_per_chunk=0.01),
        Reply(text="second answer", chunk_size=3),
        Reply(text="slow " * 500, chunk_size=5, delay_per_chunk=0.02),
    )

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(ws_url(server, sid), additional_headers={"X-API-Key": user_key}) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "message", "content": "one"}))
            await ws.send(json.dumps({"type": "message", "content": "two"}))  # queued behind "one"
            first_two = await ws_collect(ws, 2)
            await ws.send(json.dumps({"type": "message", "content": "three"}))
            while json.loads(await ws.recv())["type"] != "token":
                pass
            await ws.send(json.dumps({"type": "cancel"}))
            return first_two, await ws_collect(ws, 1)

    first_two, third = asyncio.run(go())
    assert any(f["type"] == "queued" for f in first_two)
    completes = [f for f in first_two if f["type"] == "complete"]
    assert [c["text"] for c in completes] == ["first " * 20, "second answer"]
    by_request: dict[str, str] = {}
    for f in first_two:
        if f["type"] == "token":
            by_request[f["request_id"]] = by_request.get(f["request_id"], "") + f["text"]
    assert sorted(by_request.values()) == sorted(["first " * 20, "second answer"])
    assert third[-1]["type"] == "cancelled"
    assert fake_claude.wait_for_disconnect(10)
    statuses = [(m.role, m.content if m.role == "user" else m.status) for m in saved(app_container, sid)]
    assert statuses == [
        ("user", "one"),
        ("assistant", "complete"),
        ("user", "two"),
        ("assistant", "complete"),
        ("user", "three"),
        ("assistant", "cancelled"),
    ]


def test_websocket_first_frame_auth_for_browsers(
    server: LoopbackServer, api: httpx.Client, user_key: str, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(Reply(text="hi there"))

    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(server, sid)) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": user_key}))
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "message", "content": "hello"}))
            return await ws_collect(ws, 1)

    frames = asyncio.run(go())
    assert frames[-1]["type"] == "complete" and frames[-1]["text"] == "hi there"


@pytest.mark.parametrize("mode", ["bad-header", "bad-first-frame", "not-auth-frame"])
def test_websocket_bad_key_closes_with_policy_violation(
    server: LoopbackServer, api: httpx.Client, mode: str
) -> None:
    sid = new_session(api)

    async def go() -> int:
        headers = {"X-API-Key": "ytr_wrong"} if mode == "bad-header" else {}
        try:
            async with websockets.connect(ws_url(server, sid), additional_headers=headers) as ws:
                if mode == "bad-first-frame":
                    await ws.send(json.dumps({"type": "auth", "api_key": "ytr_wrong"}))
                elif mode == "not-auth-frame":
                    await ws.send(json.dumps({"type": "message", "content": "hi"}))
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1
        except websockets.InvalidStatus as rejected:  # closed before the handshake completed
            return 1008 if rejected.response.status_code == 403 else rejected.response.status_code
        return 0

    assert asyncio.run(go()) == 1008


def test_websocket_other_users_session_is_refused(
    server: LoopbackServer, api: httpx.Client, app_container: Container
) -> None:
    sid = new_session(api)
    stranger = make_user(app_container)[1]

    async def go() -> dict[str, Any]:
        async with websockets.connect(ws_url(server, sid), additional_headers={"X-API-Key": stranger}) as ws:
            frame = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return dict(frame)

    assert asyncio.run(go())["code"] == "SESSION_NOT_FOUND"


# ------------------------------------------------------------------ ingest progress


def test_job_events_stream_until_done(api: httpx.Client, app_container: Container) -> None:
    """A subscriber that connects mid-ingest first gets the stages done so far, then the live
    ones, then the end, with the ids any other subscriber sees."""
    sid = new_session(api)
    job_id = api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).json()["job_id"]
    from ytresearch.services.ingest import _finish_jobs
    from ytresearch.services.ingest_progress import StageNote, enter_stage

    enter_stage(app_container.store, "SoLarP4nels", "validating")
    enter_stage(app_container.store, "SoLarP4nels", "fetching_transcript", StageNote("checked"))
    lines = StageNote("transcript in en: 120 lines", {"language": "en", "segments": 120})
    enter_stage(app_container.store, "SoLarP4nels", "fetching_metadata", lines)
    late: dict[str, Any] = {}
    first_three = threading.Event()

    def follow() -> None:
        parser = SSEParser()
        late["events"] = []
        with api.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            for chunk in response.iter_bytes():
                late["events"] += parser.feed(chunk)
                if len(late["events"]) >= 3:
                    first_three.set()
                if late["events"] and late["events"][-1].event in ("complete", "error"):
                    return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert first_three.wait(10)
    told = late["events"][:3]
    assert [(e.id, e.json()["done"]) for e in told] == [
        ("1", None),
        ("2", "validating"),
        ("3", "fetching_transcript"),
    ]
    assert told[2].json()["details"] == {"language": "en", "segments": 120}
    assert told[2].json()["stage"] == "fetching_metadata"  # what runs now
    enter_stage(app_container.store, "SoLarP4nels", "summarising")
    with app_container.store.transaction() as repo:
        repo.get_video("SoLarP4nels").status = "ready"  # type: ignore[union-attr]
        _finish_jobs(repo, "SoLarP4nels", "done")
    reader.join(10)
    events = late["events"]
    assert [e.id for e in events] == ["1", "2", "3", "4", "5", "6", "7"]
    assert events[-1].event == "complete" and events[-1].json()["status"] == "done"
    _, replay, _ = read_stream(api, "GET", f"/v1/jobs/{job_id}/events")
    assert [(e.id, e.event, e.data) for e in replay][:3] == [(e.id, e.event, e.data) for e in events][:3]
    assert api.get(f"/v1/jobs/{uuid.uuid4()}/events").status_code == 404
    bad = api.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_EVENT_ID"
