"""Ingest queue adapters: SQS in the cloud, an embedded queue for the local run.

Both deliver the same JSON body to the same Lambda handler, so the local flow is the production
flow: the embedded queue wraps each body in a real SQS event record.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ytresearch.ports import IngestMessage

log = logging.getLogger(__name__)


class SqsJobQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # imported on the first send only (CRUD Lambda cold start)

            self._client = boto3.client("sqs")
        return self._client

    def send(self, message: IngestMessage) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message.to_json()))


def sqs_record(body: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    """One record of an SQS -> Lambda event, as AWS sends it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "local-" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "local",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:local:000000000000:ingest",
        "awsRegion": "local",
    }


class EmbeddedJobQueue:
    """A worker thread that feeds SQS-shaped events to the ingest handler, with SQS's retry
    semantics: failed records come back (after a short delay) until the receive limit, then
    land in an in-memory dead-letter list."""

    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        *,
        max_receives: int = 5,
        retry_delay: float = 1.0,
    ) -> None:
        self.handler = handler
        self.max_receives = max_receives
        self.retry_delay = retry_delay
        self.dead_letters: list[dict[str, Any]] = []
        self._queue: queue.Queue[tuple[str, str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="embedded-ingest-queue", daemon=True)
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()

    def start(self) -> EmbeddedJobQueue:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def send(self, message: IngestMessage) -> None:
        self._put(json.dumps(message.to_json()), str(uuid.uuid4()), 1)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return self._idle.wait(timeout)

    def _put(self, body: str, message_id: str, receive_count: int) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((body, message_id, receive_count))

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            body, message_id, receive_count = item
            try:
                event = {"Records": [sqs_record(body, receive_count, message_id)]}
                result = self.handler(event, None)
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception:
                log.exception("ingest handler crashed")
                failed = {message_id}
            if message_id in failed:
                if receive_count >= self.max_receives:
                    self.dead_letters.append({"body": body, "messageId": message_id})
                    log.error("ingest message %s moved to the dead-letter list", message_id)
                else:
                    threading.Timer(
                        self.retry_delay * receive_count,
                        self._put,
                        (body, message_id, receive_count + 1),
                    ).start()
            self._done()
