"""The request manager: composes the pieces that run durable chat requests on one process (see the
package docstring) and owns their lifetimes: start, stop and the SIGTERM drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from streaming_service.chat_requests.cleanup import Cleanup
from streaming_service.chat_requests.deps import ActiveStreamsGauge, ChatRequestDeps, process_id
from streaming_service.chat_requests.event_log import EventLog
from streaming_service.chat_requests.live import LiveRequests
from streaming_service.chat_requests.log_listener import LogListener, listens
from streaming_service.chat_requests.readers import Readers
from streaming_service.chat_requests.runner import RequestRunner
from streaming_service.stream_meter import StreamMeters
from ytresearch.config import Settings
from ytresearch.db.models import ChatRequest
from ytresearch.errors import DependencyUnavailableError
from ytresearch.events import StreamEvent
from ytresearch.observability.metrics import Metrics, NullMetrics
from ytresearch.ports import ChatModel
from ytresearch.repository import Store
from ytresearch.services.agent.approvals import Decision, decide
from ytresearch.services.agent.calls import AgentDeps
from ytresearch.services.context import ChatQuestion
from ytresearch.services.endings import SHUTDOWN
from ytresearch.services.users import AuthUser
from ytresearch.views import RequestStatusOut, ToolsMode

log = logging.getLogger(__name__)


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
        agent: AgentDeps | None = None,
    ) -> None:
        metrics = metrics or NullMetrics()
        live = LiveRequests()
        self.deps = ChatRequestDeps(
            store=store,
            settings=settings,
            model=model,
            metrics=metrics,
            owner=owner or process_id(),
            live=live,
            # ActiveStreams is also sent every gauge_interval seconds when unchanged
            gauge=ActiveStreamsGauge(metrics, live, gauge_interval),
            agent=agent,
            # One LISTEN connection per process on PostgreSQL (YTR_STREAM_LISTEN); SQLite has one process.
            listener=LogListener(settings) if listens(settings) else None,
        )
        self.event_log = EventLog(self.deps, persist_interval)
        self.runner = RequestRunner(self.deps, self.event_log)
        self.readers = Readers(self.deps)
        self.cleaner = Cleanup(self.deps, heartbeat_interval)
        self.meters = StreamMeters(metrics, live)
        self.draining = False  # no new requests (SIGTERM received)
        self._background: list[asyncio.Task[None]] = []

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def live(self) -> LiveRequests:
        return self.deps.live

    @property
    def ping_interval(self) -> float:
        return self.readers.ping_interval

    @property
    def active_count(self) -> int:
        return self.deps.live.active_count

    # ------------------------------------------------------------------ lifetimes
    async def start(self) -> None:
        self._background = [
            asyncio.create_task(self.cleaner.heartbeat_loop(), name="chat-heartbeat"),
            asyncio.create_task(self.cleaner.cleanup_loop(), name="chat-cleanup"),
            asyncio.create_task(self.event_log.run(), name="chat-event-log"),
        ]
        if self.deps.listener is not None:  # closes its connection when cancelled in stop()
            self._background.append(asyncio.create_task(self.deps.listener.run(), name="chat-log-listener"))

    async def stop(self) -> None:
        async with self.event_log.lock:  # never cancel the flusher in the middle of a write
            for task in self._background:
                task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stop_running()
        await self.event_log.final_flush()

    async def drain(self, grace: float) -> None:
        """SIGTERM: refuse new requests, let running replies finish for ``grace`` seconds, then
        tell every reader to reconnect (another task will serve the log) and stop what still runs;
        those replies are saved as failed (REQUEST_INTERRUPTED), so none is left without a status."""
        self.draining = True
        log.info("draining: %d replies running, grace %.0f s", self.active_count, grace)
        await self.wait_idle(grace)
        self.readers.reconnect_all()
        if self.deps.listener is not None:
            self.deps.listener.wake_all()  # followers waiting for a notification see the drain now
        await asyncio.sleep(0.05)  # let readers send their reconnect instruction first
        await self._stop_running(SHUTDOWN)
        await self.event_log.final_flush()

    async def _stop_running(self, reason: str | None = None) -> None:
        running = self.deps.live.running_tasks()
        for task in running:
            task.cancel(reason)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request runs here (drain); False if some still run after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.active_count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.active_count == 0

    # ------------------------------------------------------------------ what the routes call
    async def start_request(
        self,
        user: AuthUser,
        session_id: uuid.UUID,
        message: str,
        video_ids: Sequence[str] | None,
        *,
        tools: ToolsMode | None = None,
    ) -> ChatRequest:
        """Check limits, save the user's message, record the request and start generating."""
        if self.draining:
            raise DependencyUnavailableError(
                "this server is shutting down; retry and you will reach another", code="SERVICE_DRAINING"
            )
        question = ChatQuestion(
            user=user, session_id=session_id, text=message, video_ids=video_ids, tools=tools
        )
        return await self.runner.start(question)

    async def get_request(self, user: AuthUser, request_id: uuid.UUID) -> ChatRequest:
        return await self.readers.get_request(user, request_id)

    async def check_access(self, user: AuthUser, request_id: uuid.UUID) -> None:
        await self.readers.check_access(user, request_id)

    def follow(self, request_id: uuid.UUID, after: int = 0) -> AsyncIterator[StreamEvent | None]:
        return self.readers.follow(request_id, after)

    async def status(self, user: AuthUser, request_id: uuid.UUID) -> RequestStatusOut:
        return await self.readers.status(user, request_id)

    async def cancel(self, user: AuthUser, request_id: uuid.UUID) -> str:
        return await self.readers.cancel(user, request_id)

    async def approve(self, user: AuthUser, request_id: uuid.UUID, call_id: str, approve: bool) -> Decision:
        """A decision on a tool call waiting in this reply, whichever process runs it."""
        return await asyncio.to_thread(decide, self.deps.store, user, request_id, call_id, approve)

    async def heartbeat(self) -> None:
        await self.cleaner.heartbeat()

    async def cleanup(self) -> dict[str, int]:
        return await self.cleaner.cleanup()
