"""Research sessions: ownership, listing, the chat's view of a session."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, func, literal, select, tuple_, update

from ytresearch.db.models import (
    ChatRequest,
    ResearchSession,
    User,
    utcnow,
)
from ytresearch.pagination import Cursor
from ytresearch.repository.base import ACTIVE_REQUEST_STATUSES, Queries, changed_rows, table_of
from ytresearch.repository.messages import recent_writes_params, recent_writes_query

# The statements every chat runs, built once with bind parameters (see messages.RECENT_WRITES).
_sessions, _users = table_of(ResearchSession), table_of(User)
_SESSION_EXISTS = select(ResearchSession.id).where(ResearchSession.id == bindparam("session_id"))
# No parameter is named like a column of the updated table: it would join the SET clause.
_TOUCH_SESSION = (
    update(_sessions).where(_sessions.c.id == bindparam("session_id")).values(updated_at=bindparam("now"))
)
_LOCK_USER_POSTGRES = (
    select(_users.c.id).where(_users.c.id == bindparam("user_id")).with_for_update(key_share=True)
)
_LOCK_USER_SQLITE = update(_users).where(_users.c.id == bindparam("user_id")).values(email=_users.c.email)
_ACTIVE_REQUESTS = (
    select(func.count())
    .select_from(ChatRequest)
    .where(ChatRequest.user_id == bindparam("user_id"), ChatRequest.status.in_(ACTIVE_REQUEST_STATUSES))
)
_SESSION_FOR_CHAT = select(
    ResearchSession,
    _ACTIVE_REQUESTS.scalar_subquery(),
    recent_writes_query("message").scalar_subquery(),
).where(ResearchSession.id == bindparam("session_id"))  # by primary key only; owner checked after
# (With the owner in the WHERE clause too, a generic plan made without statistics used the
# (user_id, updated_at) index and filtered every session of the user by id.)


class SessionQueries(Queries):
    def add_session(self, user_id: uuid.UUID, title: str, tools_mode: str | None = None) -> ResearchSession:
        """A new session; ``tools_mode`` None follows the deployment's default."""
        row = ResearchSession(user_id=user_id, title=title, tools_mode=tools_mode)
        self.session.add(row)
        self.session.flush()
        return row

    def get_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> ResearchSession | None:
        return self.session.scalar(
            select(ResearchSession).where(
                ResearchSession.id == session_id, ResearchSession.user_id == user_id
            )
        )

    def list_sessions(self, user_id: uuid.UUID, limit: int, cursor: Cursor | None) -> list[ResearchSession]:
        query = select(ResearchSession).where(ResearchSession.user_id == user_id)
        if cursor is not None:
            query = query.where(
                tuple_(ResearchSession.created_at, ResearchSession.id)
                < tuple_(literal(cursor.created_at), literal(cursor.id))
            )
        query = query.order_by(ResearchSession.created_at.desc(), ResearchSession.id.desc())
        return list(self.session.scalars(query.limit(limit)))

    def delete_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Delete one of the user's sessions (the database cascades to what hangs off it); False
        when there was none. The DELETE itself decides: of concurrent deletes exactly one wins."""
        table = table_of(ResearchSession)
        result = self.session.execute(
            delete(table).where(table.c.id == session_id, table.c.user_id == user_id)
        )
        return changed_rows(result)

    def session_exists(self, session_id: uuid.UUID) -> bool:
        return self.session.scalar(_SESSION_EXISTS, {"session_id": session_id}) is not None

    def lock_user(self, user_id: uuid.UUID) -> None:
        """Serialise this user's chat starts until the transaction ends, so the running-requests
        count read next and the request row written after it are one atomic step. PostgreSQL: a
        row lock that does not block inserts referencing the user (FOR NO KEY UPDATE). SQLite has
        no row locks: a no-op write takes the database's write lock at once."""
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        self.session.execute(_LOCK_USER_SQLITE if sqlite else _LOCK_USER_POSTGRES, {"user_id": user_id})

    def touch_session(self, session_id: uuid.UUID) -> bool:
        """Mark the session updated now; False when it does not exist (any more). Its row stays
        locked against a concurrent delete until the transaction ends."""
        # A Core UPDATE: the ORM's bulk update would also look for loaded objects to refresh.
        return changed_rows(self.session.execute(_TOUCH_SESSION, {"session_id": session_id, "now": utcnow()}))

    def session_for_chat(
        self, user_id: uuid.UUID, session_id: uuid.UUID, since: datetime
    ) -> tuple[ResearchSession, int, int] | None:
        """The caller's session with, in the same round trip, the user's running chat requests
        and the chat messages they sent since ``since`` (the two limits a new chat checks);
        None when the session is not theirs."""
        params = {"session_id": session_id, **recent_writes_params(user_id, since)}
        row = self.session.execute(_SESSION_FOR_CHAT, params).first()
        if row is None or row[0].user_id != user_id:
            return None
        return row[0], row[1] or 0, row[2] or 0
