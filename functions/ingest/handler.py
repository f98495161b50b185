"""Ingest Lambda entry point: SQS batch -> one ingest_video call per record, with partial batch
failures so one bad message never fails its neighbours. The local run's embedded queue calls
the same handler with the same event shape.

Within the Lambda's remaining time (``context.get_remaining_time_in_millis``): a message after the
first is not started when it may not finish, and ingest_video stops between stages the same way;
either comes back as a batch item failure, so SQS delivers it again after its visibility timeout.

Observability sits on the handler only: JSON logs (each record's lines carry its message, job
and video ids), the cold start metric, X-Ray tracing when the SDK is present; ingest_video
records IngestDuration and IngestFailures through the Container's metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ytresearch.bootstrap import Container
from ytresearch.observability.lambdas import lambda_logger, lambda_metrics, lambda_tracer
from ytresearch.observability.metrics import INGEST_FAILURES
from ytresearch.services.ingest import (
    Deadline,
    IngestDeps,
    PoisonMessageError,
    ingest_video,
    parse_message,
)

logger = lambda_logger()
metrics = lambda_metrics()
tracer = lambda_tracer()


def make_handler(container: Container) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def deps() -> IngestDeps:
        return IngestDeps(
            store=container.store,
            settings=container.settings,
            transcripts=container.transcripts,
            metadata=container.metadata,
            model=container.chat_model,
            metrics=container.metrics,
        )

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        deadline = _deadline(context)
        started = False  # has this invocation begun any message yet?

        def record_handler(record: SQSRecord) -> str:
            nonlocal started
            # Thread-safe keys: the local run calls this from the queue's thread while the
            # streaming routes log from the event loop through the same formatter.
            logger.thread_safe_append_keys(message_id=record.message_id)
            try:
                try:
                    message = parse_message(json.loads(record.body))
                except (ValueError, PoisonMessageError) as exc:  # never succeeds: fails alone, then DLQ
                    logger.warning("ingest message is malformed: %s", exc)  # the reason, not the body
                    container.metrics.count(INGEST_FAILURES, code=PoisonMessageError.code)
                    raise
                logger.thread_safe_append_keys(job_id=message.job_id, video_id=message.video_id)
                receive_count = int(record.attributes.approximate_receive_count or 1)
                # The first message starts whatever the time: handing it back could not give it more.
                first, started = not started, True
                return ingest_video(
                    deps(), message, receive_count=receive_count, deadline=deadline, may_defer_start=not first
                )
            finally:
                logger.thread_safe_remove_keys(["message_id", "job_id", "video_id"])

        # A fresh processor per call: the embedded queue may call from another thread.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)

    return handle


def _deadline(context: Any) -> Deadline | None:
    """The Lambda's remaining time, as the use case's Deadline (None: no limit, e.g. the local
    run's embedded queue, which passes no context)."""
    if context is None:
        return None
    return Deadline(lambda: context.get_remaining_time_in_millis() / 1000)


@lru_cache(maxsize=1)
def _default_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return make_handler(Container())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _default_handler()(event, context)
