"""REST routes (the CRUD Lambda; also served by the local runner). Thin: parse, call a service,
shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status
from pydantic import BaseModel, Field, model_validator

from ytresearch import __version__
from ytresearch.services import actions, artifacts, chat, export, sessions, videos
from ytresearch.views import (
    ActionOut,
    AddVideoOut,
    ArtifactOut,
    ArtifactVersionsOut,
    JobOut,
    MessageOut,
    PageOut,
    SessionDetailOut,
    SessionOut,
    SessionVideoOut,
    ToolsMode,
    VideoOut,
)
from ytresearch.web.auth import ContainerDep, CurrentUser
from ytresearch.web.errors import ERROR_RESPONSES, error_response
from ytresearch.web.models import Question, Strict, VideoIds

router = APIRouter(responses=ERROR_RESPONSES)
health_router = APIRouter(responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
CursorQ = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
VideoId = Annotated[str, Path(min_length=11, max_length=11, pattern=r"^[A-Za-z0-9_-]{11}$")]


class CreateSessionIn(Strict):
    title: str | None = Field(default=None, max_length=200)
    tools: ToolsMode | None = Field(
        default=None,
        description="What the research agent may do in this session's replies: auto (act), "
        "confirm (ask first), off (no tools); null: the deployment's default.",
    )


class UpdateSessionIn(Strict):
    title: str | None = Field(
        default=None, max_length=200, description='A new title (blank: "Untitled session").'
    )
    tools: ToolsMode | None = Field(
        default=None, description="What the research agent may do in this session's replies from now on."
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateSessionIn:
        if self.title is None and self.tools is None:
            raise ValueError("give a title, tools, or both")
        return self


class AddVideoIn(Strict):
    url: str = Field(min_length=1, max_length=2048, description="Any YouTube URL form, or a bare id.")
    language: str | None = Field(default=None, max_length=35, description="Preferred transcript language.")


class HealthOut(BaseModel):
    status: str
    database: str
    version: str


@health_router.get("/health", response_model=HealthOut, tags=["health"])
def health(container: ContainerDep) -> Response | HealthOut:
    if not container.database_ok():
        return error_response(
            503,
            "DATABASE_UNAVAILABLE",
            "the database is unavailable",
            {"status": "degraded", "database": "down", "version": __version__},
        )
    return HealthOut(status="ok", database="up", version=__version__)


@router.post(
    "/v1/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    tags=["sessions"],
)
def create_session(
    user: CurrentUser, c: ContainerDep, body: Annotated[CreateSessionIn | None, Body()] = None
) -> SessionOut:
    body = body or CreateSessionIn()
    return sessions.create_session(c.store, c.settings, user, body.title, body.tools)


@router.get("/v1/sessions", response_model=PageOut[SessionOut], tags=["sessions"])
def list_sessions(
    user: CurrentUser, c: ContainerDep, limit: Limit = 20, cursor: CursorQ = None
) -> PageOut[SessionOut]:
    return sessions.list_sessions(c.store, user, limit, cursor)


@router.get("/v1/sessions/{session_id}", response_model=SessionDetailOut, tags=["sessions"])
def get_session(session_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> SessionDetailOut:
    return sessions.get_session(c.store, user, session_id)


@router.patch("/v1/sessions/{session_id}", response_model=SessionOut, tags=["sessions"])
def rename_session(
    session_id: uuid.UUID, body: UpdateSessionIn, user: CurrentUser, c: ContainerDep
) -> SessionOut:
    """Rename a session, or change what the research agent may do in it (``tools``)."""
    return sessions.update_session(c.store, c.settings, user, session_id, title=body.title, tools=body.tools)


@router.delete("/v1/sessions/{session_id}", status_code=204, tags=["sessions"])
def delete_session(session_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> Response:
    sessions.delete_session(c.store, user, session_id)
    return Response(status_code=204)


ExportFormat = Annotated[
    str,
    Query(
        alias="format",
        max_length=20,
        description="Only `md` (Markdown) for now; any other is 400 INVALID_FORMAT.",
        json_schema_extra={"enum": list(export.FORMATS)},
    ),
]


@router.get(
    "/v1/sessions/{session_id}/export",
    response_class=Response,
    tags=["sessions"],
    responses={
        200: {
            "description": "The session as a Markdown file: its videos and the whole conversation.",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="<slug of the title>.md"',
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        }
    },
)
def export_session(
    session_id: uuid.UUID, user: CurrentUser, c: ContainerDep, fmt: ExportFormat = "md"
) -> Response:
    """Download the session (title, videos with summaries, every message with its citations as
    timestamp links and its tool calls) as one document."""
    export.check_format(fmt)
    filename, document = export.export_markdown(c.store, user, session_id)
    return Response(
        document,
        media_type=export.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/v1/sessions/{session_id}/videos",
    status_code=202,
    response_model=AddVideoOut,
    tags=["videos"],
    responses={200: {"model": AddVideoOut, "description": "Already ingested: linked at once."}},
)
def add_video(
    session_id: uuid.UUID, body: AddVideoIn, user: CurrentUser, c: ContainerDep, response: Response
) -> AddVideoOut:
    result = videos.add_video(c.store, c.settings, c.queue, user, session_id, body.url, body.language)
    response.status_code = 200 if result.ready else 202
    return result.body


@router.get("/v1/sessions/{session_id}/videos", response_model=list[SessionVideoOut], tags=["videos"])
def list_session_videos(session_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> list[SessionVideoOut]:
    return videos.list_session_videos(c.store, user, session_id)


@router.delete("/v1/sessions/{session_id}/videos/{video_id}", status_code=204, tags=["videos"])
def remove_video(session_id: uuid.UUID, video_id: VideoId, user: CurrentUser, c: ContainerDep) -> Response:
    videos.remove_video(c.store, user, session_id, video_id)
    return Response(status_code=204)


@router.get(
    "/v1/videos/{video_id}",
    response_model=VideoOut,
    response_model_exclude_none=False,
    tags=["videos"],
)
def get_video(
    video_id: VideoId,
    user: CurrentUser,
    c: ContainerDep,
    include_transcript: bool = Query(False, description="Include segments and text."),
) -> VideoOut:
    return videos.get_video(c.store, user, video_id, with_transcript=include_transcript)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
def get_job(job_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> JobOut:
    return videos.get_job(c.store, user, job_id)


class SendMessageIn(Strict):
    message: Question
    video_ids: VideoIds = None
    tools: ToolsMode | None = None  # the agent's tools for this reply; None: the session's default


@router.post(
    "/v1/sessions/{session_id}/messages", status_code=201, response_model=MessageOut, tags=["messages"]
)
async def send_message(
    session_id: uuid.UUID, body: SendMessageIn, user: CurrentUser, c: ContainerDep
) -> MessageOut:
    """Synchronous chat: waits for the whole reply (bounded so it fits API Gateway's 30 s). The
    agent's tools work here too; an added video is not waited for, and "confirm" mode refuses
    changes (approvals need a streaming chat)."""
    return await chat.chat_sync(
        c.store,
        c.settings,
        c.chat_model,
        user,
        session_id,
        body.message,
        body.video_ids,
        agent=c.agent,
        tools=body.tools,
    )


@router.get("/v1/sessions/{session_id}/messages", response_model=PageOut[MessageOut], tags=["messages"])
def list_messages(
    session_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    limit: Limit = 20,
    cursor: CursorQ = None,
) -> PageOut[MessageOut]:
    return sessions.list_messages(c.store, user, session_id, limit, cursor)


@router.get("/v1/sessions/{session_id}/actions", response_model=PageOut[ActionOut], tags=["actions"])
def list_actions(
    session_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    limit: Limit = 20,
    cursor: CursorQ = None,
) -> PageOut[ActionOut]:
    """What the research agent did in the session (its tool calls), newest first."""
    return actions.list_actions(c.store, user, session_id, limit, cursor)


@router.post("/v1/sessions/{session_id}/actions/{action_id}/undo", response_model=ActionOut, tags=["actions"])
def undo_action(session_id: uuid.UUID, action_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> ActionOut:
    """Reverse one of the agent's actions (409 when undone already or not undoable)."""
    return actions.undo_action(c.store, c.settings, user, session_id, action_id)


@router.get("/v1/sessions/{session_id}/artifacts", response_model=PageOut[ArtifactOut], tags=["artifacts"])
def list_artifacts(
    session_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    limit: Limit = 20,
    cursor: CursorQ = None,
) -> PageOut[ArtifactOut]:
    """The documents the research agent wrote in the session, each at its latest version, latest
    change first."""
    return artifacts.list_artifacts(c.store, user, session_id, limit, cursor)


@router.get(
    "/v1/sessions/{session_id}/artifacts/{artifact_id}", response_model=ArtifactOut, tags=["artifacts"]
)
def get_artifact(
    session_id: uuid.UUID,
    artifact_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="An earlier version.")] = None,
) -> ArtifactOut:
    return artifacts.get_artifact(c.store, user, session_id, artifact_id, version)


@router.get(
    "/v1/sessions/{session_id}/artifacts/{artifact_id}/versions",
    response_model=ArtifactVersionsOut,
    tags=["artifacts"],
)
def artifact_versions(
    session_id: uuid.UUID, artifact_id: uuid.UUID, user: CurrentUser, c: ContainerDep
) -> ArtifactVersionsOut:
    return artifacts.artifact_versions(c.store, user, session_id, artifact_id)


@router.delete("/v1/sessions/{session_id}/artifacts/{artifact_id}", status_code=204, tags=["artifacts"])
def delete_artifact(
    session_id: uuid.UUID, artifact_id: uuid.UUID, user: CurrentUser, c: ContainerDep
) -> Response:
    """Delete an artifact with every version."""
    artifacts.delete_artifact(c.store, user, session_id, artifact_id)
    return Response(status_code=204)
