"""Durable chat requests: run a turn as a background task, fan its events out to any number of
readers, and persist them (token deltas coalesced) so a reader on any process can replay from
``Last-Event-ID`` and follow until the end.

Live following: readers on the owning process wait on in-memory events (no polling); readers on
another process poll the event log every ``poll_interval`` (see README, "Architecture").
A reader never buffers: it keeps a cursor into the request's event list, so a slow client costs
one integer, not a queue, and never slows the writer or other readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from ytresearch.config import Settings
from ytresearch.db.models import ChatEvent, ChatRequest, utcnow
from ytresearch.db.outage import is_outage
from ytresearch.errors import DependencyUnavailableError, GoneError, NotFoundError
from ytresearch.events import TERMINAL_TYPES, StreamEvent
from ytresearch.observability.metrics import (
    ACTIVE_STREAMS,
    CHAT_REPLIES,
    ERRORS,
    Metrics,
    NullMetrics,
    code_dimension,
)
from ytresearch.ports import ChatModel
from ytresearch.repository import ACTIVE_REQUEST_STATUSES, Store
from ytresearch.services.chat import (
    EVENT_LOG_FAILED,
    SESSION_DELETED,
    SHUTDOWN,
    TAKEN_OVER,
    Generation,
    PreparedTurn,
    prepare_turn_in,
    record_reply,
    run_turn,
)
from ytresearch.services.users import AuthUser
from ytresearch.views import RequestStatusOut

log = logging.getLogger(__name__)

FINAL_STATUSES = ("complete", "cancelled", "failed")
RECONNECT_MS = 1000
TERMINAL_WRITE_WAIT = 5.0  # how long readers wait for a request's end to be written before seeing it
STATUS_BY_TERMINAL = {"complete": "complete", "cancelled": "cancelled", "error": "failed"}


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class LiveRequest:
    """A request running on this process.

    Readers are sent only the events already in the log (``visible``): what a client was shown
    survives a crash of this process, and the event that closes an interrupted request gets an id
    no client has seen. A request whose rows are gone (its session was deleted) is ``detached``:
    its events stay in memory only, and readers are sent them from there."""

    id: uuid.UUID
    user_id: uuid.UUID
    events: list[StreamEvent] = field(default_factory=list)
    task: asyncio.Task[Any] | None = None
    unsaved: list[StreamEvent] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    wrote: asyncio.Event = field(default_factory=asyncio.Event)
    text_parts: list[str] = field(default_factory=list)
    finished: bool = False
    detached: bool = False
    persisted_seq: int = 0  # the last event id written to the event log
    persisted: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def visible(self) -> int:
        """How many events readers may be sent."""
        return len(self.events) if self.detached else self.persisted_seq

    def emit(self, event: StreamEvent) -> None:
        event = replace(event, id=len(self.events) + 1)
        self.events.append(event)
        if event.type == "token":
            self.text_parts.append(event.data["text"])
        if event.terminal:
            self.finished = True
        if self.detached:
            self.wake()
            return
        self.unsaved.append(event)
        self.wrote.set()
        if event.terminal:
            self.wake()  # readers start waiting for the end to be written (see follow)

    def detach(self) -> None:
        self.detached = True
        self.unsaved = []
        self.persisted.set()
        self.wake()

    def mark_persisted(self, seq: int) -> None:
        self.persisted_seq = max(self.persisted_seq, seq)
        self.persisted.set()
        self.wake()

    async def wait_persisted(self, seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.persisted_seq < seq and not self.detached and time.monotonic() < deadline:
            self.persisted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.persisted.wait(), deadline - time.monotonic())

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_visible(self, seq: int, timeout: float) -> None:
        """Return when an event past ``seq`` may be sent, when the request ends, or after
        ``timeout`` seconds."""
        if self.visible > seq:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout)


class ChatRequestManager:
    """Starts, follows, cancels and cleans up chat requests for one process."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        model: ChatModel,
        *,
        owner: str | None = None,
        persist_interval: float = 0.05,
        heartbeat_interval: float = 1.0,
        metrics: Metrics | None = None,
        gauge_interval: float = 60.0,
    ) -> None:
        self.store, self.settings, self.model = store, settings, model
        self.metrics = metrics or NullMetrics()
        self.gauge_interval = gauge_interval  # ActiveStreams is also sent this often when unchanged
        self._gauge_at = 0.0
        self.owner = owner or process_id()
        self.poll_interval = settings.stream_poll_seconds
        self.persist_interval = persist_interval
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = settings.stream_stale_after_seconds
        self.ping_interval = settings.stream_ping_seconds
        self.live: dict[uuid.UUID, LiveRequest] = {}
        self.draining = False  # no new requests (SIGTERM received)
        self.closing = asyncio.Event()  # readers are told to reconnect elsewhere
        self._background: list[asyncio.Task[None]] = []
        # Set by every emit: one flusher writes all requests' new events in one transaction.
        self._dirty = asyncio.Event()
        self._flush_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._background = [
            asyncio.create_task(self._heartbeat_loop(), name="chat-heartbeat"),
            asyncio.create_task(self._cleanup_loop(), name="chat-cleanup"),
            asyncio.create_task(self._flusher(), name="chat-event-log"),
        ]

    async def stop(self) -> None:
        async with self._flush_lock:  # never cancel the flusher in the middle of a write
            for task in self._background:
                task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [r.task for r in self.live.values() if r.task and not r.task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self._final_flush()

    async def _final_flush(self) -> None:
        """The last write of what is still unsaved (stop, drain): logged, never raised, so a
        database outage at shutdown cannot keep the process from exiting."""
        try:
            await self._flush_all()
        except Exception:
            log.warning("could not write the last chat events at shutdown", exc_info=True)

    @property
    def active_count(self) -> int:
        return sum(1 for r in self.live.values() if not r.finished)

    async def drain(self, grace: float) -> None:
        """SIGTERM: refuse new requests, let running replies finish for ``grace`` seconds, then
        tell every reader to reconnect (another task will serve the log) and stop what still runs;
        those replies are saved as failed (REQUEST_INTERRUPTED), so none is left without a status."""
        self.draining = True
        log.info("draining: %d replies running, grace %.0f s", self.active_count, grace)
        await self.wait_idle(grace)
        self.closing.set()
        for live in self.live.values():
            live.wake()
        await asyncio.sleep(0.05)  # let readers send their reconnect instruction first
        running = [r.task for r in self.live.values() if r.task and not r.task.done()]
        for task in running:
            task.cancel(SHUTDOWN)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self._final_flush()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request runs here (drain); False if some still run after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.active_count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.active_count == 0

    # ------------------------------------------------------------------ start
    async def start_request(
        self, user: AuthUser, session_id: uuid.UUID, message: str, video_ids: Sequence[str] | None
    ) -> ChatRequest:
        """Check limits, save the user's message, record the request and start generating."""
        if self.draining:
            raise DependencyUnavailableError(
                "this server is shutting down; retry and you will reach another", code="SERVICE_DRAINING"
            )
        # A paused model (its circuit breaker opened) is refused fast, before any work.
        if (wait := self.model.paused_for()) is not None:
            raise DependencyUnavailableError(
                "the AI model is failing; requests are paused briefly while it recovers",
                code="MODEL_CIRCUIT_OPEN",
                details={"retry_after": wait},
            )
        row, turn = await asyncio.to_thread(self._begin, user, session_id, message, video_ids)
        live = LiveRequest(id=row.id, user_id=user.id, wrote=self._dirty)
        self.live[row.id] = live
        live.task = asyncio.create_task(self._run(live, turn), name=f"chat-{row.id}")
        log.info("chat request %s started", row.id, extra={"chat_request_id": str(row.id)})
        self._gauge()
        return row

    def _begin(
        self, user: AuthUser, session_id: uuid.UUID, message: str, video_ids: Sequence[str] | None
    ) -> tuple[ChatRequest, PreparedTurn]:
        """One transaction: the limits, the user's message and context, the request row."""
        now = utcnow()
        with self.store.transaction() as repo:
            turn = prepare_turn_in(
                repo,
                self.settings,
                self.model,
                user,
                session_id,
                message,
                video_ids,
                max_tokens=self.settings.chat_max_tokens,
                limit_active=True,
            )
            row = repo.add_chat_request(
                user_id=user.id,
                session_id=turn.session_id,
                user_message_id=turn.user_message_id,
                video_ids=turn.video_ids,
                status="streaming",
                owner=self.owner,
                heartbeat_at=now,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.request_ttl_seconds),
            )
            return row, turn

    async def _run(self, live: LiveRequest, turn: PreparedTurn) -> None:
        try:
            await run_turn(
                self.store,
                self.model,
                turn,
                live.emit,
                coalesce_interval=self.settings.stream_coalesce_seconds,
                save_timeout=self.settings.reply_save_timeout_seconds,
                reference=str(live.id),
            )
        except asyncio.CancelledError:
            # A cancel that landed outside the engine's own handling (e.g. before it started):
            # the request must still end, so readers stop and the active-request count drops.
            if not live.finished:
                live.emit(StreamEvent("cancelled", {"text": live.text}))
        except Exception:  # the engine handles model errors; this is the last resort
            log.exception("chat request %s crashed", live.id)
            if not live.finished:
                live.emit(
                    StreamEvent(
                        "error",
                        {
                            "code": "INTERNAL_ERROR",
                            "retryable": True,
                            "message": f"the server failed while writing this reply (request id {live.id})",
                            "text": live.text,
                        },
                    )
                )
        finally:
            self._finished(live)
            if live.detached:
                await self._record_detached_end(live)

    async def _record_detached_end(self, live: LiveRequest) -> None:
        """A request ended in memory only: still record its end (the terminal event, under the id
        its readers were given, and the final status) when its row exists, so it is not left
        running, to be closed later as orphaned with a second copy of the reply."""
        terminal = live.events[-1] if live.events and live.events[-1].terminal else None
        try:
            if terminal is not None:
                status = await asyncio.shield(asyncio.to_thread(self._request_status, live.id))
                if status in ACTIVE_REQUEST_STATUSES:  # not gone, not closed by another process
                    await asyncio.shield(asyncio.to_thread(self._persist, [(live.id, [terminal])]))
        except Exception:
            log.info("chat request %s: its end was not recorded", live.id)
        finally:
            asyncio.get_running_loop().call_later(30, self.live.pop, live.id, None)

    def _finished(self, live: LiveRequest) -> None:
        """ChatReplies by final status, Errors by code for a failed reply, the new ActiveStreams,
        and one log line (ids, status, sizes; never the text)."""
        terminal = live.events[-1] if live.events and live.events[-1].terminal else None
        status = STATUS_BY_TERMINAL.get(terminal.type, "failed") if terminal else "failed"
        code = code_dimension(terminal.data.get("code")) if terminal and terminal.type == "error" else None
        self.metrics.count(CHAT_REPLIES, status=status)
        if code is not None:
            self.metrics.count(ERRORS, code=code)
        self._gauge()
        log.log(
            logging.WARNING if status == "failed" else logging.INFO,
            "chat request %s finished: %s",
            live.id,
            status,
            extra={
                "chat_request_id": str(live.id),
                "status": status,
                "error_code": code,
                "reply_chars": len(live.text),
                "events": len(live.events),
            },
        )

    def _gauge(self) -> None:
        self._gauge_at = time.monotonic()
        self.metrics.count(ACTIVE_STREAMS, self.active_count)

    async def _flusher(self) -> None:
        """Write-behind of every live request's new events to the log: one transaction for all of
        them, at once when the flusher is idle (so the first token is not held back) and then at
        most once per ``persist_interval`` while events keep coming."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._flush_all()
            except Exception:
                log.warning("could not write chat events (database unavailable?); will retry", exc_info=True)
                self._dirty.set()
                await asyncio.sleep(0.5)
                continue
            await asyncio.sleep(self.persist_interval)

    async def _flush_all(self) -> None:
        async with self._flush_lock:  # one writer at a time: the flusher, stop or drain
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        batches = [(live, live.unsaved) for live in list(self.live.values()) if live.unsaved]
        if not batches:
            return
        for live, _ in batches:
            live.unsaved = []
        pending = list(batches)  # not written yet, in order
        try:
            try:
                await asyncio.to_thread(self._persist, [(live.id, batch) for live, batch in batches])
            except Exception as exc:
                if is_outage(exc) or len(batches) == 1:
                    raise
                # One request's rows are refused (e.g. its session was just deleted): write each
                # request alone, so no request's events wait on another's.
                for live, batch in batches:
                    await asyncio.to_thread(self._persist, [(live.id, batch)])
                    pending.remove((live, batch))
                    self._written(live, batch)
                return
            pending = []
            for live, batch in batches:
                self._written(live, batch)
        except Exception as exc:
            if is_outage(exc):
                raise
            refused, _ = pending.pop(0)
            await self._give_up(refused, exc)
            self._dirty.set()  # the others go out on the next pass
        finally:
            for live, batch in pending:  # put them back in order for the next attempt
                live.unsaved = batch + live.unsaved

    def _written(self, live: LiveRequest, batch: list[StreamEvent]) -> None:
        live.mark_persisted(batch[-1].id or 0)
        if live.finished and not live.unsaved:
            # Readers on this process may still be replaying from memory; keep it a while.
            asyncio.get_running_loop().call_later(30, self.live.pop, live.id, None)

    async def _give_up(self, live: LiveRequest, exc: BaseException) -> None:
        """A request whose events the log refuses is ended and kept in memory only: with
        SESSION_DELETED when its rows are gone, as taken over when another process already closed
        it (after this one lost the database), otherwise as failed with its partial text."""
        try:
            status: str | None = await asyncio.to_thread(self._request_status, live.id)
        except Exception:
            status = "streaming"
        reason = (
            SESSION_DELETED
            if status is None
            else TAKEN_OVER
            if status not in ACTIVE_REQUEST_STATUSES
            else EVENT_LOG_FAILED
        )
        log.warning(
            "chat request %s: events refused by the database (%s); ending it (%s)",
            live.id,
            type(exc).__name__,
            reason,
            extra={"chat_request_id": str(live.id)},
        )
        self._end_detached(live, reason)

    def _end_detached(self, live: LiveRequest, reason: str) -> None:
        live.detach()
        if live.task is not None and not live.task.done():
            live.task.cancel(reason)
        else:
            asyncio.get_running_loop().call_later(30, self.live.pop, live.id, None)

    def _request_status(self, request_id: uuid.UUID) -> str | None:
        with self.store.transaction() as repo:
            row = repo.get_chat_request(request_id)
            return None if row is None else row.status

    def _persist(self, batches: list[tuple[uuid.UUID, list[StreamEvent]]]) -> None:
        with self.store.transaction() as repo:
            repo.add_chat_events(
                [(request_id, e.id or 0, e.type, e.data) for request_id, batch in batches for e in batch]
            )
            # Only a request's end updates its row: the heartbeat loop keeps running rows fresh
            # (one UPDATE a second for all of them), so a busy stream costs one multi-row insert.
            now = utcnow()
            for request_id, batch in batches:
                terminal = next((e for e in batch if e.terminal), None)
                if terminal is None:
                    continue
                repo.finish_chat_request(
                    request_id,
                    last_seq=terminal.id,
                    status=STATUS_BY_TERMINAL[terminal.type],
                    finished_at=now,
                    expires_at=now + timedelta(seconds=self.settings.request_ttl_seconds),
                    assistant_message_id=_uuid_or_none(terminal.data.get("message_id")),
                )

    # ------------------------------------------------------------------ read
    def _owned_request(self, user: AuthUser, request_id: uuid.UUID) -> ChatRequest:
        with self.store.transaction() as repo:
            row = repo.get_chat_request(request_id)
            if row is None or row.user_id != user.id:
                raise NotFoundError(f"chat request {request_id} not found", code="REQUEST_NOT_FOUND")
            if row.status == "expired" or (row.status in FINAL_STATUSES and row.expires_at < utcnow()):
                raise GoneError(f"chat request {request_id} has expired", code="REQUEST_EXPIRED")
            return row

    async def get_request(self, user: AuthUser, request_id: uuid.UUID) -> ChatRequest:
        return await asyncio.to_thread(self._owned_request, user, request_id)

    async def check_access(self, user: AuthUser, request_id: uuid.UUID) -> None:
        """404/410 unless the caller may read this request. A reply running here answers from
        memory (the common POST-then-GET on one task); anything else asks the database."""
        live = self.live.get(request_id)
        if live is not None and not live.finished and live.user_id == user.id:
            return
        await self.get_request(user, request_id)

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
            live = self.live.get(request_id)
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
        events, row_status, stale = await asyncio.to_thread(self._read_log, request_id, after)
        if events:
            return events
        if stale:
            orphan = await asyncio.to_thread(self._close_orphan, request_id)
            if orphan:
                return await self._poll(request_id, after)
        if row_status not in ("queued", "streaming"):
            # Final status without a terminal event in the log (e.g. it was cleaned up).
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
        await asyncio.sleep(self.poll_interval)
        return []

    def _read_log(self, request_id: uuid.UUID, after: int) -> tuple[list[StreamEvent], str, bool]:
        with self.store.transaction() as repo:
            rows = repo.chat_events_after(request_id, after)
            events = [stored_event(r) for r in rows]
            if events:
                return events, "", False
            row = repo.get_chat_request(request_id)
            if row is None:
                return [], "expired", False
            if row.status in FINAL_STATUSES and row.last_seq:
                # A reconnect at or after the end: the end again.
                terminal = repo.chat_event(request_id, row.last_seq)
                if terminal is not None:
                    return [stored_event(terminal)], row.status, False
            stale = row.status in ("queued", "streaming") and (
                row.heartbeat_at is None or row.heartbeat_at < utcnow() - timedelta(seconds=self.stale_after)
            )
            return [], row.status, stale

    async def status(self, user: AuthUser, request_id: uuid.UUID) -> RequestStatusOut:
        row = await self.get_request(user, request_id)
        live = self.live.get(request_id)
        if live is not None:
            events = live.events[: live.visible]
        else:
            events = await asyncio.to_thread(self._stored_events, request_id)
        text = "".join(e.data.get("text", "") for e in events if e.type == "token")
        terminal = next((e for e in events if e.terminal), None)
        status = STATUS_BY_TERMINAL[terminal.type] if terminal else row.status
        error = (
            {k: terminal.data.get(k) for k in ("code", "message", "retryable")}
            if terminal and terminal.type == "error"
            else None
        )
        message_id = _uuid_or_none(terminal.data.get("message_id")) if terminal else None
        return RequestStatusOut(
            request_id=row.id,
            session_id=row.session_id,
            status=status,
            text=text,
            last_event_id=events[-1].id or 0 if events else 0,
            message_id=message_id,
            error=error,
            created_at=row.created_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
        )

    def _stored_events(self, request_id: uuid.UUID) -> list[StreamEvent]:
        with self.store.transaction() as repo:
            return [stored_event(row) for row in repo.chat_events_after(request_id, 0)]

    # ------------------------------------------------------------------ cancel
    async def cancel(self, user: AuthUser, request_id: uuid.UUID) -> str:
        """Stop generation: at once on this process; through the database flag on another."""
        row = await self.get_request(user, request_id)
        if row.status in FINAL_STATUSES:
            return row.status
        live = self.live.get(request_id)
        if live is not None and live.task is not None:
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
            # Answer once the end is recorded: a chat started right after this no longer counts
            # the cancelled one against the active-request limit.
            await live.wait_persisted(len(live.events), TERMINAL_WRITE_WAIT)
            terminal = next((e for e in reversed(live.events) if e.terminal), None)
            # A reply that had already finished when the cancel arrived keeps its real status.
            return STATUS_BY_TERMINAL[terminal.type] if terminal else "cancelled"
        await asyncio.to_thread(self._flag_cancel, request_id)
        return "cancelling"

    def _flag_cancel(self, request_id: uuid.UUID) -> None:
        with self.store.transaction() as repo:
            repo.flag_cancel(request_id)

    # ------------------------------------------------------------------ background work
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if time.monotonic() - self._gauge_at >= self.gauge_interval:
                self._gauge()  # a gauge with no gaps, even when nothing changes
            if not self.active_count:
                continue
            try:
                await self.heartbeat()
            except Exception:
                log.warning("heartbeat failed (database unavailable?)", exc_info=True)

    async def heartbeat(self) -> None:
        """Keep this process's running requests fresh, stop those a client cancelled through
        another process, and end those whose rows are gone (their session was deleted) or that
        another process closed as orphaned while this one could not reach the database."""
        running = [live for live in self.live.values() if not live.finished and not live.detached]
        alive, missing = await asyncio.to_thread(self._heartbeat, [live.id for live in running])
        for live in running:
            if live.id in missing:
                self._end_detached(live, SESSION_DELETED if missing[live.id] else TAKEN_OVER)
            elif alive.get(live.id) and live.task and not live.task.done():
                live.task.cancel()

    def _heartbeat(self, running: list[uuid.UUID]) -> tuple[dict[uuid.UUID, bool], dict[uuid.UUID, bool]]:
        """(running rows with their cancel flag, the given running requests without a running row,
        each with True when its row is gone)."""
        with self.store.transaction() as repo:
            alive = repo.heartbeat(self.owner, utcnow())
            lost = [rid for rid in running if rid not in alive]
            if not lost:
                return alive, {}
            existing = {row.id for row in repo.get_chat_requests(lost)}
            return alive, {rid: rid not in existing for rid in lost}

    async def _cleanup_loop(self, interval: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.cleanup()
            except Exception:
                log.warning("cleanup failed (database unavailable?)", exc_info=True)

    async def cleanup(self) -> dict[str, int]:
        """Close abandoned requests (owner gone) and expire finished ones: their event rows are
        deleted and a tombstone keeps answering 410."""
        orphans = await asyncio.to_thread(self._stale_requests)
        closed = 0
        for rid in orphans:
            if rid in self.live:
                continue  # ours: its heartbeat was only late (the database was away)
            closed += int(await asyncio.to_thread(self._close_orphan, rid))
        expired = await asyncio.to_thread(self._expire)
        return {"orphans_closed": closed, "expired": expired}

    def _stale_requests(self) -> list[uuid.UUID]:
        cutoff = utcnow() - timedelta(seconds=self.stale_after)
        with self.store.transaction() as repo:
            return list(
                repo.session.scalars(
                    select(ChatRequest.id).where(
                        ChatRequest.status.in_(("queued", "streaming")), ChatRequest.heartbeat_at < cutoff
                    )
                )
            )

    def _close_orphan(self, request_id: uuid.UUID) -> bool:
        """A request whose process died: save what it had streamed as a failed reply, so no reply
        is left without a status, and end its log with an error event."""
        with self.store.transaction() as repo:
            row = repo.get_chat_request(request_id, for_update=True)
            cutoff = utcnow() - timedelta(seconds=self.stale_after)
            if (
                row is None
                or row.status not in ("queued", "streaming")
                or (row.heartbeat_at is not None and row.heartbeat_at >= cutoff)
            ):
                return False
            events = repo.chat_events_after(request_id, 0)
            text = "".join(e.data.get("text", "") for e in events if e.type == "token")
            saved = record_reply(
                repo,
                row.session_id,
                Generation(parts=[text]),
                "failed",
                model_name=self.model.name,
                error_code="REQUEST_INTERRUPTED",
                video_ids=list(row.video_ids or []),
            )
            message = saved.id
            seq = (events[-1].seq if events else 0) + 1
            data = {
                "code": "REQUEST_INTERRUPTED",
                "retryable": True,
                "message_id": str(message),
                "message": "the server handling this reply stopped; the partial reply was saved",
                "text": text,
            }
            repo.add_chat_events([(request_id, seq, "error", data)])
            now = utcnow()
            row.status, row.finished_at, row.last_seq = "failed", now, seq
            row.assistant_message_id = message
            row.expires_at = now + timedelta(seconds=self.settings.request_ttl_seconds)
            log.warning("closed orphaned chat request %s", request_id)
            self.metrics.count(ERRORS, code="REQUEST_INTERRUPTED")
            return True

    def _expire(self) -> int:
        now = utcnow()
        with self.store.transaction() as repo:
            ids = list(
                repo.session.scalars(
                    select(ChatRequest.id).where(
                        ChatRequest.status.in_(FINAL_STATUSES), ChatRequest.expires_at < now
                    )
                )
            )
            if not ids:
                return 0
            repo.session.execute(delete(ChatEvent).where(ChatEvent.request_id.in_(ids)))
            repo.session.execute(update(ChatRequest).where(ChatRequest.id.in_(ids)).values(status="expired"))
        for rid in ids:
            self.live.pop(rid, None)
        return len(ids)


def stored_event(row: ChatEvent) -> StreamEvent:
    return StreamEvent(row.type, row.data, id=row.seq)  # type: ignore[arg-type]  # written from StreamEvents


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


__all__ = ["TERMINAL_TYPES", "ChatRequestManager", "LiveRequest"]
