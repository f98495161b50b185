"""Users, API keys and identities from the sign-in provider (Cognito)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ytresearch.db.models import ApiKey, utcnow
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


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about an API key: never the key, never its digest."""

    id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        return cls(key.id, key.prefix, key.created_at, key.revoked_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def list_keys(store: Store, email: str) -> list[KeyInfo]:
    """A user's API keys (revoked ones included), oldest first."""
    email = normalize_email(email)
    with store.transaction() as repo:
        user = repo.get_user_by_email(email)
        if user is None:
            raise NotFoundError(f"no user with email {email}", code="USER_NOT_FOUND")
        return [KeyInfo.of(key) for key in repo.list_api_keys(user.id)]


def revoke_key(
    store: Store,
    email: str,
    *,
    key_id: str | None = None,
    prefix: str | None = None,
    cache: KeyCache | None = None,
) -> KeyInfo:
    """Revoke one of a user's API keys, named by its id or its display prefix (``ytr_abc123``).

    From then on the key fails everywhere: the database lookup skips revoked keys, ``cache`` (this
    process's) forgets it at once, and other processes' caches within their few-second TTL.
    Revoking a revoked key is not an error (it keeps its first revocation time).
    """
    email = normalize_email(email)
    if (key_id is None) == (prefix is None):
        raise InvalidInputError(
            "name the key by its id or by its prefix (one of them)", code="INVALID_KEY_REF"
        )
    wanted_id = None
    if key_id is not None:
        try:
            wanted_id = uuid.UUID(key_id.strip())
        except ValueError:
            raise InvalidInputError(f"not a key id: {key_id!r}", code="INVALID_KEY_ID") from None
    with store.transaction() as repo:
        user = repo.get_user_by_email(email)
        if user is None:
            raise NotFoundError(f"no user with email {email}", code="USER_NOT_FOUND")
        found = repo.find_api_keys(
            user.id, key_id=wanted_id, prefix=prefix.strip() if prefix is not None else None
        )
        if not found:
            raise NotFoundError(f"{email} has no key {key_id or prefix}", code="KEY_NOT_FOUND")
        if len(found) > 1:
            raise ConflictError(
                f"{len(found)} keys of {email} start with {prefix}: revoke by id (see list-keys)",
                code="AMBIGUOUS_KEY_PREFIX",
                details={"key_ids": [str(key.id) for key in found]},
            )
        (key,) = found
        repo.revoke_api_key(key, utcnow())
        info, digest = KeyInfo.of(key), key.key_hash
    if cache is not None:
        cache.discard(digest)
    return info


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


class KeyCache:
    """Recently verified API keys (by digest) for a few seconds, per process: a chat costs two
    authenticated requests (POST, then the stream), and the lookup is a database round trip.

    Revocation: ``revoke_key`` evicts the key from the cache of the process that revokes it, so
    there it fails at once; every other process (each Lambda container, each Fargate task) stops
    accepting it when its entry expires, within ``ttl`` seconds (YTR_AUTH_CACHE_SECONDS, default
    5). A short TTL rather than a revocation check per hit: a check is the very database round
    trip the cache saves, and a few seconds is far shorter than any key-leak response."""

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] | None = None
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        self._entries: dict[str, tuple[float, AuthUser]] = {}

    def get(self, digest: str) -> AuthUser | None:
        entry = self._entries.get(digest)
        if entry is None or self._clock() - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, digest: str, user: AuthUser) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; entries are cheap to rebuild
        self._entries[digest] = (self._clock(), user)

    def discard(self, digest: str) -> None:
        self._entries.pop(digest, None)


MAX_API_KEY_CHARS = 200


def cached_key_user(cache: KeyCache, api_key: str) -> AuthUser | None:
    """The user of a recently verified API key, from memory (no database, no thread); None when
    the key is not in the cache (``authenticate`` then decides)."""
    if len(api_key) > MAX_API_KEY_CHARS:
        return None
    return cache.get(hash_api_key(api_key))


