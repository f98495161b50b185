"""In-memory fan-out of the requests running on this process: readers wait on events, never poll.

A reader never buffers: it keeps a cursor into the request's event list, so a slow client costs
one integer, not a queue, and never slows the writer or other readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ytresearch.events import StreamEvent

KEEP_ENDED_SECONDS = 30  # an ended request stays in memory this long: readers may still replay it


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
    urgent: asyncio.Event = field(default_factory=asyncio.Event)  # the log writes at once (first token)
    text_parts: list[str] = field(default_factory=list)
    finished: bool = False
    detached: bool = False
    persisted_seq: int = 0  # the last event id written to the event log
    # Text goes to the log in checkpoints: tokens after the first wait until ``checkpoint_seconds``
    # after the request's last write (one row per checkpoint, see the repository); the first
    # token, every other event and the end are written at once.
    checkpoint_seconds: float = 0.0
    written_at: float = -math.inf  # when the log last wrote this request's events (monotonic)
    write_at: float = math.inf  # when its unsaved events are to be written; inf: none are unsaved
    persisted: asyncio.Event = field(default_factory=asyncio.Event)
    accepted_at: float = field(default_factory=time.monotonic)  # for time-to-first-token metrics
    polled_text: bool = False  # a polling client has had text (its first-text time is recorded)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def visible(self) -> int:
        """How many events readers may be sent."""
        return len(self.events) if self.detached else self.persisted_seq

    @property
    def terminal(self) -> StreamEvent | None:
        """The event that ended this request, once it has ended."""
        return self.events[-1] if self.events and self.events[-1].terminal else None

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
        first_token = event.type == "token" and len(self.text_parts) == 1
        if event.type != "token" or first_token:
            self.write_at = -math.inf
        elif self.write_at == math.inf:
            self.write_at = self.written_at + self.checkpoint_seconds
        self.wrote.set()
        if first_token:
            self.urgent.set()  # a reader sees the first token once it is written: no batching wait
        if event.terminal:
            self.wake()  # readers start waiting for the end to be written (see readers.follow)

    def take_unsaved(self, now: float) -> list[StreamEvent]:
        """The events the log writes now (see ``write_at``); the caller puts them back with
        ``put_back`` when the write fails."""
        batch, self.unsaved = self.unsaved, []
        self.written_at, self.write_at = now, math.inf
        return batch

    def put_back(self, batch: list[StreamEvent]) -> None:
        """Events whose write failed: first in line again, to be written on the next attempt."""
        self.unsaved = batch + self.unsaved
        self.write_at = -math.inf

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


class LiveRequests(dict[uuid.UUID, LiveRequest]):
    """The requests running on this process by id, and for a while after they end."""

    @property
    def active_count(self) -> int:
        return sum(1 for r in self.values() if not r.finished)

    def running_tasks(self) -> list[asyncio.Task[Any]]:
        return [r.task for r in self.values() if r.task and not r.task.done()]

    def forget_later(self, request_id: uuid.UUID) -> None:
        asyncio.get_running_loop().call_later(KEEP_ENDED_SECONDS, self.pop, request_id, None)

    def wake_all(self) -> None:
        for live in self.values():
            live.wake()

    def end_detached(self, live: LiveRequest, reason: str) -> None:
        """Keep a request in memory only from now on and stop it with ``reason`` (an ending of
        ``ytresearch.services.endings``); readers are sent the rest from memory."""
        live.detach()
        if live.task is not None and not live.task.done():
            live.task.cancel(reason)
        else:
            self.forget_later(live.id)
