"""Videos, their links to sessions, and ingest jobs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ytresearch.db.models import (
    IngestJob,
    ResearchSession,
    SessionVideo,
    Video,
    utcnow,
)
from ytresearch.repository.base import Queries, changed_rows, table_of


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
        """Link a video to a session; False when it was already linked."""
        if self.is_linked(session_id, video_id):
            return False
        try:
            with self.session.begin_nested():
                self.session.add(SessionVideo(session_id=session_id, video_id=video_id, language=language))
            return True
        except IntegrityError:
            return False

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
        return changed_rows(result)

    def count_session_videos(self, session_id: uuid.UUID) -> int:
        return (
            self.session.scalar(
                select(func.count()).select_from(SessionVideo).where(SessionVideo.session_id == session_id)
            )
            or 0
        )

    def session_videos(self, session_id: uuid.UUID) -> list[tuple[SessionVideo, Video]]:
        rows = self.session.execute(
            select(SessionVideo, Video)
            .join(Video, Video.id == SessionVideo.video_id)
            .where(SessionVideo.session_id == session_id)
            .order_by(SessionVideo.added_at, SessionVideo.video_id)
        )
        return [(link, video) for link, video in rows.tuples()]

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
