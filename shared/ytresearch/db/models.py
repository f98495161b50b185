"""Typed SQLAlchemy models. Alembic migrations (db/migrations) are the only way the schema changes;
tests check that the migrated schema and these models agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone; PostgreSQL uses timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # The identity provider's subject (Cognito `sub`) for users who sign in with tokens. A unique
    # index, not a constraint, so SQLite can add it without rebuilding the table (migration 0002).
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True, index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class ResearchSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_created", "user_id", "created_at", "id"),
        # Every write to a session touches updated_at, so "the user's sessions active in the last
        # minute" (this index) bounds the per-minute write counts to a few rows.
        Index("ix_sessions_user_updated", "user_id", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    # What the research agent may do in this session's replies: auto / confirm / off; None means
    # the deployment's default (settings.agent_tools_default).
    tools_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    videos: Mapped[list[SessionVideo]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )


class Video(Base):
    """One row per YouTube video, shared by every session (and user) that adds it: a cache."""

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(11), primary_key=True)  # the YouTube video id
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/processing/ready/failed
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    channel: Mapped[str | None] = mapped_column(String(300), default=None)
    channel_url: Mapped[str | None] = mapped_column(String(500), default=None)
    thumbnail_url: Mapped[str | None] = mapped_column(String(500), default=None)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    transcript_language: Mapped[str | None] = mapped_column(String(16), default=None)
    transcript_is_generated: Mapped[bool | None] = mapped_column(Boolean, default=None)
    transcript_segments: Mapped[list[Any] | None] = mapped_column(default=None)
    transcript_text: Mapped[str | None] = mapped_column(Text, default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    summary_model: Mapped[str | None] = mapped_column(String(100), default=None)
    summary_input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    summary_output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)  # ingest lease
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionVideo(Base):
    __tablename__ = "session_videos"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    video_id: Mapped[str] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    # The list order an organize set (0-based). Videos with none follow the placed ones, oldest
    # added first (repository.videos.LIST_ORDER).
    position: Mapped[int | None] = mapped_column(Integer, default=None)
    group_label: Mapped[str | None] = mapped_column(String(300), default=None)  # fits a channel name
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[ResearchSession] = relationship(back_populates="videos")
    video: Mapped[Video] = relationship(lazy="joined")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_session_created", "session_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # user / assistant
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="complete")  # complete/cancelled/failed
    model: Mapped[str | None] = mapped_column(String(100), default=None)
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cache_read_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cache_creation_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    stop_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    video_ids: Mapped[list[Any] | None] = mapped_column(default=None)
    # An assistant reply's tool calls in the order made (name, input, outcome...); None for a
    # reply that called none.
    tool_calls: Mapped[list[Any] | None] = mapped_column(default=None)
    # The transcript windows an assistant reply cites; None when it cites none.
    citations: Mapped[list[Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    __table_args__ = (Index("ix_ingest_jobs_user_created", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), default=None, index=True
    )
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued/running/done/failed
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    stages_done: Mapped[list[Any]] = mapped_column(default=list)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ChatRequest(Base):
    """A POST-then-SSE chat request: durable so any process can serve its stream."""

    __tablename__ = "chat_requests"
    __table_args__ = (
        Index("ix_chat_requests_user_status", "user_id", "status"),
        Index("ix_chat_requests_user_created", "user_id", "created_at"),
        Index("ix_chat_requests_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_chat_requests_expires", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    user_message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    assistant_message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    video_ids: Mapped[list[Any] | None] = mapped_column(default=None)
    # queued/streaming/complete/cancelled/failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(100), default=None)  # process running it
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatEvent(Base):
    """The persisted event log of a chat request (token deltas coalesced), for replay on resume."""

    __tablename__ = "chat_events"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_requests.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentAction(Base):
    """One tool call of the research agent: the audit log, and what undoes it.

    ``undo`` is None when the action cannot be undone (read-only, failed, refused, or it changed
    nothing); otherwise one of {"kind": "unlink_video", "video_id"}, {"kind": "unlink_videos",
    "video_ids"}, {"kind": "relink_video", "video_id", "language", "position", "group"} or
    {"kind": "restore_order", "order": [{"video_id", "position", "group"}]}, {"kind":
    "delete_artifact", "artifact_id"} or {"kind": "drop_artifact_version", "artifact_id",
    "version"}. The videos an
    add_video or add_playlist action added are ``result["data"]["video_ids"]``.
    """

    __tablename__ = "agent_actions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    tool: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # done / failed / refused
    mutating: Mapped[bool] = mapped_column(Boolean)
    undo: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)  # the chat request
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)  # the user's message
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The session's log, newest first, one keyset page at a time.
Index(
    "ix_agent_actions_session_created",
    AgentAction.session_id,
    AgentAction.created_at.desc(),
    AgentAction.id.desc(),
)


class ToolApproval(Base):
    """A person's decision on a tool call that waits for approval (or the timeout's refusal).
    The first decision written wins: any process may write it, the reply's owner reads it."""

    __tablename__ = "tool_approvals"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_requests.id", ondelete="CASCADE"), primary_key=True
    )
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str] = mapped_column(String(16))  # user / timeout
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionChange(Base):
    """One change to a session's video list (from the agent, a route or an ingest), in order, so
    every open WebSocket and session event stream on any process can tell its client."""

    __tablename__ = "session_changes"
    __table_args__ = (
        Index("ix_session_changes_session_id", "session_id", "id"),
        Index("ix_session_changes_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    change: Mapped[str] = mapped_column(
        String(32)
    )  # video_added / video_removed / videos_reordered / video_ready
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptWindow(Base):
    """Caption lines ``seq`` of a video's transcript (``ytresearch.windows``): what the transcript
    index searches and what a reply cites. Rebuilt whole with the transcript.

    Not modelled, because they exist on one backend only (migration 0006 makes them, and
    tests/integration/test_migrations.py leaves them out of the schema comparison): on PostgreSQL
    the ``tsv`` tsvector column (filled on insert by ``repository.windows``) and its GIN index
    ``ix_transcript_windows_tsv``; on SQLite the FTS5 table ``transcript_windows_fts`` over
    ``text`` and the triggers that keep it in step with this table."""

    __tablename__ = "transcript_windows"
    __table_args__ = (UniqueConstraint("video_id", "seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    start_seconds: Mapped[float] = mapped_column(Double)
    end_seconds: Mapped[float] = mapped_column(Double)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))  # the transcript's language code


class Artifact(Base):
    """A structured document the research agent wrote in a session (a comparison table, an
    outline, study notes), in Markdown. Revising it adds a version; the row says which is latest."""

    __tablename__ = "artifacts"
    __table_args__ = (Index("ix_artifacts_session_updated", "session_id", "updated_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # table / outline / notes / document
    title: Mapped[str] = mapped_column(String(200))  # the latest version's
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the latest version came


class ArtifactVersion(Base):
    """One version of an artifact, as written; versions are never changed, only added."""

    __tablename__ = "artifact_versions"

    artifact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)  # the chat request
    call_id: Mapped[str | None] = mapped_column(String(64), default=None)  # the tool call
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = [
    "AgentAction",
    "ApiKey",
    "Artifact",
    "ArtifactVersion",
    "Base",
    "ChatEvent",
    "ChatRequest",
    "IngestJob",
    "Message",
    "ResearchSession",
    "SessionChange",
    "SessionVideo",
    "ToolApproval",
    "TranscriptWindow",
    "User",
    "Video",
]
