"""What every stream a client reads is measured by: its time to first token, duration, events,
bytes and event rate per transport, the streams open per transport, and one ``stream_completed``
log line when it ends (with the user's id, never a key).

Transports: ``sse`` (``GET /v1/streams/{id}``, the second step of POST-then-SSE, and its
resumes), ``sse_one_step`` (``POST .../messages/stream``), ``websocket`` (a reply relayed on a
chat socket) and ``poll`` (``GET /v1/requests/{id}``: only its time to first text). Time to first
token counts from the chat's acceptance on the process running it, so it is recorded for streams
read from the start there; a resume or a reader on another process counts the rest.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter

from streaming_service.chat_requests.live import LiveRequests
from ytresearch.events import StreamEvent
from ytresearch.observability.metrics import (
    OPEN_STREAMS,
    STREAM_BYTES,
    STREAM_DURATION,
    STREAM_EVENT_RATE,
    STREAM_EVENTS,
    STREAM_TTFT,
    MetricPoint,
    Metrics,
)

log = logging.getLogger("ytresearch.streams")

TRANSPORTS = ("sse", "sse_one_step", "websocket", "poll")


class StreamMeters:
    """The process's meters: hands one to each stream and keeps the open count per transport."""

    def __init__(self, metrics: Metrics, live: LiveRequests) -> None:
        self.metrics = metrics
        self.live = live  # the replies running here, with when each was accepted
        self.open: Counter[str] = Counter()

    def start(self, transport: str, request_id: uuid.UUID, user_id: uuid.UUID, after: int) -> StreamMeter:
        """A meter for one stream of ``request_id`` read from after event ``after``."""
        live = self.live.get(request_id)
        accepted = live.accepted_at if live is not None and after == 0 else None
        self.open[transport] += 1
        self.metrics.count(OPEN_STREAMS, self.open[transport], transport=transport)
        return StreamMeter(self, transport, request_id, user_id, accepted)

    def closed(self, transport: str) -> None:
        self.open[transport] -= 1
        self.metrics.count(OPEN_STREAMS, self.open[transport], transport=transport)

    def first_polled_text(self, request_id: uuid.UUID) -> None:
        """A polling client got text for the first time (recorded once per reply run here)."""
        live = self.live.get(request_id)
        if live is not None and not live.polled_text:
            live.polled_text = True
            elapsed = (time.monotonic() - live.accepted_at) * 1000
            self.metrics.milliseconds(STREAM_TTFT, elapsed, transport="poll")


class StreamMeter:
    """One stream: counts what is sent; ``close`` records it (once)."""

    __slots__ = (
        "accepted",
        "bytes",
        "events",
        "first_token_ms",
        "meters",
        "opened",
        "request_id",
        "status",
        "transport",
        "user_id",
    )

    def __init__(
        self,
        meters: StreamMeters,
        transport: str,
        request_id: uuid.UUID,
        user_id: uuid.UUID,
        accepted: float | None,
    ) -> None:
        self.meters, self.transport, self.request_id, self.user_id = meters, transport, request_id, user_id
        self.accepted = accepted
        self.opened = time.monotonic()
        self.events = 0
        self.bytes = 0
        self.first_token_ms: float | None = None
        self.status = "disconnected"  # until a terminal event is sent

    def sent(self, event: StreamEvent | None, size: int) -> None:
        """``size`` bytes went out: ``event``, or a keep-alive or framing (None)."""
        self.bytes += size
        if event is None:
            return
        self.events += 1
        if event.type == "token" and self.first_token_ms is None and self.accepted is not None:
            self.first_token_ms = (time.monotonic() - self.accepted) * 1000
        elif event.terminal:
            self.status = event.type

    def close(self) -> None:
        if self.meters is None:
            return
        meters, self.meters = self.meters, None  # type: ignore[assignment]  # closed: once only
        seconds = max(time.monotonic() - self.opened, 1e-6)
        rate = self.events / seconds
        points = [
            MetricPoint(STREAM_DURATION, seconds * 1000, "Milliseconds"),
            MetricPoint(STREAM_EVENTS, self.events),
            MetricPoint(STREAM_BYTES, self.bytes, "Bytes"),
            MetricPoint(STREAM_EVENT_RATE, rate, "Count/Second"),
        ]
        if self.first_token_ms is not None:
            points.append(MetricPoint(STREAM_TTFT, self.first_token_ms, "Milliseconds"))
        meters.metrics.emit(points, {"transport": self.transport})
        meters.closed(self.transport)
        log.info(
            "stream_completed",
            extra={
                "transport": self.transport,
                "chat_request_id": str(self.request_id),
                "user_id": str(self.user_id),
                "status": self.status,
                "duration_ms": round(seconds * 1000, 1),
                "events": self.events,
                "bytes": self.bytes,
                "events_per_second": round(rate, 1),
                "ttft_ms": None if self.first_token_ms is None else round(self.first_token_ms, 1),
            },
        )
