"""Per-user rate limits on writes, counted from the rows the writes create (so they hold across
every Lambda instance and every streaming task, with no extra store)."""

from __future__ import annotations

from datetime import timedelta
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
    limit = per_minute(settings, kind)
    if repo.count_recent_writes(user.id, kind, utcnow() - WINDOW) >= limit:
        raise RateLimitedError(
            f"at most {limit} {LABELS[kind]} per minute; try again shortly",
            retry_after=int(WINDOW.total_seconds()),
            code="RATE_LIMITED",
        )
