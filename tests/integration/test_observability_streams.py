"""Chat metrics through the request manager and the real Claude adapter (the real anthropic SDK
against the protocol-faithful fake server), with the Container's measured model and an
in-memory metrics adapter: replies by status, errors by code, the active-streams gauge, time to
first token and token usage including prompt-cache reads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from streaming_service.chat_requests import ChatRequestManager
from tests.fakes.anthropic_server import DropConnection, ErrorReply, FakeAnthropic, Reply
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import DEFAULT_MODEL
from ytresearch.events import StreamEvent
from ytresearch.observability.chat_metrics import MeteredChatModel
from ytresearch.observability.metrics import InMemoryMetrics
from ytresearch.services.users import AuthUser


def new_session(container: Container, user: AuthUser) -> uuid.UUID:
    with container.store.transaction() as repo:
        return repo.add_session(user.id, "research").id


def chat(
    container: Container, claude: Any, action: str = "finish", seen: list[StreamEvent] | None = None
) -> InMemoryMetrics:
    """One chat request through a manager; ``action`` "cancel" cancels it after the first token.
    The events a reader saw go into ``seen``."""
    metrics = InMemoryMetrics()
    model = MeteredChatModel(claude, metrics)
    user, _ = make_user(container)
    sid = new_session(container, user)

    async def go() -> None:
        manager = ChatRequestManager(container.store, container.settings, model, metrics=metrics)
        await manager.start()
        try:
            row = await manager.start_request(user, sid, "How do solar panels work?", None)
            async for event in manager.follow(row.id):
                if event is not None and seen is not None:
                    seen.append(event)
                if action == "cancel" and event is not None and event.type == "token":
                    await manager.cancel(user, row.id)
                if event is not None and event.terminal:
                    break
        finally:
            await manager.stop()

    asyncio.run(go())
    return metrics


def test_a_finished_reply_is_measured(container: Container, claude: Any, fake_claude: FakeAnthropic) -> None:
    fake_claude.enqueue(Reply(text="Silicon cells free electrons.", usage={"cache_read_input_tokens": 1234}))
    metrics = chat(container, claude)
    assert metrics.values("ChatReplies", status="complete") == [1]
    assert len(metrics.values("TimeToFirstToken", purpose="chat")) == 1
    assert metrics.values("CacheReadTokens", purpose="chat") == [1234]
    assert metrics.values("OutputTokens", purpose="chat")[0] > 0
    assert metrics.values("Errors") == []
    assert metrics.values("ActiveStreams")[-2:] == [1, 0]  # up when it starts, down when it ends


def test_a_failed_reply_counts_its_error_code(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(DropConnection(after_chunks=2, text="abcdefgh" * 10, chunk_size=8))
    metrics = chat(container, claude)
    assert metrics.values("ChatReplies", status="failed") == [1]
    assert metrics.values("Errors", code="MODEL_STREAM_INTERRUPTED") == [1]
    assert metrics.values("OutputTokens") == []  # no usage arrived


def test_a_model_the_api_does_not_know_ends_the_stream_with_model_not_found(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(ErrorReply(status=404, message=f"model: {DEFAULT_MODEL}"))
    seen: list[StreamEvent] = []
    metrics = chat(container, claude, seen=seen)

    assert seen[-1].type == "error"
    assert (seen[-1].data["code"], seen[-1].data["retryable"]) == ("MODEL_UNAVAILABLE", False)
    assert len(fake_claude.requests) == 1  # not retried
    assert metrics.values("ChatReplies", status="failed") == [1]
    assert metrics.values("Errors", code="MODEL_UNAVAILABLE") == [1]


def test_a_cancelled_reply_is_counted_as_cancelled(
    container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(Reply(text="word " * 400, chunk_size=5, delay_per_chunk=0.01))
    metrics = chat(container, claude, action="cancel")
    assert metrics.values("ChatReplies", status="cancelled") == [1]
    assert metrics.values("Errors") == []
    assert metrics.values("ActiveStreams")[-1] == 0
