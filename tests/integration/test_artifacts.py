"""Artifacts: the research agent writes a document through create_artifact / revise_artifact, told
as ``artifact`` events while the model writes it (through the real SDK's streamed tool input from
the fake Claude), saved per session, versioned, listed, read, deleted and undone over HTTP, and
replayed exactly on a reconnect; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply, ToolCall
from tests.support.clients import client_for
from tests.support.server import LoopbackServer
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytr.sse import SSEEvent, SSEParser
from ytresearch.bootstrap import Container
from ytresearch.llm.anthropic_model import AnthropicChatModel
from ytresearch.ports import (
    ContentBlock,
    ModelMessage,
    ModelRequest,
    ToolCallRequested,
    ToolInputDelta,
    ToolSpec,
)

WATCH = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
TABLE = "\n".join(
    ["| # | Video | Key point |", "|---|---|---|"]
    + [f"| {n} | Talk {n} | point {n} at [02:{n:02d}]({WATCH}&t={120 + n}) |" for n in range(1, 25)]
)
NOTES = "\n\n".join(["## Notes\n\n- the first idea, *revised*\n- the second idea"] * 3)


@pytest.fixture
def agent_overrides() -> dict[str, Any]:
    return {"agent_ingest_wait_seconds": 0, "artifact_max_chars": 5_000}


@pytest.fixture
def app(agent_app: LoopbackServer) -> LoopbackServer:
    return agent_app


@pytest.fixture
def api(agent_api: httpx.Client) -> httpx.Client:
    return agent_api


def chat(api: httpx.Client, sid: str, message: str) -> tuple[dict[str, Any], list[SSEEvent]]:
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": message})
    assert started.status_code == 201, started.text
    events: list[SSEEvent] = []
    parser = SSEParser()
    with api.stream("GET", started.json()["stream_url"]) as response:
        for chunk in response.iter_bytes():
            events.extend(parser.feed(chunk))
            if events and events[-1].event in ("complete", "error", "cancelled"):
                break
    assert events[-1].event == "complete", events[-1]
    return started.json(), events


def artifact_events(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.event == "artifact"]


def drafted(partials: list[dict[str, Any]]) -> str:
    """What a client shows from the partial events: each replaces the draft from its offset on."""
    draft = ""
    for event in partials:
        draft = draft[: event["offset"]] + event["content"]
    return draft


def test_an_artifact_streams_saves_versions_and_is_listed(
    api: httpx.Client, fake_claude: FakeAnthropic
) -> None:
    sid = str(api.post("/v1/sessions", json={"title": "artifacts"}).json()["id"])
    fake_claude.enqueue(
        Reply(
            text="I will put it in a table.",
            tool_calls=(
                ToolCall(
                    "create_artifact",
                    {"title": "Talks compared", "kind": "table", "content": TABLE},
                    chunk_size=60,
                ),
            ),
        ),
        Reply(text="The table is saved."),
    )
    started, events = chat(api, sid, "compare the talks in a table")

    told = artifact_events(events)
    partials = [e for e in told if e["status"] == "partial"]
    (final,) = [e for e in told if e["status"] == "final"]
    assert len(partials) >= 3  # it grew while the model wrote it
    assert all(
        e["title"].startswith("Talks") or e["title"] == "" or "Talks".startswith(e["title"]) for e in partials
    )
    assert TABLE.startswith(drafted(partials)) and len(drafted(partials)) > len(TABLE) // 2
    assert final["content"] == TABLE and final["version"] == 1 and final["kind"] == "table"
    assert final["title"] == "Talks compared" and final["call_id"] == partials[0]["call_id"]
    kinds = [e.event for e in events]
    last_partial = max(
        i for i, e in enumerate(events) if e.event == "artifact" and json.loads(e.data)["status"] == "partial"
    )
    final_at = next(
        i for i, e in enumerate(events) if e.event == "artifact" and json.loads(e.data)["status"] == "final"
    )
    assert last_partial < kinds.index("tool_call") < final_at < kinds.index("tool_result")
    result = json.loads(next(e.data for e in events if e.event == "tool_result"))
    assert result["ok"] and result["data"]["artifact_id"] == final["artifact_id"]
    assert "content" not in result["data"]  # the model is not sent its own document back

    # A reconnect in the middle of the draft gets exactly the events after it, so the same draft.
    at = next(e.id for e in events if e.event == "artifact")
    _, rest, _ = read_stream(api, "GET", started["stream_url"], headers={"Last-Event-ID": str(at)})
    assert [(e.id, e.event, e.data) for e in rest] == [
        (e.id, e.event, e.data) for e in events if int(e.id or 0) > int(at or 0)
    ]
    # Polling clients see them among the agent's events.
    status = api.get(f"/v1/requests/{started['request_id']}").json()
    assert [e["status"] for e in status["agent_events"] if e["type"] == "artifact"] == [
        e["status"] for e in told
    ]

    artifact_id = final["artifact_id"]
    (listed,) = api.get(f"/v1/sessions/{sid}/artifacts").json()["items"]
    assert listed["id"] == artifact_id and listed["content"] == TABLE and listed["version"] == 1

    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall("revise_artifact", {"artifact_id": artifact_id, "content": NOTES}, chunk_size=20),
            ),
        ),
        Reply(text="Revised."),
    )
    _, events = chat(api, sid, "make it notes instead")
    final2 = next(e for e in artifact_events(events) if e["status"] == "final")
    assert final2["artifact_id"] == artifact_id and final2["version"] == 2 and final2["content"] == NOTES
    revised = [e for e in artifact_events(events) if e["status"] == "partial"]
    assert revised and all(e["artifact_id"] == artifact_id for e in revised)

    latest = api.get(f"/v1/sessions/{sid}/artifacts/{artifact_id}").json()
    assert (latest["version"], latest["latest_version"], latest["title"]) == (2, 2, "Talks compared")
    assert latest["content"] == NOTES
    first = api.get(f"/v1/sessions/{sid}/artifacts/{artifact_id}", params={"version": 1}).json()
    assert (first["version"], first["latest_version"], first["content"]) == (1, 2, TABLE)
    versions = api.get(f"/v1/sessions/{sid}/artifacts/{artifact_id}/versions").json()["items"]
    assert [(v["version"], v["chars"]) for v in versions] == [(2, len(NOTES)), (1, len(TABLE))]
    missing = api.get(f"/v1/sessions/{sid}/artifacts/{artifact_id}", params={"version": 3})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ARTIFACT_VERSION_NOT_FOUND"

    # The export carries the artifact's latest version.
    exported = api.get(f"/v1/sessions/{sid}/export", params={"format": "md"}).text
    assert "Talks compared" in exported and "the first idea, *revised*" in exported

    assert api.delete(f"/v1/sessions/{sid}/artifacts/{artifact_id}").status_code == 204
    assert api.get(f"/v1/sessions/{sid}/artifacts").json()["items"] == []
    gone = api.get(f"/v1/sessions/{sid}/artifacts/{artifact_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ARTIFACT_NOT_FOUND"
    assert api.delete(f"/v1/sessions/{sid}/artifacts/{artifact_id}").status_code == 404


def test_an_artifact_not_saved_is_withdrawn_and_changes_nothing(
    api: httpx.Client, fake_claude: FakeAnthropic
) -> None:
    sid = str(api.post("/v1/sessions", json={"title": "artifacts"}).json()["id"])
    too_long = "word " * 1_200  # over the 5,000-character bound of this deployment
    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall(
                    "create_artifact", {"title": "Long", "kind": "notes", "content": too_long}, chunk_size=200
                ),
                ToolCall("revise_artifact", {"artifact_id": str(uuid.uuid4()), "content": "x"}),
                ToolCall("create_artifact", {"title": "No kind", "content": "text"}),
            ),
        ),
        Reply(text="Sorry."),
    )
    _, events = chat(api, sid, "write long notes")

    told = artifact_events(events)
    failed = [e for e in told if e["status"] == "failed"]
    assert len(failed) == 3 and not [e for e in told if e["status"] == "final"]
    assert "5000 characters" in failed[0]["message"]
    results = [json.loads(e.data) for e in events if e.event == "tool_result"]
    assert [r["error"]["code"] for r in results] == [
        "ARTIFACT_TOO_LARGE",
        "ARTIFACT_NOT_FOUND",
        "INVALID_TOOL_INPUT",
    ]
    assert api.get(f"/v1/sessions/{sid}/artifacts").json()["items"] == []


def test_artifact_actions_undo(
    api: httpx.Client, fake_claude: FakeAnthropic, app: LoopbackServer, agent_container: Container
) -> None:
    sid = str(api.post("/v1/sessions", json={"title": "artifacts"}).json()["id"])
    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall("create_artifact", {"title": "Outline", "kind": "outline", "content": "# One"}),
            ),
        ),
        Reply(text="Saved."),
    )
    chat(api, sid, "outline")
    (artifact,) = api.get(f"/v1/sessions/{sid}/artifacts").json()["items"]
    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall(
                    "revise_artifact",
                    {"artifact_id": artifact["id"], "content": "# Two", "title": "Outline 2"},
                ),
            ),
        ),
        Reply(text="Revised."),
    )
    chat(api, sid, "revise")
    actions = api.get(f"/v1/sessions/{sid}/actions").json()["items"]
    revise, create = actions[0], actions[1]
    assert (revise["tool"], create["tool"]) == ("revise_artifact", "create_artifact")
    assert revise["undoable"] and create["undoable"]

    # Another user can neither see nor delete it.
    stranger = client_for(app.base_url, make_user(agent_container)[1])
    assert stranger.get(f"/v1/sessions/{sid}/artifacts").status_code == 404
    assert stranger.delete(f"/v1/sessions/{sid}/artifacts/{artifact['id']}").status_code == 404

    assert api.post(f"/v1/sessions/{sid}/actions/{revise['id']}/undo").status_code == 200
    back = api.get(f"/v1/sessions/{sid}/artifacts/{artifact['id']}").json()
    assert (back["version"], back["title"], back["content"]) == (1, "Outline", "# One")
    assert api.post(f"/v1/sessions/{sid}/actions/{create['id']}/undo").status_code == 200
    assert api.get(f"/v1/sessions/{sid}/artifacts").json()["items"] == []


def test_bad_artifact_requests_get_clear_errors(api: httpx.Client) -> None:
    sid = str(api.post("/v1/sessions", json={"title": "artifacts"}).json()["id"])
    for path, params in [
        (f"/v1/sessions/{sid}/artifacts/not-a-uuid", {}),
        (f"/v1/sessions/{sid}/artifacts/{uuid.uuid4()}", {"version": "0"}),
        (f"/v1/sessions/{sid}/artifacts", {"cursor": "forged"}),
    ]:
        response = api.get(path, params=params)
        assert response.status_code in (400, 422), response.text
        body = response.json()
        assert body["error"]["code"] and "Traceback" not in response.text
    missing = api.get(f"/v1/sessions/{uuid.uuid4()}/artifacts")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SESSION_NOT_FOUND"


ARTIFACT_TOOL = ToolSpec(
    "create_artifact",
    "Write a document.",
    {"type": "object", "properties": {"title": {"type": "string"}, "content": {"type": "string"}}},
    streams_input=True,
)
OTHER_TOOL = ToolSpec("search", "Search.", {"type": "object", "properties": {"q": {"type": "string"}}})


@pytest.mark.anyio
async def test_the_adapter_tells_a_streamed_tool_input_as_it_arrives(
    fake: FakeAnthropic, model: AnthropicChatModel
) -> None:
    content = 'Line "one"\nline two \\ with é and a tab\t' * 4
    fake.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall("search", {"q": "not streamed"}, chunk_size=3),
                ToolCall("create_artifact", {"title": "Doc", "content": content}, chunk_size=7),
            ),
        )
    )
    request = ModelRequest(
        system=[],
        messages=[ModelMessage("user", [ContentBlock("go")])],
        max_tokens=256,
        tools=(OTHER_TOOL, ARTIFACT_TOOL),
    )
    events = [e async for e in model.stream(request)]

    partial = [e for e in events if isinstance(e, ToolInputDelta)]
    calls = [e for e in events if isinstance(e, ToolCallRequested)]
    assert {e.name for e in partial} == {"create_artifact"}  # only the tool that streams its input
    assert all(e.call_id == calls[1].call_id for e in partial)
    so_far = [e.input.get("content", "") for e in partial]
    assert all(content.startswith(text) for text in so_far)  # escapes never show half-decoded
    assert so_far == sorted(so_far, key=len) and len(set(so_far)) > 10
    assert events.index(partial[-1]) < events.index(calls[1])
    assert calls[1].input == {"title": "Doc", "content": content}


def test_a_cancelled_reply_keeps_the_draft_it_showed(api: httpx.Client, fake_claude: FakeAnthropic) -> None:
    sid = str(api.post("/v1/sessions", json={"title": "artifacts"}).json()["id"])
    content = "".join(f"- point {i} of the notes\n" for i in range(150))
    slow = ToolCall("create_artifact", {"title": "Notes", "kind": "notes", "content": content}, chunk_size=25)
    fake_claude.enqueue(Reply(text="", tool_calls=(slow,), delay_per_chunk=0.03))
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "notes"}).json()
    events: list[SSEEvent] = []
    parser = SSEParser()
    asked = False
    with api.stream("GET", started["stream_url"]) as response:
        for chunk in response.iter_bytes():
            events.extend(parser.feed(chunk))
            if not asked and sum(e.event == "artifact" for e in events) >= 2:
                asked = True  # cancel with the draft half shown
                assert api.post(f"/v1/requests/{started['request_id']}/cancel").status_code in (200, 202)
            if events and events[-1].event in ("complete", "error", "cancelled"):
                break
    assert events[-1].event == "cancelled"
    shown = drafted([e for e in artifact_events(events) if e["status"] == "partial"])
    assert shown and content.startswith(shown)
    (kept,) = api.get(f"/v1/sessions/{sid}/artifacts").json()["items"]
    assert (kept["title"], kept["kind"], kept["content"]) == ("Notes (unfinished)", "notes", shown)
