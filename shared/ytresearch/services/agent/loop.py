"""The agent loop: model -> tool calls -> results -> model, until the model ends its turn or a bound
is reached. Each call is told as events (tool_call, tool_progress, tool_result, limit_reached)
between the reply's tokens, recorded as an action row, and kept with the reply for later turns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ytresearch.errors import AppError
from ytresearch.events import StreamEvent
from ytresearch.observability.metrics import TOOL_CALLS
from ytresearch.ports import (
    ContentBlock,
    MessageBlock,
    ModelMessage,
    ModelRequest,
    ToolCallRequested,
    ToolInputDelta,
    ToolResultBlock,
    ToolUseBlock,
)
from ytresearch.services.agent.approvals import wait_for_decision
from ytresearch.services.agent.artifacts import ArtifactDrafts, artifact_ending
from ytresearch.services.agent.calls import (
    AgentDeps,
    ToolCall,
    ToolOutcome,
    VideoBudget,
    limit_event,
)
from ytresearch.services.agent.inputs import INPUTS, MUTATING, STREAMED_INPUT, ToolInput, parse_input
from ytresearch.services.agent.tools import execute
from ytresearch.services.context import PreparedTurn
from ytresearch.services.endings import Generation
from ytresearch.services.users import AuthUser
from ytresearch.views import ToolsMode

log = logging.getLogger(__name__)

ROUND_LIMIT_NOTE = (
    "The tool round limit for this reply is reached: answer now with what you have, without tools."
)


@dataclass(frozen=True, kw_only=True)
class Agent:
    """One reply's agent: whose session it acts on, which request and message it answers."""

    deps: AgentDeps
    user: AuthUser
    session_id: uuid.UUID
    message_id: uuid.UUID | None = None  # the user's message the reply answers
    request_id: uuid.UUID | None = None  # the chat request (None on sync REST)
    mode: ToolsMode = "auto"

    @classmethod
    def for_turn(
        cls, deps: AgentDeps, user: AuthUser, turn: PreparedTurn, request_id: uuid.UUID | None = None
    ) -> Agent:
        return cls(
            deps=deps,
            user=user,
            session_id=turn.session_id,
            message_id=turn.user_message_id,
            request_id=request_id,
            mode=turn.tools_mode,
        )

    def _agent_added(self) -> int:
        with self.deps.store.transaction() as repo:
            return repo.count_agent_added_videos(self.session_id)

    def video_budget(self) -> VideoBudget:
        settings = self.deps.settings
        return VideoBudget(
            settings.agent_max_videos_per_reply,
            lambda: settings.agent_max_videos_per_session - self._agent_added(),
        )

    async def run(
        self, requested: ToolCallRequested, emit: Callable[[StreamEvent], None], budget: VideoBudget
    ) -> ToolOutcome:
        """Check, (in "confirm" mode) get approval for, execute and record one requested call;
        never raises for the tool's own failures."""
        started = time.monotonic()
        try:
            tool_input = parse_input(requested.name, requested.input if requested.error is None else None)
        except AppError as exc:
            outcome = ToolOutcome.failed(exc.code, exc.message)
        else:
            refusal = await self._refusal(requested, emit) if requested.name in MUTATING else None
            outcome = refusal or await self._execute(requested, tool_input, emit, budget)
        await asyncio.to_thread(self._record, requested, outcome, int((time.monotonic() - started) * 1000))
        return outcome

    async def _refusal(
        self, requested: ToolCallRequested, emit: Callable[[StreamEvent], None]
    ) -> ToolOutcome | None:
        """In "confirm" mode: ask, wait, and tell the decision; the refusal outcome when declined."""
        if self.mode != "confirm":
            return None
        if self.request_id is None:
            return ToolOutcome.failed(
                "APPROVAL_UNAVAILABLE",
                "this action needs the person's approval, which only a streaming chat can ask for",
                status="refused",
            )
        call_id = requested.call_id
        emit(
            StreamEvent(
                "approval_required",
                {"call_id": call_id, "name": requested.name, "input": requested.input or {}},
            )
        )
        decision = await wait_for_decision(
            self.deps.store,
            self.request_id,
            call_id,
            timeout=self.deps.settings.agent_approval_timeout_seconds,
            poll=self.deps.poll_seconds,
        )
        emit(StreamEvent("approval", {"call_id": call_id, "approved": decision.approved, "by": decision.by}))
        if decision.approved:
            return None
        if decision.by == "timeout":
            seconds = int(self.deps.settings.agent_approval_timeout_seconds)
            message = f"no approval came within {seconds} s, so this was not done; ask the person first"
        else:
            message = "the person declined this action; it was not done"
        return ToolOutcome.failed("NOT_APPROVED", message, status="refused")

    async def _execute(
        self,
        requested: ToolCallRequested,
        tool_input: ToolInput,
        emit: Callable[[StreamEvent], None],
        budget: VideoBudget,
    ) -> ToolOutcome:
        def progress(stage: str, message: str, extra: dict[str, Any]) -> None:
            data = {"call_id": requested.call_id, "stage": stage, "message": message, **extra}
            emit(StreamEvent("tool_progress", data))

        call = ToolCall(
            call_id=requested.call_id,
            name=requested.name,
            input=tool_input,
            user=self.user,
            session_id=self.session_id,
            progress=progress,
            request_id=self.request_id,
        )
        try:
            outcome = await execute(self.deps, call, budget)
        except Exception:
            log.exception("the %s tool failed", requested.name)
            outcome = ToolOutcome.failed("TOOL_FAILED", f"the {requested.name} tool failed on the server")
        if outcome.limit is not None:
            emit(limit_event(outcome.limit, self._maximum(outcome.limit)))
        return outcome

    def _maximum(self, limit: str) -> int:
        settings = self.deps.settings
        if limit == "videos_per_session":
            return settings.agent_max_videos_per_session
        return settings.agent_max_videos_per_reply

    def _record(self, requested: ToolCallRequested, outcome: ToolOutcome, duration_ms: int) -> None:
        """The action row (audit and undo). A failure to write it is logged, not fatal: the tool
        already acted, and the reply goes on."""
        try:
            with self.deps.store.transaction() as repo:
                repo.add_action(
                    user_id=self.user.id,
                    session_id=self.session_id,
                    tool=requested.name,
                    input=requested.input or {},
                    status=outcome.status if not outcome.ok else "done",
                    result=outcome.event_data(),
                    mutating=requested.name in MUTATING,
                    undo=outcome.undo,
                    duration_ms=duration_ms,
                    request_id=self.request_id,
                    message_id=self.message_id,
                )
        except Exception:
            log.exception("could not record the %s action", requested.name)
        tool = requested.name if requested.name in INPUTS else "unknown"  # a bounded dimension
        status = outcome.status if not outcome.ok else "done"
        self.deps.metrics.count(TOOL_CALLS, tool=tool, outcome=status)


