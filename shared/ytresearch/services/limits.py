"""Per-user rate limits on writes, counted from the rows the writes create (so they hold across
every Lambda instance and every streaming task, with no extra store)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from ytresearch.config import Settings
from ytresearch.db.models import utcnow
from ytresearch.errors import RateLimitedError
from ytresearch.repository import Repository
from ytresearch.services.users import AuthUser

WriteKind = Literal["session", "video", "message"]
WINDOW = timedelta(minutes=1)
LABELS = {"session": "new sessions", "video": "videos added", "message": "chat messages"}


def per_minute(settings: Settings, kind: WriteKind) -> int:
    return {
        "session": settings.session_creates_per_minute,
        "video": settings.video_adds_per_minute,
        "message": settings.chat_posts_per_minute,
    }[kind]


def enforce_write_rate(repo: Repository, settings: Settings, user: AuthUser, kind: WriteKind) -> None:
    """429 RATE_LIMITED (Retry-After 60) when the user made too many writes of this kind in the
    last minute."""
    check_write_count(settings, kind, repo.count_recent_writes(user.id, kind, window_start()))


def window_start() -> datetime:
    return utcnow() - WINDOW


def check_write_count(settings: Settings, kind: WriteKind, recent: int) -> None:
    """``enforce_write_rate`` for a count the caller already has (read with other rows)."""
    limit = per_minute(settings, kind)
    if recent >= limit:
        raise RateLimitedError(
            f"at most {limit} {LABELS[kind]} per minute; try again shortly",
            retry_after=int(WINDOW.total_seconds()),
            code="RATE_LIMITED",
        )


def check_active_requests(settings: Settings, active: int) -> None:
    """429 TOO_MANY_ACTIVE_REQUESTS when the user already has the most chat requests running."""
    limit = settings.max_active_requests_per_user
    if active >= limit:
        raise RateLimitedError(
            f"at most {limit} chat requests may run at once; wait for one to finish",
            retry_after=5,
            code="TOO_MANY_ACTIVE_REQUESTS",
        )
