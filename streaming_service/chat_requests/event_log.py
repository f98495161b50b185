"""The write-behind event log: every live request's new events go to the database together, so a
reader on any process can replay them and what a client was shown survives a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence

from streaming_service.chat_requests.deps import ChatRequestDeps
from streaming_service.chat_requests.live import LiveRequest
from ytresearch.db.models import utcnow
from ytresearch.db.notify import notify_chat_log
from ytresearch.db.outage import is_outage
from ytresearch.events import StreamEvent
from ytresearch.repository import ACTIVE_REQUEST_STATUSES, Store
from ytresearch.services.endings import EVENT_LOG_FAILED, SESSION_DELETED, TAKEN_OVER, record_request_end

log = logging.getLogger(__name__)


def tell_followers(store: Store, request_ids: Sequence[uuid.UUID]) -> None:
    """Wake the readers on other processes that follow these requests (``ytresearch.db.notify``),
    after the transaction that wrote their events has committed: in a transaction of its own, which
    writes nothing and so commits without waiting for a disk flush. PostgreSQL lets one notifying
    transaction commit at a time across the whole server; inside the write it would hold that turn
    through the write's flush. A notification that cannot be sent costs its readers no more than
    their safety wait (they read the log again after at most a second); it is logged, never raised:
    the events are written."""
    try:
        with store.transaction() as repo:
            notify_chat_log(repo.session, request_ids)
    except Exception:
        log.info("could not notify followers of %s", ", ".join(map(str, request_ids)), exc_info=True)


class EventLog:
    """One writer for every request's events, in one transaction per pass, a pass at most every
    ``persist_interval`` while events are pending. Text goes in checkpoints: a request's tokens
    after its first are written ``checkpoint_seconds`` after its previous write (the request
    decides, see ``LiveRequest.write_at``), so a streaming reply costs at most
    1 / checkpoint_seconds rows a second; its first token is written at once, without the wait
    between passes (readers are sent only what is written, and the first token is what a person
    waits for), and every other event and the end on the next pass."""

    def __init__(self, deps: ChatRequestDeps, persist_interval: float) -> None:
        self.deps = deps
        self.persist_interval = persist_interval
        self.dirty = asyncio.Event()  # set by every emit of a live request
        self.urgent = asyncio.Event()  # set by a reply's first token
        self.lock = asyncio.Lock()  # one writer at a time: the flusher, stop or drain

    async def run(self) -> None:
        """The flusher: runs until cancelled (hold ``lock`` to cancel it between writes)."""
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            self.urgent.clear()  # this write takes whatever is due, first tokens included
            try:
                await self.flush()
            except Exception:
                log.warning("could not write chat events (database unavailable?); will retry", exc_info=True)
                self.dirty.set()
                await asyncio.sleep(0.5)
                continue
            if any(live.unsaved for live in self.deps.live.values()):
                self.dirty.set()  # text waiting for its checkpoint: look again after the pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.urgent.wait(), self.persist_interval)

    async def flush(self, *, everything: bool = False) -> None:
        """Write what is due (``everything``: all that is unsaved)."""
        async with self.lock:
            await self._flush_pending(everything)

    async def final_flush(self) -> None:
        """The last write of what is still unsaved (stop, drain): logged, never raised, so a
        database outage at shutdown cannot keep the process from exiting."""
        try:
            await self.flush(everything=True)
        except Exception:
            log.warning("could not write the last chat events at shutdown", exc_info=True)

    async def _flush_pending(self, everything: bool) -> None:
        now = time.monotonic()
        batches = [
            (live, live.take_unsaved(now))
            for live in list(self.deps.live.values())
            if live.unsaved and (everything or live.write_at <= now)
        ]
        if not batches:
            return
        pending = list(batches)  # not written yet, in order
        written: list[uuid.UUID] = []
        try:
            try:
                await asyncio.to_thread(self._write, [(live.id, batch) for live, batch in batches])
            except Exception as exc:
                if is_outage(exc) or len(batches) == 1:
                    raise
                # One request's rows are refused (e.g. its session was just deleted): write each
                # request alone, so no request's events wait on another's.
                for live, batch in batches:
                    await asyncio.to_thread(self._write, [(live.id, batch)])
                    pending.remove((live, batch))
                    self._written(live, batch)
                    written.append(live.id)
                return
            pending = []
            for live, batch in batches:
                self._written(live, batch)
                written.append(live.id)
        except Exception as exc:
            if is_outage(exc):
                raise
            refused, _ = pending.pop(0)
            await self._give_up(refused, exc)
            self.dirty.set()  # the others go out on the next pass
        finally:
            for live, batch in pending:  # put them back in order for the next attempt
                live.put_back(batch)
            if written:  # after this process's readers were woken: they do not wait for it
                await asyncio.to_thread(tell_followers, self.deps.store, written)

    def _written(self, live: LiveRequest, batch: list[StreamEvent]) -> None:
        live.mark_persisted(batch[-1].id or 0)
        if live.finished and not live.unsaved:
            self.deps.live.forget_later(live.id)  # readers here may still be replaying from memory

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
        self.deps.live.end_detached(live, reason)

    async def record_detached_end(self, live: LiveRequest) -> None:
        """A request ended in memory only: still record its end (the terminal event, under the id
        its readers were given, and the final status) when its row exists, so it is not left
        running, to be closed later as orphaned with a second copy of the reply."""
        terminal = live.terminal
        try:
            if terminal is not None:
                status = await asyncio.shield(asyncio.to_thread(self._request_status, live.id))
                if status in ACTIVE_REQUEST_STATUSES:  # not gone, not closed by another process
                    await asyncio.shield(asyncio.to_thread(self.persist, [(live.id, [terminal])]))
        except Exception:
            log.info("chat request %s: its end was not recorded", live.id)
        finally:
            self.deps.live.forget_later(live.id)

    def _request_status(self, request_id: uuid.UUID) -> str | None:
        with self.deps.store.transaction() as repo:
            return repo.chat_request_status(request_id)

    def persist(self, batches: list[tuple[uuid.UUID, list[StreamEvent]]]) -> None:
        """Write requests' events in one transaction, and the end of those that ended; then tell
        their followers on other processes."""
        self._write(batches)
        tell_followers(self.deps.store, [request_id for request_id, _ in batches])

    def _write(self, batches: list[tuple[uuid.UUID, list[StreamEvent]]]) -> None:
        with self.deps.store.transaction() as repo:
            repo.add_chat_events(
                [(request_id, e.id or 0, e.type, e.data) for request_id, batch in batches for e in batch]
            )
            # Only a request's end updates its row: the heartbeat loop keeps running rows fresh
            # (one UPDATE a second for all of them), so a busy stream costs one multi-row insert.
            now = utcnow()
            for request_id, batch in batches:
                terminal = next((e for e in batch if e.terminal), None)
                if terminal is not None:
                    record_request_end(repo, request_id, terminal, now=now, keep_for=self.deps.keep_for)
