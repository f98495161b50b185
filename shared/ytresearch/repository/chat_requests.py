"""Durable chat requests and their event log.

The log keeps every event a reader was sent under its own id, but not one row per event: a run of
token events written together is one row (a checkpoint) whose ``seq`` is the run's last id and
whose ``data`` is ``{"text": the run's text, "parts": [each event's length]}``, so a reader at any
cursor inside it gets exactly the events after its cursor, sliced from the row. Every other event
is its own row. ``logged_events`` is the one place that turns rows back into events.
"""

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
class LoggedEvent:
    """One event of a request's log, as it was sent: its id, type and data."""

    seq: int
    type: str
    data: dict[str, Any]


def log_rows(
    events: Sequence[tuple[uuid.UUID, int, str, dict[str, Any]]],
) -> list[tuple[uuid.UUID, int, str, dict[str, Any]]]:
    """(request id, seq, type, data) events as log rows: each run of consecutive token events of
    one request becomes one checkpoint row (see the module docstring); other events stay as
    they are."""
    rows: list[tuple[uuid.UUID, int, str, dict[str, Any]]] = []
    run: list[tuple[uuid.UUID, int, str, dict[str, Any]]] = []

    def close_run() -> None:
        if len(run) == 1:
            rows.append(run[0])
        elif run:
            texts = [str(data["text"]) for _, _, _, data in run]
            rid, last_seq = run[-1][0], run[-1][1]
            rows.append((rid, last_seq, "token", {"text": "".join(texts), "parts": [len(t) for t in texts]}))
        run.clear()

    for event in events:
        rid, seq, kind, _ = event
        if kind == "token" and run and (run[-1][0], run[-1][1] + 1) == (rid, seq):
            run.append(event)
            continue
        close_run()
        if kind == "token":
            run.append(event)
        else:
            rows.append(event)
    close_run()
    return rows


def logged_events(rows: Sequence[ChatEvent], after_seq: int = 0) -> list[LoggedEvent]:
    """The events after ``after_seq`` that log rows hold, in order, each under its own id."""
    events: list[LoggedEvent] = []
    for row in rows:
        parts = row.data.get("parts") if row.type == "token" else None
        if not parts:
            if row.seq > after_seq:
                events.append(LoggedEvent(row.seq, row.type, row.data))
            continue
        text, start = str(row.data["text"]), 0
        first = row.seq - len(parts) + 1
        for i, length in enumerate(parts):
            if first + i > after_seq:
                events.append(LoggedEvent(first + i, "token", {"text": text[start : start + length]}))
            start += length
    return events


@dataclass(frozen=True)
class ChatLog:
    """What a reader following from the log finds after its cursor: the events, or, when there are
    none, where the request stands (``status`` None when its row is gone; its terminal event
    again when it has ended; ``stale`` when its owner stopped heartbeating)."""

    events: list[LoggedEvent]
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
        """Append (request id, seq, type, data) events in one statement, runs of tokens as one
        checkpoint row each (``log_rows``). The caller tells followers on other processes once
        the transaction has committed (``streaming_service.chat_requests.event_log.tell_followers``).

        A Core insert on the table, not the ORM's bulk insert: the rows are never loaded back as
        objects, and the ORM's per-row bookkeeping was most of the cost of a flush."""
        if events:
            now = utcnow()
            self.session.execute(
                insert(table_of(ChatEvent)),
                [
                    {"request_id": rid, "seq": seq, "type": kind, "data": data, "created_at": now}
                    for rid, seq, kind, data in log_rows(events)
                ],
            )

    def chat_event(self, request_id: uuid.UUID, seq: int) -> LoggedEvent | None:
        """The event with this id, when a row ends with it (a terminal event always does)."""
        row = self.session.get(ChatEvent, (request_id, seq))
        return logged_events([row])[-1] if row is not None else None

    def chat_events_after(self, request_id: uuid.UUID, after_seq: int) -> list[LoggedEvent]:
        rows = self.session.scalars(
            select(ChatEvent)
            .where(ChatEvent.request_id == request_id, ChatEvent.seq > after_seq)
            .order_by(ChatEvent.seq)
        )
        return logged_events(list(rows), after_seq)

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
