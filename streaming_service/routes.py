"""Streaming routes: POST-then-SSE, polling, cancel, one-step SSE, WebSocket and ingest progress.
Thin: each route authenticates, calls the request manager or a service, and renders events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, field_validator

from streaming_service.chat_requests import RECONNECT_MS, ChatRequestManager
from streaming_service.jobs import job_events
from streaming_service.session_updates import follow_session, latest_change
from ytresearch.events import EventType, StreamEvent, sse_comment, sse_retry
from ytresearch.services.users import AuthUser
from ytresearch.views import RequestStatusOut, ToolsMode
from ytresearch.web.auth import ContainerDep, CurrentUser
from ytresearch.web.errors import ERROR_RESPONSES, ErrorResponse, error_response
from ytresearch.web.models import ApprovalIn, Question, VideoIds, no_nul
from ytresearch.web.sse import EventStreamResponse

router = APIRouter(responses=ERROR_RESPONSES)

# One SSE event as clients parse it (the OpenAPI 3.2 `itemSchema`, as FastAPI writes it for its own
# SSE routes): `data` is JSON, `id` the per-request sequence (absent on the first frame of the
# one-step stream). Comments (pings) and `retry:` frames are not events.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": list(get_args(EventType)),
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events (errors before the stream starts are JSON, as everywhere).",
        "content": {"text/event-stream": {"itemSchema": SSE_EVENT_SCHEMA}},
    }
}
EXPIRED_RESPONSE: dict[int | str, dict[str, Any]] = {
    410: {"model": ErrorResponse, "description": "The chat request has expired."}
}


async def get_manager(request: Request) -> ChatRequestManager:
    manager: ChatRequestManager = request.app.state.manager
    return manager


Manager = Annotated[ChatRequestManager, Depends(get_manager)]


class ChatIn(BaseModel):
    # Not ``Strict``: the message is kept as typed (the chat engine trims it and says when it is empty).
    model_config = ConfigDict(extra="forbid")
    message: Question
    video_ids: VideoIds = None
    tools: ToolsMode | None = None  # the agent's tools for this reply; None: the session's default

    @field_validator("message")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        no_nul(value)
        return value


class ChatStarted(BaseModel):
    request_id: uuid.UUID
    stream_url: str
    status: str


class CancelOut(BaseModel):
    request_id: uuid.UUID
    status: str


MAX_EVENT_ID = 2**31 - 1  # ids are a per-request sequence, stored as a 32-bit INTEGER


def parse_last_event_id(value: str | None) -> int:
    text = (value or "").strip()
    if text == "":
        return 0
    # ASCII digits only ("²".isdigit() is true, but int("²") fails), and small enough for the
    # database to compare with (a huge id broke the stream after it had started).
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_EVENT_ID:
        from ytresearch.errors import InvalidInputError

        raise InvalidInputError("Last-Event-ID must be an event id from this stream", code="INVALID_EVENT_ID")
    return int(text)


async def sse_frames(
    manager: ChatRequestManager,
    request_id: uuid.UUID,
    after: int,
    user: AuthUser,
    transport: str = "sse",
    opening: str = "",
) -> AsyncIterator[str]:
    """A reply's events as SSE frames (after the reconnect delay and ``opening``), each measured
    as it goes out (``stream_meter``)."""
    meter = manager.meters.start(transport, request_id, user.id, after)
    try:
        first = sse_retry(RECONNECT_MS) + opening
        meter.sent(None, len(first.encode()))
        yield first
        async for event in manager.follow(request_id, after):
            frame = render_sse(event)
            meter.sent(event, len(frame.encode()))
            yield frame
    finally:
        meter.close()


def render_sse(event: StreamEvent | None) -> str:
    if event is None:
        return sse_comment()
    if event.type == "reconnect":  # the server is going away: come back (elsewhere) soon
        return sse_retry(RECONNECT_MS) + event.sse()
    return event.sse()


@router.get("/health/live", tags=["health"])
def liveness(manager: Manager) -> Response:
    """For the load balancer and the container: 503 only while draining, so a database outage
    (reported by /health) does not make ECS replace healthy tasks."""
    if manager.draining:
        return error_response(503, "SERVICE_DRAINING", "this server is shutting down")
    return Response(content='{"status":"ok"}', media_type="application/json")


@router.get("/health", tags=["health"])
def health(container: ContainerDep, manager: Manager) -> Response:
    if manager.draining:
        return error_response(
            503,
            "SERVICE_DRAINING",
            "this server is shutting down",
            {"status": "draining", "active_streams": manager.active_count},
        )
    if not container.database_ok():
        return error_response(
            503,
            "DATABASE_UNAVAILABLE",
            "the database is unavailable",
            {"status": "degraded", "database": "down"},
        )
    from ytresearch import __version__

    return Response(
        content=f'{{"status":"ok","database":"up","version":"{__version__}",'
        f'"active_streams":{manager.active_count}}}',
        media_type="application/json",
    )


@router.post("/v1/sessions/{session_id}/chat", status_code=201, response_model=ChatStarted, tags=["chat"])
async def start_chat(session_id: uuid.UUID, body: ChatIn, user: CurrentUser, manager: Manager) -> ChatStarted:
    row = await manager.start_request(user, session_id, body.message, body.video_ids, tools=body.tools)
    return ChatStarted(request_id=row.id, stream_url=f"/v1/streams/{row.id}", status=row.status)


@router.get(
    "/v1/streams/{request_id}",
    tags=["chat"],
    response_class=Response,
    response_model=None,
    responses={**SSE_RESPONSE, **EXPIRED_RESPONSE},
)
async def stream_chat(
    request_id: uuid.UUID,
    user: CurrentUser,
    manager: Manager,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStreamResponse:
    after = parse_last_event_id(last_event_id)
    await manager.check_access(user, request_id)
    frames = sse_frames(manager, request_id, after, user)
    return EventStreamResponse(frames, send_timeout=manager.settings.stream_send_timeout_seconds)


@router.get(
    "/v1/requests/{request_id}", response_model=RequestStatusOut, tags=["chat"], responses=EXPIRED_RESPONSE
)
async def request_status(request_id: uuid.UUID, user: CurrentUser, manager: Manager) -> RequestStatusOut:
    status = await manager.status(user, request_id)
    if status.text:
        manager.meters.first_polled_text(request_id)
    return status


@router.post(
    "/v1/requests/{request_id}/cancel", response_model=CancelOut, tags=["chat"], responses=EXPIRED_RESPONSE
)
async def cancel_request(request_id: uuid.UUID, user: CurrentUser, manager: Manager) -> CancelOut:
    return CancelOut(request_id=request_id, status=await manager.cancel(user, request_id))


class ApprovalOut(BaseModel):
    request_id: uuid.UUID
    call_id: str
    approved: bool


@router.post("/v1/requests/{request_id}/approvals", response_model=ApprovalOut, tags=["chat"])
async def approve_tool_call(
    request_id: uuid.UUID, body: ApprovalIn, user: CurrentUser, manager: Manager
) -> ApprovalOut:
    """Allow or refuse a tool call the reply is waiting on (``approval_required``), from any process."""
    decision = await manager.approve(user, request_id, body.call_id, body.approve)
    return ApprovalOut(request_id=request_id, call_id=body.call_id, approved=decision.approved)


@router.post(
    "/v1/sessions/{session_id}/messages/stream",
    tags=["chat"],
    response_class=Response,
    response_model=None,
    responses=SSE_RESPONSE,
)
async def stream_message(
    session_id: uuid.UUID, body: ChatIn, user: CurrentUser, manager: Manager
) -> EventStreamResponse:
    row = await manager.start_request(user, session_id, body.message, body.video_ids, tools=body.tools)

    # The request id first, so a client that loses this response can resume at /v1/streams/{id}.
    accepted = {"stage": "accepted", "request_id": str(row.id), "stream_url": f"/v1/streams/{row.id}"}
    opening = StreamEvent("stage", accepted).sse()
    frames = sse_frames(manager, row.id, 0, user, "sse_one_step", opening)
    return EventStreamResponse(frames, send_timeout=manager.settings.stream_send_timeout_seconds)


@router.get(
    "/v1/sessions/{session_id}/events",
    tags=["sessions"],
    response_class=Response,
    response_model=None,
    responses=SSE_RESPONSE,
)
async def session_events(
    session_id: uuid.UUID,
    user: CurrentUser,
    container: ContainerDep,
    manager: Manager,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStreamResponse:
    """``session_update`` events as the session's video list changes (added, removed, reordered,
    ready), from any process; ``Last-Event-ID`` resumes after a change, else only new ones come."""
    from ytresearch.services.sessions import get_session

    await asyncio.to_thread(get_session, container.store, user, session_id)  # 404 before the stream
    after = parse_last_event_id(last_event_id)
    if last_event_id is None:
        after = await asyncio.to_thread(latest_change, container.store, session_id)
    settings = manager.settings

    async def frames() -> AsyncIterator[str]:
        yield sse_retry(RECONNECT_MS)
        updates = follow_session(
            container.store,
            session_id,
            after,
            poll_interval=settings.session_poll_seconds,
            ping_interval=settings.stream_ping_seconds,
        )
        async for update in updates:
            if update is None:
                yield sse_comment()
            else:
                yield StreamEvent("session_update", update, id=update["id"]).sse()

    return EventStreamResponse(frames(), send_timeout=settings.stream_send_timeout_seconds)


@router.get(
    "/v1/jobs/{job_id}/events",
    tags=["jobs"],
    response_class=Response,
    response_model=None,
    responses=SSE_RESPONSE,
)
async def ingest_events(
    job_id: uuid.UUID,
    user: CurrentUser,
    container: ContainerDep,
    manager: Manager,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStreamResponse:
    """The job's progress: every stage done so far (queued = 1, each stage done 2-6, each with
    its time, message and findings), then the live ones, then the end (7); ``Last-Event-ID``
    resumes after any of them."""
    from ytresearch.services.videos import get_job

    after = parse_last_event_id(last_event_id)
    await asyncio.to_thread(get_job, container.store, user, job_id)  # 404 before the stream starts
    events = job_events(container.store, user, job_id, after=after, ping_interval=manager.ping_interval)
    return EventStreamResponse(events)
