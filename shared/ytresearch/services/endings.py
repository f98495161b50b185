"""How a reply ends, in one place: the endings it can have, the terminal event that tells the client
(with the partial text), the one mapping from a terminal event to a final status, and saving the
reply with that status, whether it ends on its own server or is closed by another after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ytresearch.db.models import utcnow
from ytresearch.db.outage import is_outage
from ytresearch.errors import NotFoundError
from ytresearch.events import EventType, StreamEvent
from ytresearch.ports import ChatModel, ModelError, Usage
from ytresearch.repository import ACTIVE_REQUEST_STATUSES, Repository, Store
from ytresearch.repository.chat_requests import LoggedEvent, RequestEnd
from ytresearch.services.agent.calls import result_content
from ytresearch.services.artifacts import follow_draft, keep_draft
from ytresearch.services.context import PreparedTurn
from ytresearch.views import MessageOut

log = logging.getLogger(__name__)

FinalStatus = Literal["complete", "cancelled", "failed"]

# The one mapping between a reply's final status and the terminal event that tells it.
TERMINAL_EVENT_BY_STATUS: dict[FinalStatus, EventType] = {
    "complete": "complete",
    "cancelled": "cancelled",
    "failed": "error",
}
STATUS_BY_TERMINAL_EVENT = {event: status for status, event in TERMINAL_EVENT_BY_STATUS.items()}


def status_of(terminal: StreamEvent) -> FinalStatus:
    """The final status a terminal event gives its reply and its chat request."""
    return STATUS_BY_TERMINAL_EVENT[terminal.type]


def message_id_of(terminal: StreamEvent) -> uuid.UUID | None:
    """The saved reply a terminal event names, if any."""
    value = terminal.data.get("message_id")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


@dataclass
class Generation:
    """The mutable state of one reply while it streams."""

    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    model: str | None = None
    first_token_at: float | None = None
    # The agent's calls, each {call_id, name, input, ok, summary, content, at} where ``at`` is the
    # length of the text said before it; kept with the reply so later turns can send them back.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # The moments it cited, each {video_id, title, start, end, quote, url, at}: ``at`` is the
    # length of the text said before the cited text.
    citations: list[dict[str, Any]] = field(default_factory=list)
    # Artifacts shown while being written whose call did not finish, by call id, each {title,
    # kind, artifact_id, content} as told: saved with the reply, so no draft shown is lost.
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def size(self) -> int:
        return sum(map(len, self.parts))


@dataclass
class TurnResult:
    message: MessageOut | None  # None when the reply could not be saved
    text: str
    status: str
    error: ModelError | None = None
    code: str | None = None  # the error code a failed reply ended with


# Why a reply stopped before the model finished, given as the cancel message of its task.
SHUTDOWN = "shutdown"  # a draining server stopped it: saved as failed (REQUEST_INTERRUPTED)
SESSION_DELETED = "session-deleted"  # its session is gone: nothing to save it in
EVENT_LOG_FAILED = "event-log-failed"  # its events could not be written: saved as failed
TAKEN_OVER = "taken-over"  # another server closed it as orphaned (and saved it) meanwhile


@dataclass(frozen=True)
class Ending:
    """How a reply ends: the status it is saved with and, for a failed one, the error to tell."""

    status: FinalStatus
    code: str | None = None
    message: str = ""
    retryable: bool = False
    save: bool = True  # False when there is nowhere to save it (its session was deleted)


COMPLETE = Ending("complete")
CANCELLED = Ending("cancelled")
CANCEL_ENDINGS = {
    SHUTDOWN: Ending(
        "failed",
        "REQUEST_INTERRUPTED",
        "the server restarted before the reply finished; the partial reply was saved",
        retryable=True,
    ),
    SESSION_DELETED: Ending(
        "failed",
        "SESSION_DELETED",
        "the session was deleted while this reply was being written",
        save=False,
    ),
    EVENT_LOG_FAILED: Ending(
        "failed",
        "REPLY_NOT_STREAMED",
        "this reply could not be recorded for streaming; the partial reply was saved",
        retryable=True,
    ),
    TAKEN_OVER: Ending(
        "failed",
        "REQUEST_INTERRUPTED",
        "this server lost the database and another closed the reply; the partial reply was saved",
        retryable=True,
        save=False,
    ),
}
NOT_SAVED = Ending(
    "failed",
    "REPLY_NOT_SAVED",
    "the reply could not be saved because the database is unavailable; please ask again",
    retryable=True,
)
ORPHANED = Ending(  # its server died; another one closes it
    "failed",
    "REQUEST_INTERRUPTED",
    "the server handling this reply stopped; the partial reply was saved",
    retryable=True,
)


def internal_error(reference: str = "") -> Ending:
    """A bug, not a model error: say only that the server failed, naming the request to quote."""
    where = f" (request id {reference})" if reference else ""
    return Ending("failed", "INTERNAL_ERROR", f"the server failed while writing this reply{where}", True)


def ending_for_cancel(cancel: asyncio.CancelledError) -> Ending:
    reason = cancel.args[0] if cancel.args else None
    return CANCEL_ENDINGS.get(reason, CANCELLED) if isinstance(reason, str) else CANCELLED


def ending_event(
    ending: Ending,
    text: str,
    *,
    message_id: uuid.UUID | None = None,
    stop_reason: str | None = None,
    model: str | None = None,
) -> StreamEvent:
    """The terminal event that tells a client how its reply ended, with the whole text it was
    sent, the saved reply's id when there is one, and for a failed reply the error."""
    data: dict[str, Any] = {"text": text}
    if message_id is not None:
        data["message_id"] = str(message_id)
    if ending.status == "complete":
        data.update(stop_reason=stop_reason, model=model)
    elif ending.status == "failed":
        data = {"code": ending.code, "message": ending.message, "retryable": ending.retryable, **data}
    return StreamEvent(TERMINAL_EVENT_BY_STATUS[ending.status], data)


