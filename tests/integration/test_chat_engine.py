"""The chat engine through the real anthropic SDK against the protocol-faithful fake server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.fakes.anthropic_server import DropConnection, ErrorReply, FakeAnthropic, MidStreamError, Reply
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import Message, utcnow
from ytresearch.events import StreamEvent
from ytresearch.services.chat import prepare_turn, run_turn
from ytresearch.services.context import ChatQuestion, ContextDeps
from ytresearch.services.users import AuthUser


def add_video(
    container: Container,
    session_id: uuid.UUID,
    video_id: str,
    status: str = "ready",
    title: str = "A video",
    seconds: int = 0,
) -> None:
    with container.store.transaction() as repo:
        video = repo.get_or_add_video(video_id)
        video.status, video.title, video.channel = status, title, "Channel " + video_id[:3]
        if status == "ready":
            video.summary = f"Summary of {title}."
            video.transcript_segments = [
                {"text": f"{title} line one", "start": 5.0, "duration": 2.0},
                {"text": f"{title} line two", "start": 65.5, "duration": 2.0},
            ]
        repo.link_video(session_id, video_id, None)
        link = repo.session.get(
            __import__("ytresearch.db.models", fromlist=["SessionVideo"]).SessionVideo, (session_id, video_id)
        )
        link.added_at = utcnow() + timedelta(seconds=seconds)


def new_session(container: Container, user: AuthUser) -> uuid.UUID:
    with container.store.transaction() as repo:
        return repo.add_session(user.id, "research").id


def turn(
    container: Container,
    model: Any,
    user: AuthUser,
    sid: uuid.UUID,
    text: str,
    video_ids: list[str] | None = None,
) -> tuple[list[StreamEvent], Any]:
    events: list[StreamEvent] = []

    async def go() -> Any:
        prepared = await asyncio.to_thread(
            prepare_turn,
            container.store,
            ContextDeps(settings=container.settings, model=model, max_tokens=512),
            ChatQuestion(user=user, session_id=sid, text=text, video_ids=video_ids),
        )
        return await run_turn(container.store, model, prepared, events.append)

    return events, asyncio.run(go())


def messages(container: Container, sid: uuid.UUID) -> list[Message]:
    with container.store.transaction() as repo:
        return repo.recent_messages(sid, 100)


def test_context_has_system_videos_in_order_history_then_message(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    user, _ = make_user(container)
    sid = new_session(container, user)
    add_video(container, sid, "BBBBBBBBBBB", title="Second", seconds=2)
    add_video(container, sid, "AAAAAAAAAAA", title="First", seconds=1)
    add_video(container, sid, "CCCCCCCCCCC", status="processing", title="Pending one", seconds=3)
    fake_claude.enqueue(Reply(text="First answer."), Reply(text="Second answer."))
    turn(container, claude, user, sid, "What is this about?")
    events, result = turn(container, claude, user, sid, "Tell me more")
    assert result.status == "complete" and result.text == "Second answer."

    body = fake_claude.message_requests[-1].body
    system = body["system"]
    assert len(system) == 1 and "research assistant" in system[0]["text"]
    assert "Pending one (still processing)" in system[0]["text"]  # named, not silently skipped
    # The ready videos open the conversation as citable documents, in the session's order.
    opening = body["messages"][0]
    documents = [b for b in opening["content"] if b["type"] == "document"]
    assert [d["title"] for d in documents] == ["First", "Second"]
    assert "AAAAAAAAAAA" in documents[0]["context"] and "Summary of First." in documents[0]["context"]
    assert all(d["citations"] == {"enabled": True} and d["source"]["type"] == "content" for d in documents)
    parts = [p["text"] for p in documents[1]["source"]["content"]]
    assert any("[01:05] Second line two" in p for p in parts)  # timed transcript lines
    assert "cache_control" not in documents[0] and documents[1]["cache_control"] == {"type": "ephemeral"}
    texts = [(m["role"], [c["text"] for c in m["content"] if c["type"] == "text"]) for m in body["messages"]]
    assert texts == [
        ("user", ["What is this about?"]),
        ("assistant", ["First answer."]),
        ("user", ["Tell me more"]),
    ]
    assert body["messages"][1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    # The stable prefix is read back from the prompt cache on the follow-up turn.
    assert result.message.usage.cache_read_tokens > 0
    assert events[0].type == "stage" and events[-1].type == "complete"
    assert events[-2].type == "usage"


def test_selected_videos_limit_the_context(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    user, _ = make_user(container)
    sid = new_session(container, user)
    add_video(container, sid, "AAAAAAAAAAA", title="First")
    add_video(container, sid, "BBBBBBBBBBB", title="Second", seconds=1)
    turn(container, claude, user, sid, "Only the second", ["BBBBBBBBBBB"])
    opening = fake_claude.message_requests[-1].body["messages"][0]["content"]
    contexts = " ".join(b.get("context", "") for b in opening if b["type"] == "document")
    assert "BBBBBBBBBBB" in contexts and "AAAAAAAAAAA" not in contexts


def test_history_is_trimmed_oldest_first(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    container.settings = container.settings.model_copy(update={"context_budget_tokens": 2_000})
    user, _ = make_user(container)
    sid = new_session(container, user)
    base = utcnow() - timedelta(hours=1)
    with container.store.transaction() as repo:
        for i in range(40):
            repo.add_message(
                session_id=sid,
                role="user" if i % 2 == 0 else "assistant",
                content=f"old message {i} " + "padding " * 20,
                created_at=base + timedelta(seconds=i),
            )
    turn(container, claude, user, sid, "newest question")
    sent = [
        " ".join(c["text"] for c in m["content"] if c["type"] == "text")
        for m in fake_claude.message_requests[-1].body["messages"]
    ]
    assert sent[-1] == "newest question"
    assert any("old message 39" in t for t in sent)  # the newest history is kept
    assert not any("old message 0 " in t for t in sent)  # the oldest was dropped
    assert 1 < len(sent) < 41


def test_errors_before_the_first_token_are_retried(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    user, _ = make_user(container)
    sid = new_session(container, user)
    fake_claude.enqueue(
        ErrorReply(status=429, retry_after=0),
        ErrorReply(status=529),
        MidStreamError(after_chunks=0),
        Reply(text="Finally."),
    )
    events, result = turn(container, claude, user, sid, "hello")
    assert result.status == "complete" and result.text == "Finally."
    assert len(fake_claude.message_requests) == 4
    assert [e.type for e in events if e.type in ("error", "complete")] == ["complete"]


def test_mid_stream_failure_keeps_the_partial_text(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    user, _ = make_user(container)
    sid = new_session(container, user)
    fake_claude.enqueue(DropConnection(after_chunks=3, text="abcdefgh" * 10, chunk_size=8))
    events, result = turn(container, claude, user, sid, "hello")
    assert result.status == "failed"
    error = events[-1]
    assert (
        error.type == "error" and error.data["code"] == "MODEL_STREAM_INTERRUPTED" and error.data["retryable"]
    )
    streamed = "".join(e.data["text"] for e in events if e.type == "token")
    assert streamed == "abcdefgh" * 3 == result.text
    saved = messages(container, sid)
    assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "failed")]
    assert saved[-1].content == streamed and saved[-1].error_code == "MODEL_STREAM_INTERRUPTED"
    assert len(fake_claude.message_requests) == 1  # never retried once text was sent


def test_token_deltas_are_coalesced(container: Container, claude: Any, fake_claude: FakeAnthropic) -> None:
    user, _ = make_user(container)
    sid = new_session(container, user)
    text = "word " * 200
    fake_claude.enqueue(Reply(text=text, chunk_size=1))
    events, result = turn(container, claude, user, sid, "hello")
    tokens = [e for e in events if e.type == "token"]
    assert "".join(e.data["text"] for e in tokens) == text == result.text
    assert len(tokens) < len(text) / 10  # a thousand deltas became a few dozen events


@pytest.mark.parametrize("bad", ["", "   ", "x" * 9000])
def test_bad_messages_change_nothing(container: Container, claude: Any, bad: str) -> None:
    from ytresearch.errors import InvalidInputError, PayloadTooLargeError

    user, _ = make_user(container)
    sid = new_session(container, user)
    with pytest.raises((InvalidInputError, PayloadTooLargeError)):
        turn(container, claude, user, sid, bad)
    assert messages(container, sid) == []


def test_the_stream_coalescing_interval_is_a_setting(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    """With a long interval only the 64-character bound splits the reply: the first delta alone,
    then 64-character events, then the rest."""
    from streaming_service.chat_requests import ChatRequestManager

    user, _ = make_user(container)
    sid = new_session(container, user)
    text = "abcdefgh" * 40
    fake_claude.enqueue(Reply(text=text, chunk_size=8))
    settings = container.settings.model_copy(update={"stream_coalesce_seconds": 10.0})

    async def go() -> list[StreamEvent]:
        manager = ChatRequestManager(container.store, settings, claude)
        await manager.start()
        try:
            row = await manager.start_request(user, sid, "hello", None)
            live = manager.live[row.id]
            assert live.task is not None
            await live.task
            return live.events
        finally:
            await manager.stop()

    tokens = [e.data["text"] for e in asyncio.run(go()) if e.type == "token"]
    assert "".join(tokens) == text
    assert [len(t) for t in tokens] == [8, 64, 64, 64, 64, 56]
