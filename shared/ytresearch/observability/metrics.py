"""The ``Metrics`` port: how services and transports record numbers, with no idea where they go.

Adapters: ``EmfMetrics`` (``ytresearch.observability.emf``: CloudWatch Embedded Metric Format in
the logs, on Lambda and in the container), ``NullMetrics`` and ``InMemoryMetrics`` (tests). The
Container builds one; services receive it. Every name below is in the ``YtResearch`` namespace
with the ``service`` dimension added by the EMF adapter.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Unit = Literal["Count", "Milliseconds", "Bytes", "Count/Second"]

# ------------------------------------------------------------------ the catalogue
# Namespace YtResearch; every metric also has the ``service`` dimension (POWERTOOLS_SERVICE_NAME).
#
# name              unit          dimensions     recorded by
# Requests          Count         route (template), status_class (2xx...)   request middleware
# Errors            Count         code (UPPER_SNAKE error code)   middleware (error responses),
#                                                                 chat requests (error events)
# TimeToFirstToken  Milliseconds  purpose (chat)  the measured model, per streamed call
# InputTokens       Count         purpose (chat, summary)   the measured model, per call
# OutputTokens      Count         purpose (chat, summary)   the measured model, per call
# CacheReadTokens   Count         purpose (chat, summary)   the measured model, per call
# ChatReplies       Count         status (complete, cancelled, failed)   chat requests
# ActiveStreams     Count         -  (a gauge: on every change and every minute)   chat requests
# StreamTimeToFirstToken  Milliseconds  transport (sse, sse_one_step, websocket, poll)   from the
#                   chat's acceptance to its first token sent on that transport (a stream from the
#                   start, on the process running the reply; polling: the first answer with text)
# StreamDuration    Milliseconds  transport   per stream a client read, when it ends
# StreamEvents      Count         transport   events sent on that stream
# StreamBytes       Bytes         transport   bytes of the events (SSE frames, WebSocket frames)
# StreamEventRate   Count/Second  transport   events per second over the stream
# OpenStreams       Count         transport  (a gauge: on every open and close)   transports
# ToolCalls         Count         tool, outcome (done, failed, refused)   the research agent
# IngestDuration    Milliseconds  outcome (done, failed, retry)   ingest, per attempt that works
# IngestFailures    Count         code   ingest (and the ingest handler for malformed messages)
# ColdStart         Count         function_name   Powertools, on the Lambda handlers
REQUESTS = "Requests"
ERRORS = "Errors"
TIME_TO_FIRST_TOKEN = "TimeToFirstToken"
INPUT_TOKENS = "InputTokens"
OUTPUT_TOKENS = "OutputTokens"
CACHE_READ_TOKENS = "CacheReadTokens"
CHAT_REPLIES = "ChatReplies"
ACTIVE_STREAMS = "ActiveStreams"
STREAM_TTFT = "StreamTimeToFirstToken"
STREAM_DURATION = "StreamDuration"
STREAM_EVENTS = "StreamEvents"
STREAM_BYTES = "StreamBytes"
STREAM_EVENT_RATE = "StreamEventRate"
OPEN_STREAMS = "OpenStreams"
TOOL_CALLS = "ToolCalls"
INGEST_DURATION = "IngestDuration"
INGEST_FAILURES = "IngestFailures"

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    unit: Unit = "Count"


class Metrics(Protocol):
    """Records metric data points. Adapters never raise into the caller."""

    def emit(self, points: Sequence[MetricPoint], dimensions: Mapping[str, str] | None = None) -> None:
        """Record data points that share one set of dimensions (one EMF document)."""
        ...

    def count(self, name: str, value: float = 1, /, **dimensions: str) -> None:
        self.emit([MetricPoint(name, value, "Count")], dimensions)

    def milliseconds(self, name: str, value: float, /, **dimensions: str) -> None:
        self.emit([MetricPoint(name, value, "Milliseconds")], dimensions)


class NullMetrics(Metrics):
    """Records nothing (the default where no adapter is handed in)."""

    def emit(self, points: Sequence[MetricPoint], dimensions: Mapping[str, str] | None = None) -> None:
        return None


@dataclass(frozen=True)
class Recorded:
    point: MetricPoint
    dimensions: dict[str, str]


class InMemoryMetrics(Metrics):
    """Keeps every data point, for tests."""

    def __init__(self) -> None:
        self.recorded: list[Recorded] = []
        self._lock = threading.Lock()

    def emit(self, points: Sequence[MetricPoint], dimensions: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self.recorded.extend(Recorded(p, dict(dimensions or {})) for p in points)

    def values(self, name: str, **dimensions: str) -> list[float]:
        """Values of ``name`` whose dimensions include ``dimensions``."""
        with self._lock:
            return [
                r.point.value
                for r in self.recorded
                if r.point.name == name and all(r.dimensions.get(k) == v for k, v in dimensions.items())
            ]


def status_class(status: int) -> str:
    """200 -> "2xx": the HTTP status as a low-cardinality dimension."""
    return f"{status // 100}xx"


def code_dimension(code: object) -> str:
    """An error code as a dimension value: our UPPER_SNAKE codes as they are, anything else "OTHER"
    (so a surprising value can never create unbounded metric series)."""
    return code if isinstance(code, str) and _CODE.match(code) else "OTHER"