def record_reply(
    repo: Repository,
    session_id: uuid.UUID,
    generation: Generation,
    status: str,
    *,
    model_name: str,
    error_code: str | None = None,
    video_ids: list[str] | None = None,
) -> MessageOut:
    """Save the assistant message with its final status (the caller touches the session)."""
    message = repo.add_message(
        session_id=session_id,
        role="assistant",
        content=generation.text,
        status=status,
        model=generation.model or model_name,
        input_tokens=generation.usage.input_tokens,
        output_tokens=generation.usage.output_tokens,
        cache_read_tokens=generation.usage.cache_read_tokens,
        cache_creation_tokens=generation.usage.cache_creation_tokens,
        stop_reason=generation.stop_reason,
        error_code=error_code,
        video_ids=video_ids or None,
        tool_calls=generation.tool_calls or None,
        citations=generation.citations or None,
    )
    for draft in generation.drafts.values():
        keep_draft(repo, session_id, draft)
    return MessageOut.of(message)


class SessionGoneError(NotFoundError):
    """The session was deleted while its reply was being written: there is nowhere to save it."""

    code = "SESSION_DELETED"


def save_reply(
    store: Store,
    turn: PreparedTurn,
    generation: Generation,
    status: str,
    *,
    model_name: str,
    error_code: str | None = None,
) -> MessageOut:
    with store.transaction() as repo:
        # Touched first: one statement checks the session exists and locks it until the commit.
        if not repo.touch_session(turn.session_id):
            raise SessionGoneError(f"session {turn.session_id} was deleted")
        return record_reply(
            repo,
            turn.session_id,
            generation,
            status,
            model_name=model_name,
            error_code=error_code,
            video_ids=turn.video_ids,
        )


def usage_data(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_creation_tokens": usage.cache_creation_tokens,
    }


