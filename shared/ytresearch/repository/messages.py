"""Chat messages and the write counts that rate limits read."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, insert, literal, select, tuple_
from sqlalchemy import cast as cast_sql

from ytresearch.db.models import (
    Message,
    ResearchSession,
    SessionVideo,
    utcnow,
)
from ytresearch.pagination import Cursor
from ytresearch.repository.base import Queries, table_of

TOUCH_SLACK = timedelta(minutes=1)


def _recent_writes(
    kind: str,
    user_id: ColumnElement[uuid.UUID],
    since: ColumnElement[datetime],
    touched_after: ColumnElement[datetime],
) -> Select[tuple[int]]:
    if kind == "session":
        return (
            select(func.count())
            .select_from(ResearchSession)
            .where(ResearchSession.user_id == user_id, ResearchSession.created_at > since)
        )
    # Video links and messages are counted through the user's sessions. Every such write
    # touches its session in the same transaction, so only sessions updated around the window
    # can hold one: those few are read through ix_sessions_user_updated, and each one's rows
    # through its (session_id, time) index. The per-session count is a correlated subquery on
    # purpose: PostgreSQL never turns it into a join, so even a plan made on stale statistics
    # (a prepared statement's generic plan on young tables) cannot become a scan of the whole
    # table nested with the sessions, as it once did (measured: docs/benchmarks.md).
    # ``touched_after`` is ``since`` less TOUCH_SLACK (``recent_writes_params``): the slack covers
    # a transaction that touched the session just before inserting its row.
    recent = table_of(ResearchSession).alias("recent_sessions")  # never the caller's sessions
    if kind == "video":
        per_session = select(func.count()).where(
            SessionVideo.session_id == recent.c.id, SessionVideo.added_at > since
        )
    else:
        per_session = select(func.count()).where(
            Message.session_id == recent.c.id, Message.role == "user", Message.created_at > since
        )
    return (
        # SUM of counts is NUMERIC in PostgreSQL: cast back to a plain integer.
        select(cast_sql(func.coalesce(func.sum(per_session.correlate(recent).scalar_subquery()), 0), Integer))
        .select_from(recent)
        .where(recent.c.user_id == user_id, recent.c.updated_at > touched_after)
    )


# The statements a chat runs every time are built once, with bind parameters for their values:
# SQLAlchemy then finds the compiled form by the statement's memoized cache key, where building
# the statement and its cache key anew cost more than running it (docs/benchmarks.md, issue 19).
RECENT_WRITES: dict[str, Select[tuple[int]]] = {
    kind: _recent_writes(kind, bindparam("user_id"), bindparam("since"), bindparam("touched_after"))
    for kind in ("session", "video", "message")
}


def recent_writes_query(kind: str) -> Select[tuple[int]]:
    """How many sessions, video links or chat messages (any other kind) a user created since a
    time, with the values ``recent_writes_params`` gives."""
    return RECENT_WRITES.get(kind, RECENT_WRITES["message"])


def recent_writes_params(user_id: uuid.UUID, since: datetime) -> dict[str, Any]:
    """The values of a ``RECENT_WRITES`` statement: the user's writes since ``since``."""
    return {"user_id": user_id, "since": since, "touched_after": since - TOUCH_SLACK}


_NEWEST_MESSAGES = (
    select(Message)
    .where(Message.session_id == bindparam("session_id"))
    .order_by(Message.created_at.desc(), Message.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
_INSERT_MESSAGE = insert(table_of(Message))


class MessageQueries(Queries):
    def add_message(
        self,
        *,
        session_id: uuid.UUID,
        role: str,
        content: str,
        status: str = "complete",
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_creation_tokens: int | None = None,
        stop_reason: str | None = None,
        error_code: str | None = None,
        video_ids: list[str] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        citations: list[dict[str, Any]] | None = None,
        created_at: datetime | None = None,
        flush: bool = True,
    ) -> Message:
        """A new message (one argument per column; ``tool_calls``: an assistant reply's tool
        calls, ``citations`` the moments it cited, None when none), written at once by a Core
        INSERT: the returned ``Message`` holds what was written but is not in the ORM session (no
        caller reads it back in the transaction, and the unit of work's flush cost more than the
        INSERT). ``flush`` changes nothing (it used to defer the INSERT to the next flush)."""
        del flush
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "session_id": session_id,
            "role": role,
            "content": content,
            "status": status,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read_tokens,
            "cache_creation_tokens": cache_creation_tokens,
            "stop_reason": stop_reason,
            "error_code": error_code,
            "video_ids": video_ids,
            "tool_calls": tool_calls,
            "citations": citations,
            "created_at": created_at or utcnow(),
        }
        self.session.execute(_INSERT_MESSAGE, values)
        return Message(**values)

    def get_message(self, message_id: uuid.UUID) -> Message | None:
        return self.session.get(Message, message_id)

    def list_messages(self, session_id: uuid.UUID, limit: int, cursor: Cursor | None) -> list[Message]:
        if cursor is None:  # a chat's history: the prebuilt statement
            return list(self.session.scalars(_NEWEST_MESSAGES, {"session_id": session_id, "limit": limit}))
        query = select(Message).where(
            Message.session_id == session_id,
            tuple_(Message.created_at, Message.id) < tuple_(literal(cursor.created_at), literal(cursor.id)),
        )
        query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def recent_messages(self, session_id: uuid.UUID, limit: int) -> list[Message]:
        """The newest ``limit`` messages, oldest first (for building chat context)."""
        return list(reversed(self.list_messages(session_id, limit, None)))

    def count_recent_writes(self, user_id: uuid.UUID, kind: str, since: datetime) -> int:
        """How many sessions, video links or chat messages the user created since ``since``."""
        return self.session.scalar(recent_writes_query(kind), recent_writes_params(user_id, since)) or 0
