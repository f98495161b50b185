"""Ingest Lambda entry point: SQS batch -> one ingest_video call per record, with partial batch
failures so one bad message never fails its neighbours. The local run's embedded queue calls
the same handler with the same event shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ytresearch.bootstrap import Container
from ytresearch.services.ingest import IngestDeps, ingest_video, parse_message

logger = Logger()


def make_handler(container: Container) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def deps() -> IngestDeps:
        return IngestDeps(
            store=container.store,
            settings=container.settings,
            transcripts=container.transcripts,
            metadata=container.metadata,
            model=container.chat_model,
        )

    def record_handler(record: SQSRecord) -> str:
        message = parse_message(json.loads(record.body))
        receive_count = int(record.attributes.approximate_receive_count or 1)
        logger.append_keys(job_id=message.job_id, video_id=message.video_id)
        try:
            return ingest_video(deps(), message, receive_count=receive_count)
        finally:
            logger.remove_keys(["job_id", "video_id"])

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # A fresh processor per call: the embedded queue may call from another thread.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)

    return handle


@lru_cache(maxsize=1)
def _default_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return make_handler(Container())


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _default_handler()(event, context)
