"""The research agent's loop through the real anthropic SDK against the fake server: tool rounds,
parallel calls, bad input, failing tools and every bound, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply, ToolCall
from tests.support.queue import RecordingQueue
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import Message
from ytresearch.events import StreamEvent
from ytresearch.services.agent.calls import AgentDeps
from ytresearch.services.agent.inputs import TOOL_SPECS
from ytresearch.services.agent.loop import Agent
from ytresearch.services.chat import run_turn
from ytresearch.services.context import ChatQuestion, ContextDeps, prepare_turn
from ytresearch.services.users import AuthUser
from ytresearch.youtube import default_samples_dir
from ytresearch.youtube.discovery import SampleCatalogDiscovery

VIDEO_A = "dQw4w9WgXcQ"
VIDEO_B = "9bZkp7q19f0"


@pytest.fixture
def user(container: Container) -> AuthUser:
    return make_user(container)[0]


@pytest.fixture
def sid(container: Container, user: AuthUser) -> uuid.UUID:
    with container.store.transaction() as repo:
        return repo.add_session(user.id, "research").id


def agent_deps(container: Container, **settings: Any) -> AgentDeps:
    return AgentDeps(
        store=container.store,
        settings=container.settings.model_copy(update=settings) if settings else container.settings,
        queue=container.queue,
        discovery=SampleCatalogDiscovery(default_samples_dir()),
        ingest_wait_seconds=0,
    )


def ask(
    container: Container, model: Any, user: AuthUser, sid: uuid.UUID, text: str, deps: AgentDeps
) -> tuple[list[StreamEvent], Any]:
    events: list[StreamEvent] = []

    async def go() -> Any:
        turn = await asyncio.to_thread(
            prepare_turn,
            container.store,
            ContextDeps(settings=deps.settings, model=model, max_tokens=512, agent=True),
            ChatQuestion(user=user, session_id=sid, text=text),
        )
        return await run_turn(
            container.store, model, turn, events.append, agent=Agent.for_turn(deps, user, turn)
        )

    return events, asyncio.run(go())


def kinds(events: list[StreamEvent]) -> list[str]:
    """Event types in order, runs of tokens folded into one."""
    out: list[str] = []
    for event in events:
        if not (event.type == "token" and out and out[-1] == "token"):
            out.append(event.type)
    return out


def reply_of(container: Container, sid: uuid.UUID) -> Message:
    with container.store.transaction() as repo:
        return [m for m in repo.recent_messages(sid, 10) if m.role == "assistant"][-1]


def test_two_rounds_list_then_answer(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(text="Let me look.", tool_calls=(ToolCall("list_videos", {}),)),
        Reply(text="The session is empty."),
    )
    events, result = ask(container, claude, user, sid, "what is in here?", agent_deps(container))

    assert kinds(events) == ["stage", "token", "tool_call", "tool_result", "token", "usage", "complete"]
    call = next(e for e in events if e.type == "tool_call")
    done = next(e for e in events if e.type == "tool_result")
    assert call.data["name"] == "list_videos" and call.data["input"] == {}
    assert done.data["call_id"] == call.data["call_id"] and done.data["ok"] is True
    assert done.data["data"] == {"videos": []}
    assert result.text == "Let me look.The session is empty."

    first, second = (r.body for r in fake_claude.message_requests)
    assert [t["name"] for t in first["tools"]] == [t.name for t in TOOL_SPECS]
    assert second["messages"][-2]["content"][-1] == {
        "type": "tool_use",
        "id": call.data["call_id"],
        "name": "list_videos",
        "input": {},
    }
    tool_result = second["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == call.data["call_id"]
    assert json.loads(tool_result["content"])["ok"] is True

    saved = reply_of(container, sid)
    assert saved.status == "complete" and saved.tool_calls is not None
    assert [c["name"] for c in saved.tool_calls] == ["list_videos"]
    assert saved.tool_calls[0]["at"] == len("Let me look.")


def test_a_later_turn_sends_the_tool_rounds_back(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(text="Looking.", tool_calls=(ToolCall("list_videos", {}),)),
        Reply(text="Nothing yet."),
        Reply(text="As I said, nothing."),
    )
    deps = agent_deps(container)
    ask(container, claude, user, sid, "what is in here?", deps)
    ask(container, claude, user, sid, "and now?", deps)

    history = fake_claude.message_requests[-1].body["messages"]
    shapes = [(m["role"], [b["type"] for b in m["content"]]) for m in history]
    assert shapes == [
        ("user", ["text"]),
        ("assistant", ["text", "tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", ["text"]),
        ("user", ["text"]),
    ]


def test_parallel_calls_each_act_and_each_can_be_undone(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(
            text="Adding both.",
            tool_calls=(
                ToolCall("add_video", {"url": f"https://youtu.be/{VIDEO_A}"}),
                ToolCall("add_video", {"url": VIDEO_B}),
            ),
        ),
        Reply(text="Both are being ingested."),
    )
    events, _ = ask(container, claude, user, sid, "add these two", agent_deps(container))

    results = [e for e in events if e.type == "tool_result"]
    assert [r.data["ok"] for r in results] == [True, True]
    assert [r.data["data"]["video_ids"] for r in results] == [[VIDEO_A], [VIDEO_B]]
    queue = container.queue
    assert isinstance(queue, RecordingQueue)
    assert sorted(m.video_id for m in queue.sent) == sorted([VIDEO_A, VIDEO_B])
    with container.store.transaction() as repo:
        assert {v.id for _, v in repo.session_videos(sid)} == {VIDEO_A, VIDEO_B}
    second = fake_claude.message_requests[1].body["messages"][-1]["content"]
    assert [b["type"] for b in second] == ["tool_result", "tool_result"]


def test_malformed_and_invalid_input_are_error_results_and_the_reply_goes_on(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(
            tool_calls=(
                ToolCall("add_video", raw_json='{"url": "https://youtu.be/'),
                ToolCall("search_youtube", {"query": ""}),
                ToolCall("organize_videos", {"strategy": "by mood"}),
            ),
        ),
        Reply(text="Sorry, those inputs were wrong."),
    )
    events, result = ask(container, claude, user, sid, "do things", agent_deps(container))

    results = [e.data for e in events if e.type == "tool_result"]
    assert [r["ok"] for r in results] == [False, False, False]
    assert {r["error"]["code"] for r in results} == {"INVALID_TOOL_INPUT"}
    assert "query" in results[1]["error"]["message"] and "strategy" in results[2]["error"]["message"]
    assert events[-1].type == "complete" and result.status == "complete"
    sent = fake_claude.message_requests[1].body["messages"][-1]["content"]
    assert all(b["is_error"] for b in sent)


def test_a_failing_tool_is_an_error_result(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("remove_video", {"video": "3"}),)),
        Reply(text="There is no third video."),
    )
    events, result = ask(container, claude, user, sid, "remove the third video", agent_deps(container))

    failed = next(e.data for e in events if e.type == "tool_result")
    assert failed["ok"] is False and failed["error"]["code"] == "VIDEO_NOT_FOUND"
    assert result.status == "complete"


def test_round_bound(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    listing = Reply(tool_calls=(ToolCall("list_videos", {}),))
    fake_claude.enqueue(listing, listing, Reply(text="never asked for"))
    events, result = ask(container, claude, user, sid, "loop", agent_deps(container, agent_max_tool_rounds=1))

    assert [e.type for e in events].count("tool_result") == 1
    limit = next(e.data for e in events if e.type == "limit_reached")
    assert limit["limit"] == "tool_rounds" and limit["max"] == 1
    assert len(fake_claude.message_requests) == 2
    note = fake_claude.message_requests[1].body["messages"][-1]["content"][-1]
    assert note["type"] == "text" and "limit" in note["text"]
    assert result.status == "complete"


def test_videos_per_reply_bound(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(
            tool_calls=(
                ToolCall("add_video", {"url": VIDEO_A}),
                ToolCall("add_video", {"url": VIDEO_B}),
            )
        ),
        Reply(text="Added one."),
    )
    events, _ = ask(container, claude, user, sid, "add", agent_deps(container, agent_max_videos_per_reply=1))

    results = [e.data for e in events if e.type == "tool_result"]
    assert results[0]["ok"] is True
    assert results[1]["ok"] is False and results[1]["error"]["code"] == "VIDEO_LIMIT_REACHED"
    limit = next(e.data for e in events if e.type == "limit_reached")
    assert limit == {"limit": "videos_per_reply", "max": 1, "message": limit["message"]}
    with container.store.transaction() as repo:
        assert [v.id for _, v in repo.session_videos(sid)] == [VIDEO_A]


def test_videos_per_session_bound_counts_earlier_replies(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    deps = agent_deps(container, agent_max_videos_per_session=1)
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("add_video", {"url": VIDEO_A}),)),
        Reply(text="Added."),
        Reply(tool_calls=(ToolCall("add_video", {"url": VIDEO_B}),)),
        Reply(text="Could not."),
    )
    ask(container, claude, user, sid, "add a", deps)
    events, _ = ask(container, claude, user, sid, "add b", deps)

    refused = next(e.data for e in events if e.type == "tool_result")
    assert refused["ok"] is False and refused["error"]["code"] == "VIDEO_LIMIT_REACHED"
    assert next(e.data for e in events if e.type == "limit_reached")["limit"] == "videos_per_session"


def test_token_bound(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("list_videos", {}),), usage={"input_tokens": 5_000, "output_tokens": 10}),
        Reply(text="never asked for"),
    )
    events, result = ask(
        container, claude, user, sid, "go", agent_deps(container, agent_max_reply_tokens=1_000)
    )

    limit = next(e.data for e in events if e.type == "limit_reached")
    assert limit["limit"] == "tokens_per_reply" and limit["max"] == 1_000
    assert "tool_result" not in [e.type for e in events]
    assert len(fake_claude.message_requests) == 1
    assert result.status == "complete"


def test_every_mutating_call_is_an_action_row(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(
        Reply(tool_calls=(ToolCall("add_video", {"url": VIDEO_A}), ToolCall("list_videos", {}))),
        Reply(text="Done."),
    )
    ask(container, claude, user, sid, "add and list", agent_deps(container))

    with container.store.transaction() as repo:
        rows = repo.list_actions(sid, 10, None)
    by_tool = {row.tool: row for row in rows}
    assert by_tool["add_video"].mutating and by_tool["add_video"].undo == {
        "kind": "unlink_video",
        "video_id": VIDEO_A,
    }
    assert not by_tool["list_videos"].mutating and by_tool["list_videos"].undo is None
    assert all(row.status == "done" and row.duration_ms >= 0 for row in rows)


def test_tools_off_sends_no_tools(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    fake_claude.enqueue(Reply(text="Plain answer."))
    deps = agent_deps(container)

    async def go() -> None:
        turn = await asyncio.to_thread(
            prepare_turn,
            container.store,
            ContextDeps(settings=deps.settings, model=claude, max_tokens=512, agent=True),
            ChatQuestion(user=user, session_id=sid, text="hi", tools="off"),
        )
        assert turn.tools_mode == "off"
        await run_turn(container.store, claude, turn, lambda _e: None, agent=Agent.for_turn(deps, user, turn))

    asyncio.run(go())
    assert "tools" not in fake_claude.message_requests[0].body
