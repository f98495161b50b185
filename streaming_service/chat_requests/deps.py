"""What every piece of the request manager needs, handed to each as one frozen object."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from streaming_service.chat_requests.live import LiveRequests
from streaming_service.chat_requests.log_listener import LogListener
from ytresearch.config import Settings
from ytresearch.observability.metrics import ACTIVE_STREAMS, Metrics
from ytresearch.ports import ChatModel
from ytresearch.repository import Store
from ytresearch.services.agent.calls import AgentDeps


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ActiveStreamsGauge:
    """The ActiveStreams metric: sent on every change, and every ``interval`` seconds without one
    so the gauge has no gaps."""

    def __init__(self, metrics: Metrics, live: LiveRequests, interval: float) -> None:
        self.metrics, self.live, self.interval = metrics, live, interval
        self.sent_at = 0.0

    def send(self) -> None:
        self.sent_at = time.monotonic()
        self.metrics.count(ACTIVE_STREAMS, self.live.active_count)

    def send_if_due(self) -> None:
        if time.monotonic() - self.sent_at >= self.interval:
            self.send()


@dataclass(frozen=True)
class ChatRequestDeps:
    store: Store
    settings: Settings
    model: ChatModel
    metrics: Metrics
    owner: str  # this process, as the chat_requests rows it runs name it
    live: LiveRequests
    gauge: ActiveStreamsGauge
    agent: AgentDeps | None = None  # the research agent's tools; None: replies offer no tools
    listener: LogListener | None = None  # wakes followers of other processes' requests; None: they poll

    @property
    def keep_for(self) -> timedelta:
        """How long a finished request's events are kept."""
        return timedelta(seconds=self.settings.request_ttl_seconds)

    @property
    def stale_after(self) -> timedelta:
        """How long without a heartbeat before a running request counts as orphaned."""
        return timedelta(seconds=self.settings.stream_stale_after_seconds)
