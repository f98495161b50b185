"""A job queue that only records what it is sent."""

from __future__ import annotations

from ytresearch.ports import IngestMessage


class RecordingQueue:
    """A JobQueue that keeps what was sent (for CRUD tests that do not run ingest)."""

    def __init__(self) -> None:
        self.sent: list[IngestMessage] = []

    def send(self, message: IngestMessage) -> None:
        self.sent.append(message)
