"""Users and API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ytresearch.errors import ConflictError, InvalidInputError, NotFoundError, UnauthorizedError
from ytresearch.repository import Store
from ytresearch.security import generate_api_key, hash_api_key, key_display_prefix


@dataclass(frozen=True)
class AuthUser:
    id: uuid.UUID
    email: str


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise InvalidInputError(f"not a valid email address: {email!r}", code="INVALID_EMAIL")
    return email


def create_user(store: Store, email: str) -> tuple[AuthUser, str]:
    """Create a user and their first API key; returns the key in clear (shown once, never stored)."""
    email = normalize_email(email)
    key = generate_api_key()
    with store.transaction() as repo:
        if repo.get_user_by_email(email) is not None:
            raise ConflictError(f"a user with email {email} already exists", code="USER_EXISTS")
        user = repo.add_user(email)
        repo.add_api_key(user.id, hash_api_key(key), key_display_prefix(key))
        return AuthUser(user.id, user.email), key


def create_api_key(store: Store, email: str) -> str:
    """Issue another API key for an existing user."""
    email = normalize_email(email)
    key = generate_api_key()
    with store.transaction() as repo:
        user = repo.get_user_by_email(email)
        if user is None:
            raise NotFoundError(f"no user with email {email}", code="USER_NOT_FOUND")
        repo.add_api_key(user.id, hash_api_key(key), key_display_prefix(key))
    return key


def ensure_user_with_key(store: Store, email: str, key: str) -> AuthUser:
    """Make sure ``email`` exists and ``key`` is one of its keys (the local run's dev user)."""
    email = normalize_email(email)
    digest = hash_api_key(key)
    with store.transaction() as repo:
        owner = repo.user_for_key_hash(digest)
        if owner is not None:
            return AuthUser(owner.id, owner.email)
        user = repo.get_user_by_email(email) or repo.add_user(email)
        repo.add_api_key(user.id, digest, key_display_prefix(key))
        return AuthUser(user.id, user.email)


def authenticate(store: Store, api_key: str | None) -> AuthUser:
    if not api_key:
        raise UnauthorizedError("missing API key: send it in the X-API-Key header", code="MISSING_API_KEY")
    if len(api_key) > 200:
        raise UnauthorizedError("API key is not valid", code="INVALID_API_KEY")
    with store.transaction() as repo:
        user = repo.user_for_key_hash(hash_api_key(api_key))
        if user is None:
            raise UnauthorizedError("API key is not valid", code="INVALID_API_KEY")
        return AuthUser(user.id, user.email)