def authenticate(store: Store, api_key: str | None, cache: KeyCache | None = None) -> AuthUser:
    if not api_key:
        raise UnauthorizedError(
            "missing credentials: send an API key in the X-API-Key header "
            "or an access token as 'Authorization: Bearer <token>'",
            code="MISSING_API_KEY",
        )
    if len(api_key) > MAX_API_KEY_CHARS:
        raise UnauthorizedError("API key is not valid", code="INVALID_API_KEY")
    digest = hash_api_key(api_key)
    if cache is not None and (known := cache.get(digest)) is not None:
        return known
    with store.transaction() as repo:
        user = repo.user_for_key_hash(digest)
        if user is None:
            raise UnauthorizedError("API key is not valid", code="INVALID_API_KEY")
        found = AuthUser(user.id, user.email)
    if cache is not None:
        cache.put(digest, found)
    return found


EXTERNAL_EMAIL_DOMAIN = "cognito"  # placeholder addresses <sub>@cognito for identities without one
MAX_EXTERNAL_ID_CHARS = 255


def _provisioned_email(subject: str, username: str | None) -> list[str]:
    """Candidate emails for a new token user: the username when it is an address, then a
    placeholder derived from the subject (never taken by a real address)."""
    candidates = []
    if username:
        with contextlib.suppress(InvalidInputError):  # a username that is not an address
            candidates.append(normalize_email(username))
    candidates.append(f"{subject.lower()}@{EXTERNAL_EMAIL_DOMAIN}")
    return candidates


def authenticate_external(store: Store, subject: str, username: str | None = None) -> AuthUser:
    """The user a verified sign-in token belongs to, found by the provider's subject (``sub``)
    and created on first sign-in.

    A new user never takes over an existing account: when the username's address already belongs
    to another user (say one created with ``ytr-admin create-user``), the new user gets the
    placeholder address ``<sub>@cognito`` instead, and the two stay separate until an admin links
    them (``ytr-admin link-identity``).
    """
    if not subject or len(subject) > MAX_EXTERNAL_ID_CHARS:
        raise UnauthorizedError("the token names no valid subject", code="INVALID_TOKEN")
    for _ in range(3):  # a racing first request may insert the same subject or address first
        with store.transaction() as repo:
            user = repo.get_user_by_external_id(subject)
            if user is not None:
                return AuthUser(user.id, user.email)
            for email in _provisioned_email(subject, username):
                if repo.get_user_by_email(email) is not None:
                    continue
                created = repo.try_add_user(email, external_id=subject)
                if created is not None:
                    return AuthUser(created.id, created.email)
                break  # lost a race: look again in a fresh transaction
    raise ConflictError("could not provision a user for this sign-in; try again", code="USER_CONFLICT")


def link_external_identity(store: Store, email: str, subject: str) -> tuple[AuthUser, str | None]:
    """Let the sign-in identity ``subject`` act as the existing user ``email`` (an admin task).

    Returns the user and the email of the user the identity was moved from, if any (typically
    the placeholder user provisioned on its first sign-in; that user and its data stay).
    """
    email = normalize_email(email)
    subject = subject.strip()
    if not subject or len(subject) > MAX_EXTERNAL_ID_CHARS:
        raise InvalidInputError("give the identity's subject (the token's sub claim)", code="INVALID_SUBJECT")
    with store.transaction() as repo:
        user = repo.get_user_by_email(email)
        if user is None:
            raise NotFoundError(f"no user with email {email}", code="USER_NOT_FOUND")
        previous = repo.get_user_by_external_id(subject)
        moved_from = None
        if previous is not None and previous.id != user.id:
            moved_from = previous.email
            repo.set_external_id(previous, None)
        repo.set_external_id(user, subject)
        return AuthUser(user.id, user.email), moved_from
