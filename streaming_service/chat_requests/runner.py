"""Starting and running one request: its row and the user's message in one transaction, then the
chat engine's turn as a background task whose events fan out to readers and go to the log.
"""

from __future__ import annotations

import asyncio
import logging

from streaming_service.chat_requests.deps import ChatRequestDeps
from streaming_service.chat_requests.event_log import EventLog
from streaming_service.chat_requests.live import LiveRequest
from ytresearch.db.models import ChatRequest, utcnow
from ytresearch.errors import DependencyUnavailableError
from ytresearch.observability.metrics import CHAT_REPLIES, ERRORS, code_dimension
from ytresearch.services.agent.loop import Agent
from ytresearch.services.chat import run_turn
from ytresearch.services.context import ChatQuestion, ContextDeps, PreparedTurn, prepare_turn_in
from ytresearch.services.endings import CANCELLED, ending_event, internal_error, status_of

log = logging.getLogger(__name__)


class RequestRunner:
    """Starts requests on this process and sees each one to its end."""

    def __init__(self, deps: ChatRequestDeps, event_log: EventLog) -> None:
        self.deps = deps
        self.event_log = event_log

    async def start(self, question: ChatQuestion) -> ChatRequest:
        # A paused model (its circuit breaker opened) is refused fast, before any work.
        if (wait := self.deps.model.paused_for()) is not None:
            raise DependencyUnavailableError(
                "the AI model is failing; requests are paused briefly while it recovers",
                code="MODEL_CIRCUIT_OPEN",
                details={"retry_after": wait},
            )
        row, turn = await asyncio.to_thread(self.begin, question)
        live = LiveRequest(
            id=row.id,
            user_id=question.user.id,
            wrote=self.event_log.dirty,
            urgent=self.event_log.urgent,
            checkpoint_seconds=self.deps.settings.stream_checkpoint_seconds,
        )
        self.deps.live[row.id] = live
        agent = self.deps.agent
        with_tools = Agent.for_turn(agent, question.user, turn, row.id) if agent is not None else None
        live.task = asyncio.create_task(self._run(live, turn, with_tools), name=f"chat-{row.id}")
        log.info("chat request %s started", row.id, extra={"chat_request_id": str(row.id)})
        self.deps.gauge.send()
        return row

    def begin(self, question: ChatQuestion) -> tuple[ChatRequest, PreparedTurn]:
        """One transaction: the limits, the user's message and context, the request row."""
        settings = self.deps.settings
        now = utcnow()
        with self.deps.store.transaction() as repo:
            turn = prepare_turn_in(
                repo,
                ContextDeps(
                    settings=settings,
                    model=self.deps.model,
                    max_tokens=settings.chat_max_tokens,
                    agent=self.deps.agent is not None,
                ),
                question,
                limit_active=True,
            )
            row = repo.add_chat_request(
                user_id=question.user.id,
                session_id=turn.session_id,
                user_message_id=turn.user_message_id,
                video_ids=turn.video_ids,
                status="streaming",
                owner=self.deps.owner,
                heartbeat_at=now,
                created_at=now,
                expires_at=now + self.deps.keep_for,
            )
            return row, turn

    async def _run(self, live: LiveRequest, turn: PreparedTurn, agent: Agent | None) -> None:
        settings = self.deps.settings
        try:
            await run_turn(
                self.deps.store,
                self.deps.model,
                turn,
                live.emit,
                coalesce_interval=settings.stream_coalesce_seconds,
                save_timeout=settings.reply_save_timeout_seconds,
                reference=str(live.id),
                agent=agent,
            )
        except asyncio.CancelledError:
            # A cancel that landed outside the engine's own handling (e.g. before it started):
            # the request must still end, so readers stop and the active-request count drops.
            if not live.finished:
                live.emit(ending_event(CANCELLED, live.text))
        except Exception:  # the engine handles model errors; this is the last resort
            log.exception("chat request %s crashed", live.id)
            if not live.finished:
                live.emit(ending_event(internal_error(str(live.id)), live.text))
        finally:
            self._finished(live)
            if live.detached:
                await self.event_log.record_detached_end(live)

    def _finished(self, live: LiveRequest) -> None:
        """ChatReplies by final status, Errors by code for a failed reply, the new ActiveStreams,
        and one log line (ids, status, sizes; never the text)."""
        terminal = live.terminal
        status = status_of(terminal) if terminal else "failed"
        code = code_dimension(terminal.data.get("code")) if terminal and terminal.type == "error" else None
        self.deps.metrics.count(CHAT_REPLIES, status=status)
        if code is not None:
            self.deps.metrics.count(ERRORS, code=code)
        self.deps.gauge.send()
        log.log(
            logging.WARNING if status == "failed" else logging.INFO,
            "chat request %s finished: %s",
            live.id,
            status,
            extra={
                "chat_request_id": str(live.id),
                "status": status,
                "error_code": code,
                "reply_chars": len(live.text),
                "events": len(live.events),
            },
        )
