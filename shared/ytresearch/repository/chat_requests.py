"""Durable chat requests and their event log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from ytresearch.db.models import (
    ChatEvent,
    ChatRequest,
    utcnow,
)
from ytresearch.repository.base import ACTIVE_REQUEST_STATUSES, Queries, table_of


class ChatRequestQueries(Queries):
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
        table = table_of(ChatRequest)
        self.session.execute(update(table).where(table.c.id == request_id).values(**values))

    def flag_cancel(self, request_id: uuid.UUID) -> None:
        table = table_of(ChatRequest)
        self.session.execute(update(table).where(table.c.id == request_id).values(cancel_requested=True))

    def heartbeat(self, owner: str, now: datetime) -> dict[uuid.UUID, bool]:
        """Mark every running request of this owner (process) alive, in one statement; returns
        each one's id with whether a client asked to cancel it through another process (a running
        request missing here was deleted, with its session)."""
        table = table_of(ChatRequest)
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
