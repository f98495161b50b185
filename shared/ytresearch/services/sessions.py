"""Research sessions and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol, TypeVar, cast

from ytresearch.config import Settings
from ytresearch.db.models import ResearchSession, utcnow
from ytresearch.errors import InvalidInputError, NotFoundError
from ytresearch.pagination import Cursor
from ytresearch.repository import Repository, Store
from ytresearch.services.limits import enforce_write_rate
from ytresearch.services.users import AuthUser
from ytresearch.views import (
    MessageOut,
    PageOut,
    SessionDetailOut,
    SessionOut,
    SessionVideoOut,
    ToolsMode,
)


class HasKey(Protocol):
    """What a keyset page needs of its items: their sort key (created_at, id)."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


T = TypeVar("T", bound=HasKey)


def owned_session(repo: Repository, user: AuthUser, session_id: uuid.UUID) -> ResearchSession:
    """The caller's session, or NotFoundError (also for another user's: we never confirm it exists)."""
    row = repo.get_session(user.id, session_id)
    if row is None:
        raise session_not_found(session_id)
    return row


def session_not_found(session_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"session {session_id} not found", code="SESSION_NOT_FOUND")


def clean_title(title: str | None, settings: Settings) -> str:
    title = " ".join((title or "").split())
    if len(title) > settings.max_session_title_chars:
        raise InvalidInputError(
            f"title is longer than {settings.max_session_title_chars} characters",
            code="TITLE_TOO_LONG",
        )
    return title or "Untitled session"


def tools_mode_of(session: ResearchSession, settings: Settings) -> ToolsMode:
    """What the research agent may do in this session's replies: its own choice, else the
    deployment's default (``agent_tools_default``)."""
    mode = session.tools_mode or settings.agent_tools_default
    return cast(ToolsMode, mode)


def create_session(
    store: Store, settings: Settings, user: AuthUser, title: str | None, tools: ToolsMode | None = None
) -> SessionOut:
    """Open a new research session owned by ``user``; ``tools`` None follows the default."""
    title = clean_title(title, settings)
    with store.transaction() as repo:
        enforce_write_rate(repo, settings, user, "session")
        return SessionOut.of(repo.add_session(user.id, title, tools))


def list_sessions(store: Store, user: AuthUser, limit: int, cursor: str | None) -> PageOut[SessionOut]:
    """The caller's sessions, newest first, one keyset page at a time."""
    after = Cursor.decode(cursor) if cursor else None
    with store.transaction() as repo:
        rows = repo.list_sessions(user.id, limit + 1, after)
    return keyset_page([SessionOut.of(r) for r in rows], limit)


def get_session(store: Store, user: AuthUser, session_id: uuid.UUID) -> SessionDetailOut:
    with store.transaction() as repo:
        row = owned_session(repo, user, session_id)
        videos = [SessionVideoOut.of_link(link, video) for link, video in repo.session_videos(row.id)]
        return SessionDetailOut(**SessionOut.of(row).model_dump(), videos=videos)


def update_session(
    store: Store,
    settings: Settings,
    user: AuthUser,
    session_id: uuid.UUID,
    *,
    title: str | None = None,
    tools: ToolsMode | None = None,
) -> SessionOut:
    """Rename a session and/or choose what the research agent may do in it (given fields only)."""
    new_title = clean_title(title, settings) if title is not None else None
    with store.transaction() as repo:
        row = owned_session(repo, user, session_id)
        if new_title is not None:
            row.title = new_title
        if tools is not None:
            row.tools_mode = tools
        row.updated_at = utcnow()
        return SessionOut.of(row)


def delete_session(store: Store, user: AuthUser, session_id: uuid.UUID) -> None:
    """Delete a session with its messages, chat requests and video links. The shared video rows
    stay (other sessions may use them); ingest jobs stay with the user, unlinked."""
    with store.transaction() as repo:
        # The DELETE decides who deleted it: of concurrent calls, one succeeds and the rest 404.
        if not repo.delete_session(user.id, session_id):
            raise session_not_found(session_id)


def list_messages(
    store: Store, user: AuthUser, session_id: uuid.UUID, limit: int, cursor: str | None
) -> PageOut[MessageOut]:
    """Message history, newest first; follow ``next_cursor`` for older pages."""
    after = Cursor.decode(cursor) if cursor else None
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        rows = repo.list_messages(session_id, limit + 1, after)
    return keyset_page([MessageOut.of(m) for m in rows], limit)


def keyset_page(items: list[T], limit: int) -> PageOut[T]:
    """A page from ``limit + 1`` rows read newest first: the extra row only says there is more,
    and the last row shown is the cursor for the next page."""
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if has_more else None
    return PageOut(items=items, next_cursor=next_cursor, has_more=has_more)
