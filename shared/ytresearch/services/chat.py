"""The chat engine: one turn of a conversation about a session's videos, used by every transport.

A turn saves the user's message first, builds the context (``context``: system prompt, one
cacheable block per video in a stable order, as much history as fits, the new message), streams
the model's reply as coalesced token events, and ends the reply (``endings``): saves the assistant
message with its final status and emits exactly one terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from ytresearch.config import Settings
from ytresearch.errors import DatabaseUnavailableError
from ytresearch.events import StreamEvent
from ytresearch.ports import (
    ChatModel,
    CitationDelta,
    ModelError,
    ModelRequest,
    StreamFinished,
    TextDelta,
    ToolCallRequested,
    ToolInputDelta,
)
from ytresearch.repository import Store
from ytresearch.services.agent.calls import AgentDeps
from ytresearch.services.agent.loop import Agent, converse
from ytresearch.services.context import ChatQuestion, ContextDeps, PreparedTurn, prepare_turn
from ytresearch.services.endings import (
    COMPLETE,
    Ending,
    Generation,
    SessionGoneError,
    TurnResult,
    end_reply,
    ending_for_cancel,
    internal_error,
)
from ytresearch.services.sources import Source, cite
from ytresearch.services.users import AuthUser
from ytresearch.views import MessageOut, ToolsMode

log = logging.getLogger(__name__)


class TokenCoalescer:
    """Buffers text deltas and emits one token event per ``interval`` seconds or ``max_chars``
    characters, whichever comes first, so a fast model does not cost one write per token."""

    def __init__(
        self, emit: Callable[[StreamEvent], None], *, interval: float = 0.03, max_chars: int = 64
    ) -> None:
        self.emit = emit
        self.interval = interval
        self.max_chars = max_chars
        self.buffer: list[str] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None
        self.flushed_any = False

    def add(self, text: str) -> None:
        self.buffer.append(text)
        self.size += len(text)
        if self.size >= self.max_chars or not self.flushed_any:
            # The first delta goes out at once: time to first token is what a reader feels.
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.buffer:
            text = "".join(self.buffer)
            self.buffer, self.size = [], 0
            self.flushed_any = True
            self.emit(StreamEvent("token", {"text": text}))


async def generate(
    model: ChatModel,
    request: ModelRequest,
    emit: Callable[[StreamEvent], None],
    generation: Generation,
    *,
    coalesce_interval: float = 0.03,
    coalesce_chars: int = 64,
    on_tool_call: Callable[[ToolCallRequested], None] | None = None,
    on_tool_input: Callable[[ToolInputDelta], None] | None = None,
    sources: Sequence[Source] = (),
) -> None:
    """Stream one model response into ``generation``, emitting coalesced token events, and hand
    each finished tool call to ``on_tool_call`` after the text before it (and the input of one
    still being written, for tools that stream it, to ``on_tool_input``). Usage adds up over the
    rounds of an agent's reply. Cancelling the calling task closes the upstream stream at once
    (the iterator is closed on exit)."""
    coalescer = TokenCoalescer(emit, interval=coalesce_interval, max_chars=coalesce_chars)
    try:
        async with contextlib.aclosing(model.stream(request)) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    if generation.first_token_at is None:
                        generation.first_token_at = time.monotonic()
                    # PostgreSQL text and JSON cannot hold NUL: a stray one must not cost the reply.
                    text = event.text.replace("\x00", "")
                    generation.parts.append(text)
                    coalescer.add(text)
                elif isinstance(event, CitationDelta):
                    cited = cite(sources, event)
                    if cited is not None:
                        coalescer.flush()  # the citation goes out just before the text it supports
                        generation.citations.append({**cited, "at": generation.size})
                        emit(StreamEvent("citation", cited))
                elif isinstance(event, ToolInputDelta):
                    coalescer.flush()  # the text said before the call goes out before it
                    if on_tool_input is not None:
                        on_tool_input(event)
                elif isinstance(event, ToolCallRequested):
                    coalescer.flush()  # the text said before the call goes out before it
                    if on_tool_call is not None:
                        on_tool_call(event)
                elif isinstance(event, StreamFinished):
                    generation.stop_reason = event.stop_reason
                    generation.usage = generation.usage + event.usage
                    generation.model = event.model
    finally:
        coalescer.flush()


async def run_turn(
    store: Store,
    model: ChatModel,
    turn: PreparedTurn,
    emit: Callable[[StreamEvent], None],
    *,
    coalesce_interval: float = 0.03,
    coalesce_chars: int = 64,
    save_timeout: float = 60.0,
    reference: str = "",
    agent: Agent | None = None,
) -> TurnResult:
    """Generate and save one reply, emitting stage/token/usage and then exactly one terminal event
    (complete, error or cancelled). Cancelling the task running this closes the upstream stream and
    saves the partial reply (as cancelled, or as the cancel message's ending says); a model error
    keeps the partial text as failed."""
    generation = Generation()
    emit(
        StreamEvent(
            "stage",
            {
                "stage": "generating",
                "model": model.name,
                "video_ids": turn.video_ids,
                "pending_video_ids": turn.pending_videos,
            },
        )
    )
    error: ModelError | None = None

    async def stream_round(
        request: ModelRequest,
        on_tool_call: Callable[[ToolCallRequested], None],
        on_tool_input: Callable[[ToolInputDelta], None],
    ) -> None:
        await generate(
            model,
            request,
            emit,
            generation,
            coalesce_interval=coalesce_interval,
            coalesce_chars=coalesce_chars,
            on_tool_call=on_tool_call,
            on_tool_input=on_tool_input,
            sources=turn.sources,
        )

    try:
        if agent is not None and turn.request.tools:
            await converse(turn.request, generation, emit, agent, stream_round)
        else:
            await stream_round(turn.request, lambda _call: None, lambda _input: None)
        ending = COMPLETE
    except asyncio.CancelledError as cancel:
        ending = ending_for_cancel(cancel)
    except ModelError as exc:
        error = exc
        ending = Ending("failed", exc.code, exc.message, exc.retryable)
    except Exception:
        # A bug, not a model error: say only that the server failed (``reference`` names the
        # request to quote), keep the partial reply, and leave the details to the log.
        log.exception("a reply failed (%s)", reference or "no reference")
        ending = internal_error(reference)
    result = await end_reply(store, model, turn, generation, ending, emit, save_timeout=save_timeout)
    result.error = error
    return result


async def chat_sync(
    store: Store,
    settings: Settings,
    model: ChatModel,
    user: AuthUser,
    session_id: uuid.UUID,
    text: str,
    video_ids: Sequence[str] | None,
    *,
    agent: AgentDeps | None = None,
    tools: ToolsMode | None = None,
) -> MessageOut:
    """One turn without streaming (the REST pattern): returns the saved assistant message, or
    raises the model's error after saving the partial reply as failed. With ``agent`` the model
    may use tools, bounded like any reply (an added video is not waited for)."""
    turn = await asyncio.to_thread(
        prepare_turn,
        store,
        ContextDeps(
            settings=settings, model=model, max_tokens=settings.sync_chat_max_tokens, agent=agent is not None
        ),
        ChatQuestion(user=user, session_id=session_id, text=text, video_ids=video_ids, tools=tools),
    )
    result = await run_turn(
        store,
        model,
        turn,
        lambda _event: None,
        save_timeout=settings.sync_reply_save_timeout_seconds,
        agent=Agent.for_turn(replace(agent, ingest_wait_seconds=0), user, turn)
        if agent is not None
        else None,
    )
    if result.message is None:
        if result.code == "SESSION_DELETED":
            raise SessionGoneError(f"session {session_id} was deleted while the reply was being written")
        raise DatabaseUnavailableError(
            "the reply could not be saved because the database is unavailable; please ask again",
            code="REPLY_NOT_SAVED",
        )
    if result.error is not None:
        result.error.details = {**result.error.details, "message_id": str(result.message.id)}
        raise result.error
    return result.message
