"""Session changes: the ordered feed of what changed in a session's video list."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ytresearch.db.models import SessionChange, SessionVideo, utcnow
from ytresearch.repository.base import Queries, changed_rows


def record_change(session: Session, session_id: uuid.UUID, change: str, data: dict[str, Any]) -> None:
    """A change to a session's video list, in the caller's transaction: it is told exactly when,
    and only if, the change itself commits."""
    session.add(SessionChange(session_id=session_id, change=change, data=data, created_at=utcnow()))


class SessionChangeQueries(Queries):
    def add_session_change(self, session_id: uuid.UUID, change: str, data: dict[str, Any]) -> None:
        record_change(self.session, session_id, change, data)

    def add_video_ready_changes(self, video_id: str, status: str) -> None:
        """A video's ingest ended: one change for every session that holds it."""
        sessions = self.session.scalars(
            select(SessionVideo.session_id).where(SessionVideo.video_id == video_id)
        )
        for session_id in sessions.all():
            self.add_session_change(session_id, "video_ready", {"video_id": video_id, "status": status})

    def session_changes_after(
        self, session_id: uuid.UUID, after_id: int, limit: int = 100
    ) -> list[SessionChange]:
        return list(
            self.session.scalars(
                select(SessionChange)
                .where(SessionChange.session_id == session_id, SessionChange.id > after_id)
                .order_by(SessionChange.id)
                .limit(limit)
            )
        )

    def last_session_change(self, session_id: uuid.UUID) -> int:
        """The newest change's id (0 when none): a follower starts after it."""
        newest = self.session.scalar(
            select(func.max(SessionChange.id)).where(SessionChange.session_id == session_id)
        )
        return int(newest or 0)

    def delete_session_changes_before(self, before: datetime) -> bool:
        """Forget changes older than ``before`` (followers only need the recent ones)."""
        return changed_rows(
            self.session.execute(delete(SessionChange).where(SessionChange.created_at < before))
        )
