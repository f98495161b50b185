"""The ingest Lambda's world in tests: SQS queues (moto) with a dead-letter queue, the event the
SQS mapping hands the Lambda, a job queued for a video, and a transcript source that counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.ports import IngestMessage, Transcript, TranscriptError
from ytresearch.queues import SqsJobQueue
from ytresearch.youtube import SampleTranscriptSource


class CountingTranscripts:
    """Wraps the sample source (YouTube itself cannot run here) to count fetches and inject
    failures by video id."""

    def __init__(self, failures: dict[str, TranscriptError] | None = None) -> None:
        self.inner = SampleTranscriptSource()
        self.fetches: list[str] = []
        self.failures = failures or {}

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        self.fetches.append(video_id)
        if video_id in self.failures:
            raise self.failures[video_id]
        return self.inner.fetch(video_id, languages)


def make_queues(sqs: Any, max_receives: int = 3) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="ingest",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )["QueueUrl"]
    return queue, dlq


def lambda_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the SQS event source mapping hands the Lambda for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ingest",
                "awsRegion": "eu-west-1",
            }
            for m in messages
        ]
    }


def queue_job(container: Container, sqs_queue: SqsJobQueue, video_id: str) -> str:
    user, _ = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "s")
        repo.get_or_add_video(video_id)
        repo.link_video(session.id, video_id, None)
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id=video_id, language=None)
    sqs_queue.send(IngestMessage(job_id=str(job.id), video_id=video_id))
    return str(job.id)
