"""The research agent over the real transports: tool events on SSE and WebSocket with the reply's
ids, approvals (given, refused, timed out, owned), session updates to idle sockets and streams,
against uvicorn on loopback, the real anthropic SDK and the fake Claude, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes.anthropic_server import FakeAnthropic, Reply, ToolCall
from tests.support.clients import client_for
from tests.support.server import LoopbackServer
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytr.sse import SSEEvent, SSEParser
from ytresearch.bootstrap import Container

VIDEO = "dQw4w9WgXcQ"
WAIT = 20.0


@pytest.fixture
def agent_overrides() -> dict[str, Any]:
    return {"agent_approval_timeout_seconds": 1.5, "agent_ingest_wait_seconds": 0}


@pytest.fixture
def app(agent_app: LoopbackServer) -> LoopbackServer:
    return agent_app


@pytest.fixture
def api(agent_api: httpx.Client) -> httpx.Client:
    return agent_api


def new_session(api: httpx.Client) -> str:
    return str(api.post("/v1/sessions", json={"title": "agent"}).json()["id"])


def stream_until_end(
    api: httpx.Client, url: str, *, on_event: Any = None, headers: dict[str, str] | None = None
) -> list[SSEEvent]:
    """Every event of an SSE stream; ``on_event`` sees each as it arrives (to act mid-stream)."""
    events: list[SSEEvent] = []
    parser = SSEParser()
    with api.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            for event in parser.feed(chunk):
                events.append(event)
                if on_event is not None:
                    on_event(event)
            if events and events[-1].event in ("complete", "error", "cancelled"):
                break
    return events


def data(events: list[SSEEvent], kind: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.event == kind]


def test_tool_events_stream_in_order_with_the_reply_ids(
    api: httpx.Client, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(
        Reply(text="Checking.", tool_calls=(ToolCall("list_videos", {}),)), Reply(text="Empty.")
    )
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "what videos?"}).json()
    events = stream_until_end(api, started["stream_url"])

    kinds = [e.event for e in events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("complete")
    assert [int(e.id) for e in events if e.id] == list(range(1, len(events) + 1))
    call, result = data(events, "tool_call")[0], data(events, "tool_result")[0]
    assert call["name"] == "list_videos" and result["call_id"] == call["call_id"] and result["ok"]

    # A reconnect at the tool call replays exactly what followed it.
    at = next(e.id for e in events if e.event == "tool_call")
    _, rest, _ = read_stream(api, "GET", started["stream_url"], headers={"Last-Event-ID": str(at)})
    assert [e.id for e in rest] == [e.id for e in events if int(e.id or 0) > int(at or 0)]

    history = api.get(f"/v1/sessions/{sid}/messages").json()["items"]
    reply = next(m for m in history if m["role"] == "assistant")
    assert reply["tool_calls"][0]["name"] == "list_videos"


def test_tool_events_on_the_websocket(
    app: LoopbackServer, api: httpx.Client, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("add_video", {"url": f"https://youtu.be/{VIDEO}"}),)), Reply(text="Added.")
    )

    async def go() -> list[dict[str, Any]]:
        url = app.base_url.replace("http", "ws") + f"/v1/sessions/{sid}/ws"
        frames: list[dict[str, Any]] = []
        async with websockets.connect(url, additional_headers={"X-API-Key": api.headers["X-API-Key"]}) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "message", "content": "add it"}))
            # The reply's end, and the session's own update (it comes on its own schedule).
            while not {"complete", "session_update"} <= {f["type"] for f in frames}:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
                assert frames[-1]["type"] != "error", frames[-1]
        return frames

    frames = asyncio.run(go())
    types = [f["type"] for f in frames if f["type"] != "session_update"]
    assert "tool_call" in types and "tool_result" in types and types[-1] == "complete"
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["ok"] and result["data"]["video_ids"] == [VIDEO]
    # The session's own change reached the socket too (it was open when the video was added).
    update = next(f for f in frames if f["type"] == "session_update")
    assert update["change"] == "video_added" and update["video_id"] == VIDEO


@pytest.mark.parametrize("approve", [True, False])
def test_confirm_mode_waits_for_the_decision(
    api: httpx.Client, fake_claude: FakeAnthropic, agent_container: Container, approve: bool
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(Reply(tool_calls=(ToolCall("add_video", {"url": VIDEO}),)), Reply(text="Told you."))
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "add it", "tools": "confirm"}).json()
    answers: list[httpx.Response] = []

    def decide(event: SSEEvent) -> None:
        if event.event == "approval_required":
            call_id = json.loads(event.data)["call_id"]
            body = {"call_id": call_id, "approve": approve}
            answers.append(api.post(f"/v1/requests/{started['request_id']}/approvals", json=body))
            answers.append(api.post(f"/v1/requests/{started['request_id']}/approvals", json=body))

    events = stream_until_end(api, started["stream_url"], on_event=decide)

    assert [r.status_code for r in answers] == [200, 409]
    assert answers[0].json()["approved"] is approve
    assert answers[1].json()["error"]["code"] == "APPROVAL_ALREADY_DECIDED"
    assert data(events, "approval") == [
        {"call_id": answers[0].json()["call_id"], "approved": approve, "by": "user"}
    ]
    result = data(events, "tool_result")[0]
    if approve:
        assert result["ok"] and result["data"]["video_ids"] == [VIDEO]
    else:
        assert not result["ok"] and result["error"]["code"] == "NOT_APPROVED"
        with agent_container.store.transaction() as repo:
            assert repo.count_session_videos(__import__("uuid").UUID(sid)) == 0
    assert events[-1].event == "complete"


def test_no_answer_is_a_refusal_the_model_is_told(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    sid = new_session(api)
    fake_claude.enqueue(Reply(tool_calls=(ToolCall("remove_video", {"video": "1"}),)), Reply(text="Ok."))
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "remove", "tools": "confirm"}).json()
    events = stream_until_end(api, started["stream_url"])

    assert data(events, "approval")[0]["by"] == "timeout" and not data(events, "approval")[0]["approved"]
    assert data(events, "tool_result")[0]["error"]["code"] == "NOT_APPROVED"
    told = fake_claude.message_requests[-1].body["messages"][-1]["content"][0]
    assert told["is_error"] and "no approval came" in json.loads(told["content"])["error"]["message"]


def test_approvals_are_owned_and_checked(
    app: LoopbackServer, api: httpx.Client, agent_container: Container, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(Reply(tool_calls=(ToolCall("list_videos", {}),)), Reply(text="Listed."))
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "list", "tools": "confirm"}).json()
    stream_until_end(api, started["stream_url"])  # a read-only call asks nothing
    url = f"/v1/requests/{started['request_id']}/approvals"

    other = client_for(app.base_url, make_user(agent_container, "eve@example.com")[1])
    assert other.post(url, json={"call_id": "toolu_x", "approve": True}).status_code == 404
    not_asked = api.post(url, json={"call_id": "toolu_x", "approve": True})
    assert not_asked.status_code == 404 and not_asked.json()["error"]["code"] == "APPROVAL_NOT_FOUND"
    for bad in (
        {"call_id": "x"},
        {"call_id": "x y", "approve": True},
        {"call_id": "x", "approve": "yes"},
        {},
    ):
        response = api.post(url, json=bad)
        assert response.status_code == 400 and "Traceback" not in response.text
        assert set(response.json()["error"]) >= {"code", "message"}


def test_session_updates_reach_an_idle_socket_and_the_event_stream(
    app: LoopbackServer, api: httpx.Client
) -> None:
    sid = new_session(api)
    events_seen: list[SSEEvent] = []

    async def go() -> list[dict[str, Any]]:
        url = app.base_url.replace("http", "ws") + f"/v1/sessions/{sid}/ws"
        async with websockets.connect(url, additional_headers={"X-API-Key": api.headers["X-API-Key"]}) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            # No reply is running: another route changes the session.
            added = await asyncio.to_thread(api.post, f"/v1/sessions/{sid}/videos", json={"url": VIDEO})
            assert added.status_code in (200, 202)
            removed = await asyncio.to_thread(api.delete, f"/v1/sessions/{sid}/videos/{VIDEO}")
            assert removed.status_code == 204
            frames = []
            while len(frames) < 2:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
            return frames

    frames = asyncio.run(go())
    assert [(f["type"], f["change"], f["video_id"]) for f in frames] == [
        ("session_update", "video_added", VIDEO),
        ("session_update", "video_removed", VIDEO),
    ]
    # The SSE twin, resumed from before the first change, replays both.
    first_id = frames[0]["id"]
    with api.stream(
        "GET", f"/v1/sessions/{sid}/events", headers={"Last-Event-ID": str(first_id - 1)}
    ) as response:
        parser = SSEParser()
        deadline = time.monotonic() + WAIT
        for chunk in response.iter_bytes():
            events_seen += [e for e in parser.feed(chunk) if e.event == "session_update"]
            if len(events_seen) >= 2 or time.monotonic() > deadline:
                break
    assert [json.loads(e.data)["change"] for e in events_seen] == ["video_added", "video_removed"]
    assert [int(e.id or 0) for e in events_seen] == [first_id, frames[1]["id"]]
    assert api.get(f"/v1/sessions/{sid}/events", headers={"Last-Event-ID": "x"}).status_code == 400


def test_the_synchronous_call_runs_tools_and_refuses_changes_in_confirm_mode(
    api: httpx.Client, fake_claude: FakeAnthropic, agent_container: Container
) -> None:
    sid = new_session(api)
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("add_video", {"url": VIDEO}),)),
        Reply(text="Added it."),
        Reply(tool_calls=(ToolCall("remove_video", {"video": "1"}),)),
        Reply(text="I could not."),
    )
    added = api.post(f"/v1/sessions/{sid}/messages", json={"message": "add it"})
    assert added.status_code == 201, added.text
    assert added.json()["tool_calls"][0]["name"] == "add_video" and added.json()["tool_calls"][0]["ok"]
    assert [v["id"] for v in api.get(f"/v1/sessions/{sid}/videos").json()] == [VIDEO]

    refused = api.post(f"/v1/sessions/{sid}/messages", json={"message": "remove it", "tools": "confirm"})
    call = refused.json()["tool_calls"][0]
    assert not call["ok"] and json.loads(call["content"])["error"]["code"] == "APPROVAL_UNAVAILABLE"
    assert [v["id"] for v in api.get(f"/v1/sessions/{sid}/videos").json()] == [VIDEO]


def test_polling_shows_what_the_agent_did(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    sid = new_session(api)
    fake_claude.enqueue(
        Reply(text="", tool_calls=(ToolCall("list_videos", {}),)), Reply(text="Nothing here.")
    )
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "what is here?"}).json()
    deadline = time.monotonic() + WAIT
    while (state := api.get(f"/v1/requests/{started['request_id']}").json())["status"] == "streaming":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [e["type"] for e in state["agent_events"]] == ["tool_call", "tool_result"]
    assert state["agent_events"][1]["ok"] and state["text"] == "Nothing here."


def test_a_bound_is_told_on_the_stream(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    sid = new_session(api)
    six = tuple(ToolCall("add_video", {"url": f"vid{n:08d}"}) for n in range(6))
    fake_claude.enqueue(Reply(text="", tool_calls=six), Reply(text="Added five."))
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "add six"}).json()
    events = stream_until_end(api, started["stream_url"])

    assert [r["ok"] for r in data(events, "tool_result")] == [True] * 5 + [False]
    assert data(events, "limit_reached") == [
        {
            "limit": "videos_per_reply",
            "max": 5,
            "message": "this reply has added as many videos as one reply may",
        }
    ]
    kinds = [e.event for e in events]
    assert kinds.index("limit_reached") < len(kinds) - 1 - kinds[::-1].index("tool_result")