# One model stream: the request, then what to do with each finished call and each partial input.
Round = Callable[
    [ModelRequest, Callable[[ToolCallRequested], None], Callable[[ToolInputDelta], None]], Awaitable[None]
]


async def converse(
    request: ModelRequest,
    generation: Generation,
    emit: Callable[[StreamEvent], None],
    agent: Agent,
    stream_round: Round,
) -> None:
    """Rounds of ``stream_round`` (one model stream into ``generation``) with the tools' results
    in between, until the model ends its turn or a bound is hit."""
    settings = agent.deps.settings
    messages = list(request.messages)
    budget = agent.video_budget()
    drafts = ArtifactDrafts(emit, generation.drafts)
    rounds = 0
    calls: list[ToolCallRequested] = []

    def on_call(call: ToolCallRequested) -> None:
        calls.append(call)
        tool_input = call.input if call.input is not None else {}
        emit(StreamEvent("tool_call", {"call_id": call.call_id, "name": call.name, "input": tool_input}))

    while True:
        calls.clear()
        said_from = generation.size
        await stream_round(replace(request, messages=messages), on_call, drafts.update)
        if generation.stop_reason != "tool_use" or not calls:
            return
        if rounds >= settings.agent_max_tool_rounds:
            emit(limit_event("tool_rounds", settings.agent_max_tool_rounds))
            return
        used = generation.usage.input_tokens + generation.usage.output_tokens
        used += generation.usage.cache_read_tokens + generation.usage.cache_creation_tokens
        if used >= settings.agent_max_reply_tokens:
            emit(limit_event("tokens_per_reply", settings.agent_max_reply_tokens))
            return
        rounds += 1
        said = generation.text[said_from:]
        uses: list[MessageBlock] = [ContentBlock(said)] if said.strip() else []
        results: list[MessageBlock] = []
        for call in calls:
            outcome = await agent.run(call, emit, budget)
            if call.name in STREAMED_INPUT:
                drafts.tell(artifact_ending(call, outcome))
            emit(
                StreamEvent(
                    "tool_result", {"call_id": call.call_id, "name": call.name, **outcome.event_data()}
                )
            )
            generation.tool_calls.append(
                {
                    "call_id": call.call_id,
                    "name": call.name,
                    "input": call.input or {},
                    "ok": outcome.ok,
                    "summary": outcome.summary,
                    "content": outcome.content,
                    "at": generation.size,
                }
            )
            uses.append(ToolUseBlock(call.call_id, call.name, call.input or {}))
            results.append(ToolResultBlock(call.call_id, outcome.content, is_error=not outcome.ok))
        if rounds >= settings.agent_max_tool_rounds:
            results.append(ContentBlock(ROUND_LIMIT_NOTE))
        messages += [ModelMessage("assistant", uses), ModelMessage("user", results)]
