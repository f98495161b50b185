"""Users and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ytresearch.db.models import (
    ApiKey,
    User,
)
from ytresearch.repository.base import Queries

# Every request whose key is not in the key cache runs this: built once (see
# messages.RECENT_WRITES), so SQLAlchemy reuses its cache key and compiled form.
_USER_FOR_KEY_HASH = (
    select(User)
    .join(ApiKey, ApiKey.user_id == User.id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


class UserQueries(Queries):
    def get_user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def add_user(self, email: str) -> User:
        user = User(email=email)
        self.session.add(user)
        self.session.flush()
        return user

    def get_user_by_external_id(self, external_id: str) -> User | None:
        return self.session.scalar(select(User).where(User.external_id == external_id))

    def try_add_user(self, email: str, external_id: str | None = None) -> User | None:
        """Add a user; None when the email or external id is taken (e.g. by a racing request)."""
        try:
            with self.session.begin_nested():
                user = User(email=email, external_id=external_id)
                self.session.add(user)
            return user
        except IntegrityError:
            return None

    def set_external_id(self, user: User, external_id: str | None) -> None:
        user.external_id = external_id
        self.session.flush()  # one row at a time: the column is unique

    def add_api_key(self, user_id: uuid.UUID, key_hash: str, prefix: str) -> ApiKey:
        key = ApiKey(user_id=user_id, key_hash=key_hash, prefix=prefix)
        self.session.add(key)
        self.session.flush()
        return key

    def user_for_key_hash(self, key_hash: str) -> User | None:
        return self.session.scalar(_USER_FOR_KEY_HASH, {"key_hash": key_hash})

    def list_api_keys(self, user_id: uuid.UUID) -> list[ApiKey]:
        """A user's keys, revoked ones included, oldest first."""
        query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
        return list(self.session.scalars(query))

    def find_api_keys(
        self, user_id: uuid.UUID, *, key_id: uuid.UUID | None = None, prefix: str | None = None
    ) -> list[ApiKey]:
        """The user's keys with this id or display prefix (a prefix may, rarely, name several)."""
        query = select(ApiKey).where(ApiKey.user_id == user_id)
        if key_id is not None:
            query = query.where(ApiKey.id == key_id)
        if prefix is not None:
            query = query.where(ApiKey.prefix == prefix)
        return list(self.session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)))

    def revoke_api_key(self, key: ApiKey, when: datetime) -> None:
        """Mark a key revoked (once: a key already revoked keeps its first time)."""
        if key.revoked_at is None:
            key.revoked_at = when
            self.session.flush()
