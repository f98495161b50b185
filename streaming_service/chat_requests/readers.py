"""Reading a request from any process: follow its events (from memory on the owner, from the log
elsewhere), its status, and cancelling it.

Readers on the owning process wait on in-memory events. Readers elsewhere read the event log and
then wait for a notification naming their request (``log_listener``: PostgreSQL ``LISTEN``), or,
when there is no listener or it is down, poll the log every ``stream_poll_seconds`` (see README,
"Architecture").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from streaming_service.chat_requests.cleanup import close_orphan
from streaming_service.chat_requests.deps import ChatRequestDeps
from streaming_service.chat_requests.live import LiveRequest
from ytresearch.db.models import ChatRequest, utcnow
from ytresearch.errors import GoneError, NotFoundError
from ytresearch.events import AGENT_TYPES, StreamEvent
from ytresearch.repository import ACTIVE_REQUEST_STATUSES
from ytresearch.repository.chat_requests import FINAL_REQUEST_STATUSES, LoggedEvent
from ytresearch.services.endings import message_id_of, status_of
from ytresearch.services.users import AuthUser
from ytresearch.views import RequestStatusOut

RECONNECT_MS = 1000
TERMINAL_WRITE_WAIT = 5.0  # how long readers wait for a request's end to be written before seeing it


def stored_event(logged: LoggedEvent) -> StreamEvent:
    return StreamEvent(logged.type, logged.data, id=logged.seq)  # type: ignore[arg-type]  # written from StreamEvents


class Readers:
    """Follow, status and cancel for the requests of any process."""

    def __init__(self, deps: ChatRequestDeps) -> None:
        self.deps = deps
        self.poll_interval = deps.settings.stream_poll_seconds
        # With the log listener up, a follower waits for its request's notification; at most this
        # long (a notification lost in transit costs no more than this).
        self.notify_wait = max(self.poll_interval, 1.0)
        self.ping_interval = deps.settings.stream_ping_seconds
        self.closing = asyncio.Event()  # readers are told to reconnect elsewhere

    def reconnect_all(self) -> None:
        """Tell every reader to reconnect (another process will serve the log)."""
        self.closing.set()
        self.deps.live.wake_all()

    # ------------------------------------------------------------------ access
    def _owned_request(self, user: AuthUser, request_id: uuid.UUID) -> ChatRequest:
        with self.deps.store.transaction() as repo:
            row = repo.get_chat_request(request_id)
            if row is None or row.user_id != user.id:
                raise NotFoundError(f"chat request {request_id} not found", code="REQUEST_NOT_FOUND")
            if row.status == "expired" or (
                row.status in FINAL_REQUEST_STATUSES and row.expires_at < utcnow()
            ):
                raise GoneError(f"chat request {request_id} has expired", code="REQUEST_EXPIRED")
            return row

    async def get_request(self, user: AuthUser, request_id: uuid.UUID) -> ChatRequest:
        return await asyncio.to_thread(self._owned_request, user, request_id)

    async def check_access(self, user: AuthUser, request_id: uuid.UUID) -> None:
        """404/410 unless the caller may read this request. A reply running here answers from
        memory (the common POST-then-GET on one task); anything else asks the database."""
        live = self.deps.live.get(request_id)
        if live is not None and not live.finished and live.user_id == user.id:
            return
        await self.get_request(user, request_id)

    # ------------------------------------------------------------------ follow
    async def follow(self, request_id: uuid.UUID, after: int = 0) -> AsyncIterator[StreamEvent | None]:
        """Events after ``after`` until the terminal one; a cursor at or past the end gets the
        terminal event again. Yields None when nothing happened for ``ping_interval`` seconds so
        transports can send a keep-alive. Every pass awaits: a reader never spins."""
        seq = after
        last_sent = time.monotonic()
        while True:
            if self.closing.is_set():
                yield StreamEvent(
                    "reconnect",
                    {"reason": "server shutting down", "last_event_id": seq, "retry_ms": RECONNECT_MS},
                )
                return
            live = self.deps.live.get(request_id)
            batch = await (self._live_batch(live, seq) if live is not None else self._poll(request_id, seq))
            for event in batch:
                seq = max(seq, event.id or seq)
                last_sent = time.monotonic()
                yield event
                if event.terminal:
                    return
            if not batch and time.monotonic() - last_sent >= self.ping_interval:
                last_sent = time.monotonic()
                yield None

    async def _live_batch(self, live: LiveRequest, seq: int) -> list[StreamEvent]:
        """The events after ``seq`` that readers may be sent, waiting up to a ping interval."""
        if live.finished and seq >= len(live.events):
            # A reconnect at or after the end: the end again, once it is in the log.
            await live.wait_persisted(len(live.events), TERMINAL_WRITE_WAIT)
            return [live.events[-1]]
        if live.visible <= seq and not live.finished:
            await live.wait_visible(seq, self.ping_interval)
        if live.visible <= seq and live.finished:
            deadline = time.monotonic() + TERMINAL_WRITE_WAIT
            await live.wait_visible(seq, TERMINAL_WRITE_WAIT)
            if live.visible <= seq and time.monotonic() >= deadline:
                # The end could not be written (database down): the reader learns it anyway.
                return live.events[seq:]
        return live.events[seq : live.visible]

    async def _poll(self, request_id: uuid.UUID, after: int) -> list[StreamEvent]:
        listener = self.deps.listener
        # Registered before the log is read: a notification between the read and the wait wakes it.
        woken = listener.watch(request_id) if listener is not None else None
        try:
            events, status, stale = await asyncio.to_thread(self._read_log, request_id, after)
            if events:
                return events
            if stale:
                orphan = await asyncio.to_thread(close_orphan, self.deps, request_id)
                if orphan:
                    return await self._poll(request_id, after)
            if status not in ACTIVE_REQUEST_STATUSES:
                # Final status without a terminal event in the log (e.g. it was cleaned up), or gone.
                return [
                    StreamEvent(
                        "error",
                        {
                            "code": "REQUEST_EXPIRED",
                            "retryable": False,
                            "message": "this request's events are no longer available",
                        },
                        id=after + 1,
                    )
                ]
            if listener is None or woken is None:
                await asyncio.sleep(self.poll_interval)
            else:  # the listener going up or down wakes it too, to wait the way that then works
                await woken.wait(self.notify_wait if listener.up else self.poll_interval)
            return []
        finally:
            if listener is not None and woken is not None:
                listener.unwatch(woken)

    def _read_log(self, request_id: uuid.UUID, after: int) -> tuple[list[StreamEvent], str | None, bool]:
        stale_before = utcnow() - self.deps.stale_after
        with self.deps.store.transaction() as repo:
            found = repo.read_chat_log(request_id, after, stale_before)
            return [stored_event(row) for row in found.events], found.status, found.stale

    # ------------------------------------------------------------------ status and cancel
    async def status(self, user: AuthUser, request_id: uuid.UUID) -> RequestStatusOut:
        row = await self.get_request(user, request_id)
        live = self.deps.live.get(request_id)
        if live is not None:
            events = live.events[: live.visible]
        else:
            events = await asyncio.to_thread(self._stored_events, request_id)
        text = "".join(e.data.get("text", "") for e in events if e.type == "token")
        terminal = next((e for e in events if e.terminal), None)
        error = (
            {k: terminal.data.get(k) for k in ("code", "message", "retryable")}
            if terminal and terminal.type == "error"
            else None
        )
        return RequestStatusOut(
            request_id=row.id,
            session_id=row.session_id,
            status=status_of(terminal) if terminal else row.status,
            text=text,
            last_event_id=events[-1].id or 0 if events else 0,
            message_id=message_id_of(terminal) if terminal else None,
            error=error,
            agent_events=[e.ws() for e in events if e.type in AGENT_TYPES],
            created_at=row.created_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
        )

    def _stored_events(self, request_id: uuid.UUID) -> list[StreamEvent]:
        with self.deps.store.transaction() as repo:
            return [stored_event(row) for row in repo.chat_events_after(request_id, 0)]

    async def cancel(self, user: AuthUser, request_id: uuid.UUID) -> str:
        """Stop generation: at once on this process; through the database flag on another."""
        row = await self.get_request(user, request_id)
        if row.status in FINAL_REQUEST_STATUSES:
            return row.status
        live = self.deps.live.get(request_id)
        if live is not None and live.task is not None:
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
            # Answer once the end is recorded: a chat started right after this no longer counts
            # the cancelled one against the active-request limit.
            await live.wait_persisted(len(live.events), TERMINAL_WRITE_WAIT)
            terminal = next((e for e in reversed(live.events) if e.terminal), None)
            # A reply that had already finished when the cancel arrived keeps its real status.
            return status_of(terminal) if terminal else "cancelled"
        await asyncio.to_thread(self._flag_cancel, request_id)
        return "cancelling"

    def _flag_cancel(self, request_id: uuid.UUID) -> None:
        with self.deps.store.transaction() as repo:
            repo.flag_cancel(request_id)
