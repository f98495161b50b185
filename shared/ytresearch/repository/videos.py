"""Videos, their links to sessions, and ingest jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ytresearch.db.models import (
    IngestJob,
    ResearchSession,
    SessionVideo,
    Video,
    utcnow,
)
from ytresearch.repository.base import Queries, changed_rows, table_of
from ytresearch.repository.session_changes import record_change

# A session's list order: the positions an organize set, then the videos it never placed (added
# since, or never organized) oldest first; the id breaks ties.
LIST_ORDER = (
    SessionVideo.position.is_(None),
    SessionVideo.position,
    SessionVideo.added_at,
    SessionVideo.video_id,
)
# Every chat reads its session's videos: built once (see messages.RECENT_WRITES).
_SESSION_VIDEOS = (
    select(SessionVideo, Video)
    .join(Video, Video.id == SessionVideo.video_id)
    .where(SessionVideo.session_id == bindparam("session_id"))
    .order_by(*LIST_ORDER)
)


class VideoQueries(Queries):
    def get_video(self, video_id: str, *, for_update: bool = False) -> Video | None:
        query = select(Video).where(Video.id == video_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def get_or_add_video(self, video_id: str) -> Video:
        """The shared row for a video, created if missing; safe when two requests race."""
        video = self.get_video(video_id)
        if video is not None:
            return video
        try:
            with self.session.begin_nested():
                video = Video(id=video_id)
                self.session.add(video)
            return video
        except IntegrityError:
            found = self.get_video(video_id)
            assert found is not None
            return found

    def is_linked(self, session_id: uuid.UUID, video_id: str) -> bool:
        return self.session.get(SessionVideo, (session_id, video_id)) is not None

    def link_video(self, session_id: uuid.UUID, video_id: str, language: str | None) -> bool:
        """Link a video to a session (told as a ``video_added`` change); False when it was
        already linked."""
        if self.is_linked(session_id, video_id):
            return False
        try:
            with self.session.begin_nested():
                self.session.add(SessionVideo(session_id=session_id, video_id=video_id, language=language))
        except IntegrityError:
            return False
        self._changed(session_id, "video_added", {"video_id": video_id})
        return True

    def unlink_video(self, user_id: uuid.UUID, session_id: uuid.UUID, video_id: str) -> bool:
        """Unlink a video from one of the user's sessions; False when nothing was unlinked (not
        linked, or not the user's session). Like ``delete_session``, the DELETE itself decides."""
        links, sessions = table_of(SessionVideo), table_of(ResearchSession)
        owned = select(sessions.c.id).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        result = self.session.execute(
            delete(links).where(
                links.c.session_id == session_id, links.c.video_id == video_id, owned.exists()
            )
        )
        if not changed_rows(result):
            return False
        self._changed(session_id, "video_removed", {"video_id": video_id})
        return True

    def _changed(self, session_id: uuid.UUID, change: str, data: dict[str, Any]) -> None:
        record_change(self.session, session_id, change, data)

    def count_session_videos(self, session_id: uuid.UUID) -> int:
        return (
            self.session.scalar(
                select(func.count()).select_from(SessionVideo).where(SessionVideo.session_id == session_id)
            )
            or 0
        )

    def session_videos(self, session_id: uuid.UUID) -> list[tuple[SessionVideo, Video]]:
        """The session's links with their videos, in list order (``LIST_ORDER``)."""
        rows = self.session.execute(_SESSION_VIDEOS, {"session_id": session_id})
        return [(link, video) for link, video in rows.tuples()]

    # ------------------------------------------------------------ list order
    def video_order(self, session_id: uuid.UUID) -> list[tuple[str, int | None, str | None]]:
        """(video_id, position, group) of every linked video, in list order."""
        rows = self.session.execute(
            select(SessionVideo.video_id, SessionVideo.position, SessionVideo.group_label)
            .where(SessionVideo.session_id == session_id)
            .order_by(*LIST_ORDER)
        )
        return [(video_id, position, group) for video_id, position, group in rows.tuples()]

    def set_video_order(self, session_id: uuid.UUID, order: list[tuple[str, str | None]]) -> None:
        """Place the listed videos at positions 0..n-1 in that order with their group labels; every
        other linked video loses its position and group (it follows the placed ones by when it was
        added). Ids not linked to the session are ignored; a repeated id keeps its first place."""
        placed: dict[str, tuple[int | None, str | None]] = {}
        for video_id, group in order:
            placed.setdefault(video_id, (len(placed), group))
        self._place(session_id, placed, clear_rest=True)
        self._changed(session_id, "videos_reordered", {})

    def restore_video_order(
        self, session_id: uuid.UUID, entries: list[tuple[str, int | None, str | None]]
    ) -> None:
        """Put back (video_id, position, group) as ``video_order`` read them. Videos no longer
        linked are skipped; videos linked since keep what they have."""
        self._place(session_id, {vid: (pos, group) for vid, pos, group in entries}, clear_rest=False)
        self._changed(session_id, "videos_reordered", {})

    def _place(
        self, session_id: uuid.UUID, places: dict[str, tuple[int | None, str | None]], *, clear_rest: bool
    ) -> None:
        links = table_of(SessionVideo)
        for video_id, (position, group) in places.items():
            self.session.execute(
                update(links)
                .where(links.c.session_id == session_id, links.c.video_id == video_id)
                .values(position=position, group_label=group)
            )
        if clear_rest:
            rest = update(links).where(links.c.session_id == session_id)
            if places:
                rest = rest.where(links.c.video_id.not_in(list(places)))
            self.session.execute(rest.values(position=None, group_label=None))

    def relink_video(
        self,
        session_id: uuid.UUID,
        video_id: str,
        language: str | None,
        position: int | None,
        group: str | None,
    ) -> bool:
        """Link a video again where it was: at ``position`` of the list (0-based; the videos from
        there on move down one) with its group. False, changing nothing, when it is linked already
        or its video row is gone.

        With a position, every linked video is given its current list index first, so videos that
        had none (never organized) keep their order around the one put back."""
        if self.is_linked(session_id, video_id) or self.get_video(video_id) is None:
            return False
        if position is not None:
            current = self.video_order(session_id)
            position = max(0, min(position, len(current)))
            moved: dict[str, tuple[int | None, str | None]] = {}
            for index, (vid, had, group_label) in enumerate(current):
                wanted = index if index < position else index + 1
                if had != wanted:
                    moved[vid] = (wanted, group_label)
            self._place(session_id, moved, clear_rest=False)
        try:
            with self.session.begin_nested():
                self.session.add(
                    SessionVideo(
                        session_id=session_id,
                        video_id=video_id,
                        language=language,
                        position=position,
                        group_label=group,
                    )
                )
        except IntegrityError:
            return False
        self._changed(session_id, "video_added", {"video_id": video_id})
        return True

    def user_can_see_video(self, user_id: uuid.UUID, video_id: str) -> bool:
        in_session = (
            select(SessionVideo.video_id)
            .join(ResearchSession, ResearchSession.id == SessionVideo.session_id)
            .where(SessionVideo.video_id == video_id, ResearchSession.user_id == user_id)
        )
        by_job = select(IngestJob.video_id).where(
            IngestJob.video_id == video_id, IngestJob.user_id == user_id
        )
        return self.session.scalar(select(or_(in_session.exists(), by_job.exists()))) or False

    def claim_video(self, video_id: str, lease_until: datetime) -> bool:
        """Take the ingest lease on a video unless it is ready or another worker holds it."""
        now = utcnow()
        result = self.session.execute(
            update(Video)
            .where(
                Video.id == video_id,
                Video.status != "ready",
                or_(Video.claimed_until.is_(None), Video.claimed_until < now),
            )
            .values(status="processing", claimed_until=lease_until, updated_at=now)
        )
        return changed_rows(result)

    # ------------------------------------------------------------ ingest jobs
    def add_job(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        video_id: str,
        language: str | None,
        status: str = "queued",
    ) -> IngestJob:
        job = IngestJob(
            user_id=user_id,
            session_id=session_id,
            video_id=video_id,
            language=language,
            status=status,
            stages_done=[],
        )
        self.session.add(job)
        self.session.flush()
        return job

    def get_job(self, job_id: uuid.UUID, user_id: uuid.UUID | None = None) -> IngestJob | None:
        query = select(IngestJob).where(IngestJob.id == job_id)
        if user_id is not None:
            query = query.where(IngestJob.user_id == user_id)
        return self.session.scalar(query)

    def open_jobs_for_video(self, video_id: str) -> list[IngestJob]:
        return list(
            self.session.scalars(
                select(IngestJob).where(
                    IngestJob.video_id == video_id, IngestJob.status.in_(("queued", "running"))
                )
            )
        )