async def end_reply(
    store: Store,
    model: ChatModel,
    turn: PreparedTurn,
    generation: Generation,
    ending: Ending,
    emit: Callable[[StreamEvent], None],
    *,
    save_timeout: float,
) -> TurnResult:
    """The one place a reply ends: save it with its status (retried through a database outage of
    up to ``save_timeout`` seconds, since the text is in memory), then emit exactly one terminal
    event that tells the truth: ``complete`` only once the reply is saved; otherwise ``cancelled``
    or ``error`` with the partial text. A cancel that arrives while saving changes nothing."""
    saving = asyncio.ensure_future(_save_until(store, model, turn, generation, ending, save_timeout))
    while not saving.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({saving})  # a cancel of this task leaves the save running
    try:
        saved = saving.result()
    except SessionGoneError:
        ending, saved = CANCEL_ENDINGS[SESSION_DELETED], None
    except Exception as exc:
        if not is_outage(exc):
            raise
        ending, saved = NOT_SAVED, None
    message_id = saved.id if saved is not None else None
    if ending.status == "complete" and saved is not None:
        emit(StreamEvent("usage", usage_data(generation.usage)))
        emit(
            ending_event(
                ending,
                generation.text,
                message_id=message_id,
                stop_reason=generation.stop_reason,
                model=saved.model,
            )
        )
    else:
        emit(ending_event(ending, generation.text, message_id=message_id))
    status = ending.status if saved is not None else "failed"
    return TurnResult(saved, generation.text, status, code=ending.code)


async def _save_until(
    store: Store,
    model: ChatModel,
    turn: PreparedTurn,
    generation: Generation,
    ending: Ending,
    timeout: float,
) -> MessageOut | None:
    if not ending.save:
        return None
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return await asyncio.to_thread(
                save_reply,
                store,
                turn,
                generation,
                ending.status,
                model_name=model.name,
                error_code=ending.code,
            )
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("could not save a reply (database unavailable); retrying in %.1f s", delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def record_request_end(
    repo: Repository, request_id: uuid.UUID, terminal: StreamEvent, *, now: datetime, keep_for: timedelta
) -> None:
    """Record on a chat request how its terminal event ended it: the final status, the event's id,
    the saved reply, and how long its events are kept."""
    repo.finish_chat_request(
        request_id,
        RequestEnd(
            status=status_of(terminal),
            last_seq=terminal.id or 0,
            finished_at=now,
            expires_at=now + keep_for,
            assistant_message_id=message_id_of(terminal),
        ),
    )


def generation_from_log(events: Sequence[LoggedEvent]) -> Generation:
    """A reply as its event log tells it: the text, and the tool calls whose results were told
    (each placed after the text said before its result, as the live reply keeps them)."""
    generation = Generation()
    size = 0
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.type == "token":
            text = str(event.data.get("text", ""))
            generation.parts.append(text)
            size += len(text)
        elif event.type == "citation":
            generation.citations.append({**event.data, "at": size})
        elif event.type == "artifact":
            follow_draft(generation.drafts, event.data)
        elif event.type == "tool_call":
            calls[str(event.data.get("call_id"))] = event.data
        elif event.type == "tool_result" and (call := calls.get(str(event.data.get("call_id")))):
            generation.tool_calls.append(
                {
                    "call_id": call["call_id"],
                    "name": call.get("name"),
                    "input": call.get("input") or {},
                    "ok": bool(event.data.get("ok")),
                    "summary": event.data.get("summary", ""),
                    "content": result_content(event.data),
                    "at": size,
                }
            )
    return generation


def close_orphaned_request(
    repo: Repository,
    request_id: uuid.UUID,
    *,
    stale_after: timedelta,
    model_name: str,
    keep_for: timedelta,
) -> bool:
    """A request whose server died (no heartbeat for ``stale_after``): save what it had streamed
    as a failed reply, so no reply is left without a status, and end its log with the error event
    that says so, under an id no client has seen. False when it is not (or no longer) orphaned."""
    row = repo.get_chat_request(request_id, for_update=True)
    cutoff = utcnow() - stale_after
    if (
        row is None
        or row.status not in ACTIVE_REQUEST_STATUSES
        or (row.heartbeat_at is not None and row.heartbeat_at >= cutoff)
    ):
        return False
    events = repo.chat_events_after(request_id, 0)
    generation = generation_from_log(events)
    text = generation.text
    saved = record_reply(
        repo,
        row.session_id,
        generation,
        ORPHANED.status,
        model_name=model_name,
        error_code=ORPHANED.code,
        video_ids=list(row.video_ids or []),
    )
    repo.touch_session(row.session_id)
    seq = (events[-1].seq if events else 0) + 1  # an id no client has seen
    terminal = replace(ending_event(ORPHANED, text, message_id=saved.id), id=seq)
    repo.add_chat_events([(request_id, seq, terminal.type, terminal.data)])
    record_request_end(repo, request_id, terminal, now=utcnow(), keep_for=keep_for)
    return True
