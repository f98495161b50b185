"""Users made straight in the database, with their API keys."""

from __future__ import annotations

import uuid

from ytresearch.bootstrap import Container
from ytresearch.services.users import AuthUser, create_user


def make_user(container: Container, email: str | None = None) -> tuple[AuthUser, str]:
    """A new user (a random address unless ``email`` is given) and its API key."""
    return create_user(container.store, email or f"user-{uuid.uuid4().hex[:8]}@example.com")
