"""What the API returns: pydantic models built from rows inside a transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ytresearch.db.models import (
    AgentAction,
    Artifact,
    ArtifactVersion,
    IngestJob,
    Message,
    ResearchSession,
    SessionVideo,
    Video,
)

T = TypeVar("T")

ToolsMode = Literal["auto", "confirm", "off"]  # what the research agent may do in a reply
ArtifactKind = Literal["table", "outline", "notes", "document"]

INGEST_STAGES = ("validating", "fetching_transcript", "fetching_metadata", "summarising", "storing")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page.")
    has_more: bool


class VideoBrief(BaseModel):
    id: str
    url: str
    status: Literal["pending", "processing", "ready", "failed"]
    title: str | None
    channel: str | None
    thumbnail_url: str | None
    error_code: str | None

    @classmethod
    def of(cls, video: Video) -> VideoBrief:
        return cls(
            id=video.id,
            url=f"https://www.youtube.com/watch?v={video.id}",
            status=video.status,  # type: ignore[arg-type]  # the column holds only these values
            title=video.title,
            channel=video.channel,
            thumbnail_url=video.thumbnail_url,
            error_code=video.error_code,
        )


class SegmentOut(BaseModel):
    text: str
    start: float
    duration: float


class VideoOut(VideoBrief):
    channel_url: str | None
    duration_seconds: int | None
    published_at: datetime | None
    summary: str | None
    summary_model: str | None
    error_message: str | None
    transcript_language: str | None
    transcript_is_generated: bool | None
    transcript_text: str | None = None
    transcript_segments: list[SegmentOut] | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def full(cls, video: Video, *, with_transcript: bool = False) -> VideoOut:
        brief = VideoBrief.of(video).model_dump()
        return cls(
            **brief,
            channel_url=video.channel_url,
            duration_seconds=video.duration_seconds,
            published_at=video.published_at,
            summary=video.summary,
            summary_model=video.summary_model,
            error_message=video.error_message,
            transcript_language=video.transcript_language,
            transcript_is_generated=video.transcript_is_generated,
            transcript_text=video.transcript_text if with_transcript else None,
            transcript_segments=(
                [SegmentOut(**s) for s in video.transcript_segments or []] if with_transcript else None
            ),
            created_at=video.created_at,
            updated_at=video.updated_at,
        )


class SessionVideoOut(VideoBrief):
    added_at: datetime
    position: int | None = Field(
        description="Where an organize placed it (0-based); null: not placed, so it follows the "
        "placed videos, oldest added first. Lists come in this order."
    )
    group: str | None = Field(description="The group an organize put it in (a topic, a channel).")
    error_message: str | None = Field(
        default=None, description="Why its ingest failed, in words (with `error_code`); null unless failed."
    )

    @classmethod
    def of_link(cls, link: SessionVideo, video: Video) -> SessionVideoOut:
        return cls(
            **VideoBrief.of(video).model_dump(),
            added_at=link.added_at,
            position=link.position,
            group=link.group_label,
            error_message=video.error_message,
        )


class SessionOut(BaseModel):
    id: uuid.UUID
    title: str
    tools: ToolsMode | None = Field(
        description="What the research agent may do in this session's replies; null: the "
        "deployment's default."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ResearchSession) -> SessionOut:
        return cls(
            id=row.id,
            title=row.title,
            tools=row.tools_mode,  # type: ignore[arg-type]  # the column holds only these values
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class SessionDetailOut(SessionOut):
    videos: list[SessionVideoOut]


class StageDoneOut(BaseModel):
    """One ingest stage done: when, what it found (a human message), and the figures behind it
    (transcript language and length, segment count, summary tokens ...)."""

    stage: str
    at: datetime | None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    id: uuid.UUID
    video_id: str
    session_id: uuid.UUID | None
    status: Literal["queued", "running", "done", "failed"]
    stage: str | None
    stages_done: list[str]
    stages: list[str] = Field(default=list(INGEST_STAGES), description="All stages, in order.")
    progress: list[StageDoneOut] = Field(
        default_factory=list, description="The stages done, in order, each with its time and findings."
    )
    error_code: str | None
    error_message: str | None
    retryable: bool | None = None
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: IngestJob) -> JobOut:
        return cls(
            id=job.id,
            video_id=job.video_id,
            session_id=job.session_id,
            status=job.status,  # type: ignore[arg-type]  # the column holds only these values
            stage=job.stage,
            stages_done=[s["stage"] for s in job.stages_done or []],
            progress=stage_progress(job.stages_done or []),
            error_code=job.error_code,
            error_message=job.error_message,
            attempts=job.attempts,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
        )


class UsageOut(BaseModel):
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_creation_tokens: int | None


class MessageOut(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "cancelled", "failed"]
    model: str | None
    usage: UsageOut | None
    stop_reason: str | None
    error_code: str | None
    video_ids: list[str] | None
    tool_calls: list[dict[str, Any]] | None = Field(
        description="An assistant reply's tool calls, in the order made; null when it made none."
    )
    citations: list[dict[str, Any]] | None = Field(
        default=None,
        description="The moments an assistant reply cited, in order: {video_id, title, start, end, "
        "quote, url (the video at that second), at (where in the text)}; null when none.",
    )
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        usage = None
        if m.role == "assistant":
            usage = UsageOut(
                input_tokens=m.input_tokens,
                output_tokens=m.output_tokens,
                cache_read_tokens=m.cache_read_tokens,
                cache_creation_tokens=m.cache_creation_tokens,
            )
        return cls(
            id=m.id,
            session_id=m.session_id,
            role=m.role,  # type: ignore[arg-type]
            content=m.content,
            status=m.status,  # type: ignore[arg-type]
            model=m.model,
            usage=usage,
            stop_reason=m.stop_reason,
            error_code=m.error_code,
            video_ids=m.video_ids,
            tool_calls=m.tool_calls,
            citations=m.citations,
            created_at=m.created_at,
        )


class ActionOut(BaseModel):
    """One tool call of the research agent, as the audit log shows it."""

    id: uuid.UUID
    session_id: uuid.UUID
    tool: str
    input: dict[str, Any]
    result: dict[str, Any]
    status: Literal["done", "failed", "refused"]
    mutating: bool
    undoable: bool = Field(description="It can be undone now (POST .../actions/{id}/undo).")
    undone_at: datetime | None
    duration_ms: int
    request_id: uuid.UUID | None = Field(description="The chat request; null for a synchronous reply.")
    message_id: uuid.UUID | None = Field(description="The user's message the reply answered.")
    created_at: datetime

    @classmethod
    def of(cls, action: AgentAction) -> ActionOut:
        return cls(
            id=action.id,
            session_id=action.session_id,
            tool=action.tool,
            input=action.input,
            result=action.result,
            status=action.status,  # type: ignore[arg-type]  # the column holds only these values
            mutating=action.mutating,
            undoable=is_undoable(action),
            undone_at=action.undone_at,
            duration_ms=action.duration_ms,
            request_id=action.request_id,
            message_id=action.message_id,
            created_at=action.created_at,
        )


def is_undoable(action: AgentAction) -> bool:
    """Done, with something recorded to reverse it, and not reversed yet."""
    return action.status == "done" and action.undo is not None and action.undone_at is None


def stage_progress(recorded: list[Any]) -> list[StageDoneOut]:
    """A job's recorded stages done (``IngestJob.stages_done``), in stage order. Rows written
    before stages kept their findings have only a stage and a time."""
    order = {stage: n for n, stage in enumerate(INGEST_STAGES)}
    entries = sorted(
        (e for e in recorded if isinstance(e, dict) and e.get("stage") in order),
        key=lambda e: order[e["stage"]],
    )
    return [
        StageDoneOut(
            stage=e["stage"],
            at=e.get("at"),
            message=str(e.get("message") or e["stage"].replace("_", " ")),
            details=dict(e.get("details") or {}),
        )
        for e in entries
    ]


class ArtifactOut(BaseModel):
    """A structured document the research agent wrote in a session, in Markdown: one version."""

    id: uuid.UUID
    session_id: uuid.UUID
    kind: ArtifactKind
    title: str
    version: int = Field(description="The version shown (1 is the first).")
    latest_version: int
    content: str = Field(description="Markdown, as the model wrote it (render it without raw HTML).")
    created_at: datetime = Field(description="When the artifact was first written.")
    updated_at: datetime = Field(description="When its latest version was written.")

    @classmethod
    def of(cls, artifact: Artifact, version: ArtifactVersion) -> ArtifactOut:
        return cls(
            id=artifact.id,
            session_id=artifact.session_id,
            kind=artifact.kind,  # type: ignore[arg-type]  # the column holds only these values
            title=version.title,
            version=version.version,
            latest_version=artifact.latest_version,
            content=version.content,
            created_at=artifact.created_at,
            updated_at=artifact.updated_at,
        )


class ArtifactVersionOut(BaseModel):
    version: int
    title: str
    chars: int = Field(description="The length of its content in characters.")
    created_at: datetime


class ArtifactVersionsOut(BaseModel):
    items: list[ArtifactVersionOut] = Field(description="Newest first.")


class AddVideoOut(BaseModel):
    video: VideoBrief
    job_id: uuid.UUID | None = Field(description="Follow with GET /v1/jobs/{job_id}; null if ready.")
    job: JobOut | None = None


def to_json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


class RequestStatusOut(BaseModel):
    """A chat request for polling clients: its status and the text streamed so far."""

    request_id: uuid.UUID
    session_id: uuid.UUID
    status: str
    text: str
    last_event_id: int
    message_id: uuid.UUID | None
    error: dict[str, Any] | None
    agent_events: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The research agent's events so far (tool_call, tool_progress, tool_result, "
        "approval_required, approval, limit_reached, artifact), in order, each with its type and id.",
    )
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
