"""Durable chat requests and their event log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from ytresearch.db.models import (
    ChatEvent,
    ChatRequest,
    utcnow,
)
from ytresearch.repository.base import ACTIVE_REQUEST_STATUSES, Queries, table_of

FINAL_REQUEST_STATUSES = ("complete", "cancelled", "failed")


@dataclass(frozen=True)
class RequestEnd:
    """How a chat request ended: its final status, its terminal event's id, when, until when its
    events are kept, and the assistant message saved for it (if any)."""

    status: str
    last_seq: int
    finished_at: datetime
    expires_at: datetime
    assistant_message_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ChatLog:
    """What a reader following from the log finds after its cursor: the events, or, when there are
    none, where the request stands (``status`` None when its row is gone; its terminal event
    again when it has ended; ``stale`` when its owner stopped heartbeating)."""

    events: list[ChatEvent]
    status: str | None = None
    stale: bool = False


class ChatRequestQueries(Queries):
    def add_chat_request(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        expires_at: datetime,
        user_message_id: uuid.UUID | None = None,
        video_ids: list[str] | None = None,
        status: str = "queued",
        owner: str | None = None,
        heartbeat_at: datetime | None = None,
        created_at: datetime | None = None,
        finished_at: datetime | None = None,
        last_seq: int = 0,
        id: uuid.UUID | None = None,
    ) -> ChatRequest:
        row = ChatRequest(
            id=id or uuid.uuid4(),
            user_id=user_id,
            session_id=session_id,
            user_message_id=user_message_id,
            video_ids=video_ids,
            status=status,
            owner=owner,
            heartbeat_at=heartbeat_at,
            created_at=created_at or utcnow(),
            finished_at=finished_at,
            expires_at=expires_at,
            last_seq=last_seq,
        )
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

    def chat_request_status(self, request_id: uuid.UUID) -> str | None:
        """A request's status; None when its row is gone (its session was deleted)."""
        return self.session.scalar(select(ChatRequest.status).where(ChatRequest.id == request_id))

    def count_active_requests(self, user_id: uuid.UUID) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(ChatRequest)
                .where(ChatRequest.user_id == user_id, ChatRequest.status.in_(ACTIVE_REQUEST_STATUSES))
            )
            or 0
        )

    def finish_chat_request(self, request_id: uuid.UUID, end: RequestEnd) -> None:
        """Record how a chat request ended (status, last event id, times, the saved reply)."""
        table = table_of(ChatRequest)
        self.session.execute(
            update(table)
            .where(table.c.id == request_id)
            .values(
                status=end.status,
                last_seq=end.last_seq,
                finished_at=end.finished_at,
                expires_at=end.expires_at,
                assistant_message_id=end.assistant_message_id,
            )
        )

    def flag_cancel(self, request_id: uuid.UUID) -> None:
        table = table_of(ChatRequest)
        self.session.execute(update(table).where(table.c.id == request_id).values(cancel_requested=True))

    def heartbeat(self, owner: str, now: datetime) -> dict[uuid.UUID, bool]:
        """Mark every running request of this owner (process) alive, in one statement; returns
        each one's id with whether a client asked to cancel it through another process (a running
        request missing here was deleted, with its session, or is locked right now: see
        ``running_elsewhere``).

        Rows another transaction holds (the event log ending several requests at once, a cancel)
        are skipped, not waited for: waiting could deadlock with a transaction that locks the same
        rows in another order (PostgreSQL chose this statement's victim after a second, stalling
        every stream meanwhile), and those rows are in use anyway."""
        table = table_of(ChatRequest)
        mine = (
            select(table.c.id)
            .where(table.c.owner == owner, table.c.status.in_(ACTIVE_REQUEST_STATUSES))
            .with_for_update(skip_locked=True)
        )
        rows = self.session.execute(
            update(table)
            .where(table.c.id.in_(mine.scalar_subquery()))
            .values(heartbeat_at=now)
            .returning(table.c.id, table.c.cancel_requested)
        )
        return {row.id: bool(row.cancel_requested) for row in rows}

    def stale_chat_requests(self, heartbeat_before: datetime) -> list[uuid.UUID]:
        """Running requests whose owner has not heartbeated since ``heartbeat_before``."""
        return list(
            self.session.scalars(
                select(ChatRequest.id).where(
                    ChatRequest.status.in_(ACTIVE_REQUEST_STATUSES),
                    ChatRequest.heartbeat_at < heartbeat_before,
                )
            )
        )

    def expire_chat_requests(self, now: datetime) -> list[uuid.UUID]:
        """Finished requests kept past their expiry: their events are deleted and the row stays as
        an ``expired`` tombstone. Returns their ids."""
        ids = list(
            self.session.scalars(
                select(ChatRequest.id).where(
                    ChatRequest.status.in_(FINAL_REQUEST_STATUSES), ChatRequest.expires_at < now
                )
            )
        )
        if ids:
            self.session.execute(delete(ChatEvent).where(ChatEvent.request_id.in_(ids)))
            self.session.execute(update(ChatRequest).where(ChatRequest.id.in_(ids)).values(status="expired"))
        return ids

    def add_chat_events(self, events: Sequence[tuple[uuid.UUID, int, str, dict[str, Any]]]) -> None:
        """Append (request id, seq, type, data) rows in one statement.

        A Core insert on the table, not the ORM's bulk insert: the rows are never loaded back as
        objects, and the ORM's per-row bookkeeping was most of the cost of a flush."""
        if events:
            now = utcnow()
            self.session.execute(
                insert(table_of(ChatEvent)),
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

    def read_chat_log(self, request_id: uuid.UUID, after_seq: int, stale_before: datetime) -> ChatLog:
        """The log after ``after_seq`` for a reader on another process than the request's owner;
        a cursor at or past a finished request's end gets its terminal event again. ``stale``:
        still running, but not heartbeated since ``stale_before``."""
        events = self.chat_events_after(request_id, after_seq)
        if events:
            return ChatLog(events)
        row = self.get_chat_request(request_id)
        if row is None:
            return ChatLog([])
        if row.status in FINAL_REQUEST_STATUSES and row.last_seq:
            terminal = self.chat_event(request_id, row.last_seq)
            if terminal is not None:
                return ChatLog([terminal], row.status)
        stale = row.status in ACTIVE_REQUEST_STATUSES and (
            row.heartbeat_at is None or row.heartbeat_at < stale_before
        )
        return ChatLog([], row.status, stale)
