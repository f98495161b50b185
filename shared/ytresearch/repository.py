"""Data access: the only module that builds queries. Services use it inside a Store transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy import cast as cast_sql
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ytresearch.db.models import (
    ApiKey,
    Base,
    ChatEvent,
    ChatRequest,
    IngestJob,
    Message,
    ResearchSession,
    SessionVideo,
    User,
    Video,
    utcnow,
)
from ytresearch.pagination import Cursor

ACTIVE_REQUEST_STATUSES = ("queued", "streaming")
TOUCH_SLACK = timedelta(minutes=1)


def _changed_rows(result: Result[Any]) -> bool:
    """Whether an UPDATE or DELETE touched a row (its CursorResult's row count)."""
    return bool(cast(CursorResult[Any], result).rowcount)


def _table(model: type[Base]) -> Table:
    """A model's table, for Core statements that skip the ORM's per-object bookkeeping."""
    return cast(Table, model.__table__)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------ users and keys
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
        return self.session.scalar(
            select(User)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )

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

    # ------------------------------------------------------------ sessions
    def add_session(self, user_id: uuid.UUID, title: str) -> ResearchSession:
        row = ResearchSession(user_id=user_id, title=title)
        self.session.add(row)
        self.session.flush()
        return row

    def get_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> ResearchSession | None:
        return self.session.scalar(
            select(ResearchSession).where(
                ResearchSession.id == session_id, ResearchSession.user_id == user_id
            )
        )

    def list_sessions(self, user_id: uuid.UUID, limit: int, cursor: Cursor | None) -> list[ResearchSession]:
        query = select(ResearchSession).where(ResearchSession.user_id == user_id)
        if cursor is not None:
            query = query.where(
                tuple_(ResearchSession.created_at, ResearchSession.id)
                < tuple_(literal(cursor.created_at), literal(cursor.id))
            )
        query = query.order_by(ResearchSession.created_at.desc(), ResearchSession.id.desc())
        return list(self.session.scalars(query.limit(limit)))

    def delete_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Delete one of the user's sessions (the database cascades to what hangs off it); False
        when there was none. The DELETE itself decides: of concurrent deletes exactly one wins."""
        table = _table(ResearchSession)
        result = self.session.execute(
            delete(table).where(table.c.id == session_id, table.c.user_id == user_id)
        )
        return _changed_rows(result)

    def session_exists(self, session_id: uuid.UUID) -> bool:
        found = self.session.scalar(select(ResearchSession.id).where(ResearchSession.id == session_id))
        return found is not None

    def lock_user(self, user_id: uuid.UUID) -> None:
        """Serialise this user's chat starts until the transaction ends, so the running-requests
        count read next and the request row written after it are one atomic step. PostgreSQL: a
        row lock that does not block inserts referencing the user (FOR NO KEY UPDATE). SQLite has
        no row locks: a no-op write takes the database's write lock at once."""
        users = _table(User)
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(update(users).where(users.c.id == user_id).values(email=users.c.email))
        else:
            self.session.execute(
                select(users.c.id).where(users.c.id == user_id).with_for_update(key_share=True)
            )

    def touch_session(self, session_id: uuid.UUID) -> None:
        # A Core UPDATE: the ORM's bulk update would also look for loaded objects to refresh.
        table = _table(ResearchSession)
        self.session.execute(update(table).where(table.c.id == session_id).values(updated_at=utcnow()))

    def session_for_chat(
        self, user_id: uuid.UUID, session_id: uuid.UUID, since: datetime
    ) -> tuple[ResearchSession, int, int] | None:
        """The caller's session with, in the same round trip, the user's running chat requests
        and the chat messages they sent since ``since`` (the two limits a new chat checks);
        None when the session is not theirs."""
        active = (
            select(func.count())
            .select_from(ChatRequest)
            .where(ChatRequest.user_id == user_id, ChatRequest.status.in_(ACTIVE_REQUEST_STATUSES))
            .scalar_subquery()
        )
        row = self.session.execute(
            select(
                ResearchSession,
                active,
                self._recent_writes_query(user_id, "message", since).scalar_subquery(),
            ).where(ResearchSession.id == session_id)  # by primary key only; owner checked below
        ).first()
        # (With the owner in the WHERE clause too, a generic plan made without statistics used
        # the (user_id, updated_at) index and filtered every session of the user by id.)
        if row is None or row[0].user_id != user_id:
            return None
        return row[0], row[1] or 0, row[2] or 0

    # ------------------------------------------------------------ videos
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
        links, sessions = _table(SessionVideo), _table(ResearchSession)
        owned = select(sessions.c.id).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        result = self.session.execute(
            delete(links).where(
                links.c.session_id == session_id, links.c.video_id == video_id, owned.exists()
            )
        )
        return _changed_rows(result)

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
        return _changed_rows(result)

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

    # ------------------------------------------------------------ messages
    def add_message(self, *, flush: bool = True, **fields: Any) -> Message:
        """A new message. ``flush=False`` leaves the INSERT to the next flush (the commit), so it
        goes out with the transaction's other rows; the id is set here either way."""
        message = Message(id=fields.pop("id", None) or uuid.uuid4(), **fields)
        self.session.add(message)
        if flush:
            self.session.flush()
        return message

    def get_message(self, message_id: uuid.UUID) -> Message | None:
        return self.session.get(Message, message_id)

    def list_messages(self, session_id: uuid.UUID, limit: int, cursor: Cursor | None) -> list[Message]:
        query = select(Message).where(Message.session_id == session_id)
        if cursor is not None:
            query = query.where(
                tuple_(Message.created_at, Message.id)
                < tuple_(literal(cursor.created_at), literal(cursor.id))
            )
        query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def recent_messages(self, session_id: uuid.UUID, limit: int) -> list[Message]:
        """The newest ``limit`` messages, oldest first (for building chat context)."""
        return list(reversed(self.list_messages(session_id, limit, None)))

    def count_recent_writes(self, user_id: uuid.UUID, kind: str, since: datetime) -> int:
        """How many sessions, video links or chat messages the user created since ``since``."""
        return self.session.scalar(self._recent_writes_query(user_id, kind, since)) or 0

    @staticmethod
    def _recent_writes_query(user_id: uuid.UUID, kind: str, since: datetime) -> Select[tuple[int]]:
        if kind == "session":
            return (
                select(func.count())
                .select_from(ResearchSession)
                .where(ResearchSession.user_id == user_id, ResearchSession.created_at > since)
            )
        # Video links and messages are counted through the user's sessions. Every such write
        # touches its session in the same transaction, so only sessions updated around the window
        # can hold one: those few are read through ix_sessions_user_updated, and each one's rows
        # through its (session_id, time) index. The per-session count is a correlated subquery on
        # purpose: PostgreSQL never turns it into a join, so even a plan made on stale statistics
        # (a prepared statement's generic plan on young tables) cannot become a scan of the whole
        # table nested with the sessions, which took 25 ms per chat at a few hundred messages.
        # The slack covers a transaction that touched the session just before inserting its row.
        recent = _table(ResearchSession).alias("recent_sessions")  # never the caller's sessions
        if kind == "video":
            per_session = select(func.count()).where(
                SessionVideo.session_id == recent.c.id, SessionVideo.added_at > since
            )
        else:
            per_session = select(func.count()).where(
                Message.session_id == recent.c.id, Message.role == "user", Message.created_at > since
            )
        return (
            # SUM of counts is NUMERIC in PostgreSQL: cast back to a plain integer.
            select(
                cast_sql(func.coalesce(func.sum(per_session.correlate(recent).scalar_subquery()), 0), Integer)
            )
            .select_from(recent)
            .where(recent.c.user_id == user_id, recent.c.updated_at > since - TOUCH_SLACK)
        )

    def add_chat_request(self, **fields: Any) -> ChatRequest:
        row = ChatRequest(id=fields.pop("id", None) or uuid.uuid4(), **fields)
        self.session.add(row)
        self.session.flush()  # with any pending rows (the chat start's message): one flush
        return row

    def get_chat_request(self, request_id: uuid.UUID, *, for_update: bool = False) -> ChatRequest | None:
        query = select(ChatRequest).where(ChatRequest.id == request_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def get_chat_requests(self, request_ids: Sequence[uuid.UUID]) -> list[ChatRequest]:
        return list(self.session.scalars(select(ChatRequest).where(ChatRequest.id.in_(request_ids))))

    def count_active_requests(self, user_id: uuid.UUID) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(ChatRequest)
                .where(ChatRequest.user_id == user_id, ChatRequest.status.in_(ACTIVE_REQUEST_STATUSES))
            )
            or 0
        )

    def finish_chat_request(self, request_id: uuid.UUID, **values: Any) -> None:
        """Record how a chat request ended (status, last event id, times, the saved reply)."""
        table = _table(ChatRequest)
        self.session.execute(update(table).where(table.c.id == request_id).values(**values))

    def flag_cancel(self, request_id: uuid.UUID) -> None:
        table = _table(ChatRequest)
        self.session.execute(update(table).where(table.c.id == request_id).values(cancel_requested=True))

    def heartbeat(self, owner: str, now: datetime) -> dict[uuid.UUID, bool]:
        """Mark every running request of this owner (process) alive, in one statement; returns
        each one's id with whether a client asked to cancel it through another process (a running
        request missing here was deleted, with its session)."""
        table = _table(ChatRequest)
        rows = self.session.execute(
            update(table)
            .where(table.c.owner == owner, table.c.status.in_(ACTIVE_REQUEST_STATUSES))
            .values(heartbeat_at=now)
            .returning(table.c.id, table.c.cancel_requested)
        )
        return {row.id: bool(row.cancel_requested) for row in rows}

    def add_chat_events(self, events: Sequence[tuple[uuid.UUID, int, str, dict[str, Any]]]) -> None:
        """Append (request id, seq, type, data) rows in one statement.

        A Core insert on the table, not the ORM's bulk insert: the rows are never loaded back as
        objects, and the ORM's per-row bookkeeping was most of the cost of a flush."""
        if events:
            now = utcnow()
            self.session.execute(
                insert(_table(ChatEvent)),
                [
                    {"request_id": rid, "seq": seq, "type": kind, "data": data, "created_at": now}
                    for rid, seq, kind, data in events
                ],
            )

    def chat_event(self, request_id: uuid.UUID, seq: int) -> ChatEvent | None:
        return self.session.get(ChatEvent, (request_id, seq))

    def chat_events_after(self, request_id: uuid.UUID, after_seq: int) -> list[ChatEvent]:
        return list(
            self.session.scalars(
                select(ChatEvent)
                .where(ChatEvent.request_id == request_id, ChatEvent.seq > after_seq)
                .order_by(ChatEvent.seq)
            )
        )


class Store:
    """Hands out repositories bound to one transaction each."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        with self.session_factory() as session, session.begin():
            yield Repository(session)
