"""Adding videos to sessions, and reading videos and ingest jobs."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from ytresearch.config import Settings
from ytresearch.errors import (
    ConflictError,
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
)
from ytresearch.ports import IngestMessage, JobQueue
from ytresearch.repository import Store
from ytresearch.services.limits import enforce_write_rate
from ytresearch.services.sessions import owned_session
from ytresearch.services.users import AuthUser
from ytresearch.views import AddVideoOut, JobOut, SessionVideoOut, VideoBrief, VideoOut
from ytresearch.youtube.urls import parse_video_id

log = logging.getLogger(__name__)

LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass(frozen=True)
class AddVideoResult:
    body: AddVideoOut
    ready: bool  # True: linked at once (200); False: queued for ingest (202)


def clean_language(language: str | None) -> str | None:
    if language is None or language == "":
        return None
    if not LANGUAGE_RE.match(language):
        raise InvalidInputError(
            f"language must be a language code such as 'en' or 'pt-BR', got {language[:20]!r}",
            code="INVALID_LANGUAGE",
        )
    return language


def check_video_id(video_id: str) -> str:
    if not VIDEO_ID_RE.match(video_id):
        raise InvalidInputError(
            "video id must be 11 characters of letters, digits, '-' and '_'",
            code="INVALID_VIDEO_ID",
        )
    return video_id


def add_video(
    store: Store,
    settings: Settings,
    queue: JobQueue,
    user: AuthUser,
    session_id: uuid.UUID,
    url: str,
    language: str | None,
) -> AddVideoResult:
    """Link a video to a session. A video already ingested (by anyone) is linked at once; otherwise
    one ingest message is queued, unless an ingest of that video is already under way, in which case
    the new job simply follows it (no duplicate work)."""
    video_id = parse_video_id(url)
    language = clean_language(language)
    with store.transaction() as repo:
        session = owned_session(repo, user, session_id)
        if not repo.is_linked(session.id, video_id):
            enforce_write_rate(repo, settings, user, "video")
        video = repo.get_or_add_video(video_id)
        full = repo.count_session_videos(session.id) >= settings.max_videos_per_session
        if full and not repo.is_linked(session.id, video_id):
            raise ConflictError(
                f"a session holds at most {settings.max_videos_per_session} videos",
                code="TOO_MANY_VIDEOS",
            )
        repo.link_video(session.id, video_id, language)
        repo.touch_session(session.id)
        if video.status == "ready":
            return AddVideoResult(AddVideoOut(video=VideoBrief.of(video), job_id=None), ready=True)
        in_flight = bool(repo.open_jobs_for_video(video_id))
        if video.status == "failed" and not in_flight:
            video.status, video.error_code, video.error_message = "pending", None, None
        job = repo.add_job(
            user_id=user.id,
            session_id=session.id,
            video_id=video_id,
            language=language,
            status="running" if video.status == "processing" else "queued",
        )
        body = AddVideoOut(video=VideoBrief.of(video), job_id=job.id, job=JobOut.of(job))
    if not in_flight:
        try:
            queue.send(IngestMessage(job_id=str(job.id), video_id=video_id, language=language))
        except Exception:
            log.exception("could not queue ingest job %s", job.id)
            with store.transaction() as repo:
                failed = repo.get_job(job.id)
                if failed is not None:
                    failed.status, failed.error_code = "failed", "QUEUE_UNAVAILABLE"
                    failed.error_message = "the ingest queue could not be reached; add the video again"
            raise DependencyUnavailableError(
                "the ingest queue is unavailable; try again shortly", code="QUEUE_UNAVAILABLE"
            ) from None
    return AddVideoResult(body, ready=False)


def list_session_videos(store: Store, user: AuthUser, session_id: uuid.UUID) -> list[SessionVideoOut]:
    """The session's videos in list order: those an organize placed (by position), then the rest,
    oldest added first."""
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        return [SessionVideoOut.of_link(link, video) for link, video in repo.session_videos(session_id)]


def remove_video(store: Store, user: AuthUser, session_id: uuid.UUID, video_id: str) -> None:
    """Unlink a video from a session. The shared video row and its transcript stay cached."""
    check_video_id(video_id)
    with store.transaction() as repo:
        # The DELETE decides who removed it: of concurrent calls, one succeeds and the rest 404.
        if not repo.unlink_video(user.id, session_id, video_id):
            owned_session(repo, user, session_id)  # SESSION_NOT_FOUND when the session is not theirs
            raise NotFoundError(f"video {video_id} is not in this session", code="VIDEO_NOT_FOUND")
        repo.touch_session(session_id)


def get_video(store: Store, user: AuthUser, video_id: str, *, with_transcript: bool) -> VideoOut:
    """A video the caller has added to one of their sessions (others answer 404)."""
    check_video_id(video_id)
    with store.transaction() as repo:
        video = repo.get_video(video_id)
        if video is None or not repo.user_can_see_video(user.id, video_id):
            raise NotFoundError(f"video {video_id} not found", code="VIDEO_NOT_FOUND")
        return VideoOut.full(video, with_transcript=with_transcript)


def get_job(store: Store, user: AuthUser, job_id: uuid.UUID) -> JobOut:
    with store.transaction() as repo:
        job = repo.get_job(job_id, user.id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", code="JOB_NOT_FOUND")
        return JobOut.of(job)
