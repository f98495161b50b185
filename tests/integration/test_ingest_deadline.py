"""The ingest Lambda within its remaining time, driven with real SQS payloads (moto) and a Lambda
context whose clock the test moves: work that cannot finish is not started and returns to the
queue; work started with enough time completes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest

from functions.ingest.handler import make_handler
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.support.aws import fake_aws
from tests.support.ingest import CountingTranscripts, lambda_event, make_queues, queue_job
from ytresearch.bootstrap import Container
from ytresearch.ports import Transcript
from ytresearch.queues import SqsJobQueue
from ytresearch.services.ingest import StageBudget


class FakeLambdaContext:
    """``left`` seconds remain, less the real time that passed; ``spend`` moves the clock."""

    function_name = "ytr-ingest"
    aws_request_id = "0b6c1b9e-1f5e-4c1a-9d3e-2f6a7c8d9e01"

    def __init__(self, left: float) -> None:
        self.left = left
        self.started = time.monotonic()

    def spend(self, seconds: float) -> None:
        self.left -= seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.left - (time.monotonic() - self.started)) * 1000))


class SlowTranscripts(CountingTranscripts):
    """Each fetch takes ``seconds`` of the Lambda's time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.context: FakeLambdaContext | None = None

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        if self.context is not None:
            self.context.spend(self.seconds)
        return super().fetch(video_id, languages)


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("sqs", region_name="eu-west-1")


def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    return list(
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
    )


def acknowledge(sqs: Any, queue_url: str, received: list[dict[str, Any]], result: dict[str, Any]) -> None:
    """What the event source mapping does after the invocation: delete what succeeded."""
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in received:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def job_and_video(container: Container, job_id: str, video_id: str) -> tuple[Any, Any]:
    with container.store.transaction() as repo:
        return repo.get_job(uuid.UUID(job_id)), repo.get_video(video_id)


def test_budget_of_the_default_settings(container: Container) -> None:
    budget = StageBudget.from_settings(container.settings)  # 3 fetch attempts, 10 s HTTP, 60 s model
    assert (budget.transcript, budget.metadata, budget.model_attempt, budget.store) == (121.5, 10, 60, 10)
    assert budget.message == 201.5 and budget.from_metadata == 80 and budget.from_summary == 70


def test_a_second_message_that_cannot_fit_is_handed_back_unstarted(sqs: Any, container: Container) -> None:
    # Given two queued videos, 250 s left, and transcripts that take 100 s each
    transcripts = SlowTranscripts(seconds=100)
    container.__dict__["transcripts"] = transcripts
    queue_url, _ = make_queues(sqs)
    sqs_queue = SqsJobQueue(queue_url, client=sqs)
    jobs = {"SoLarP4nels": queue_job(container, sqs_queue, "SoLarP4nels")}
    jobs["s0urd0ughBr"] = queue_job(container, sqs_queue, "s0urd0ughBr")
    received = receive(sqs, queue_url)
    assert len(received) == 2
    first, second = (next(v for v in jobs if v in m["Body"]) for m in received)
    context = transcripts.context = FakeLambdaContext(left=250)

    # When one invocation gets both
    result = make_handler(container)(lambda_event(received), context)

    # Then the first completes; the second (150 s left, 201.5 s needed) is not started
    assert result["batchItemFailures"] == [{"itemIdentifier": received[1]["MessageId"]}]
    assert transcripts.fetches == [first]
    done, ready = job_and_video(container, jobs[first], first)
    assert done.status == "done" and ready.status == "ready"
    job, video = job_and_video(container, jobs[second], second)
    assert job.status == "queued" and job.attempts == 0 and job.stage is None
    assert video.status == "pending" and video.claimed_until is None

    # And its next delivery, with a whole invocation ahead, does it
    acknowledge(sqs, queue_url, received, result)
    again = receive(sqs, queue_url)
    assert [m["MessageId"] for m in again] == [received[1]["MessageId"]]
    retried = make_handler(container)(lambda_event(again), FakeLambdaContext(left=250))
    assert retried["batchItemFailures"] == []
    job, video = job_and_video(container, jobs[second], second)
    assert job.status == "done" and video.status == "ready"


def test_messages_started_with_enough_time_complete(sqs: Any, container: Container) -> None:
    transcripts = SlowTranscripts(seconds=100)
    container.__dict__["transcripts"] = transcripts
    queue_url, _ = make_queues(sqs)
    sqs_queue = SqsJobQueue(queue_url, client=sqs)
    jobs = [queue_job(container, sqs_queue, v) for v in ("SoLarP4nels", "s0urd0ughBr")]
    context = transcripts.context = FakeLambdaContext(left=400)  # 300 s left for the second: it fits

    result = make_handler(container)(lambda_event(receive(sqs, queue_url)), context)

    assert result["batchItemFailures"] == []
    assert sorted(transcripts.fetches) == ["SoLarP4nels", "s0urd0ughBr"]
    for job_id, video_id in zip(jobs, ("SoLarP4nels", "s0urd0ughBr"), strict=True):
        job, video = job_and_video(container, job_id, video_id)
        assert job.status == "done" and video.status == "ready"


def test_the_first_message_starts_even_when_its_worst_case_exceeds_the_time_left(
    sqs: Any, container: Container
) -> None:
    # 150 s is less than the 201.5 s worst case, but another delivery would have no more time.
    transcripts = SlowTranscripts(seconds=1)
    container.__dict__["transcripts"] = transcripts
    queue_url, _ = make_queues(sqs)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=sqs), "SoLarP4nels")
    transcripts.context = context = FakeLambdaContext(left=150)

    result = make_handler(container)(lambda_event(receive(sqs, queue_url)), context)

    assert result["batchItemFailures"] == []
    job, video = job_and_video(container, job_id, "SoLarP4nels")
    assert job.status == "done" and video.status == "ready"


def test_a_stage_that_cannot_finish_is_not_begun_and_the_lease_is_released(
    sqs: Any, container: Container
) -> None:
    # Given a transcript fetch that leaves 50 s, less than metadata + one model attempt + storing
    transcripts = SlowTranscripts(seconds=100)
    container.__dict__["transcripts"] = transcripts
    queue_url, _ = make_queues(sqs)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=sqs), "SoLarP4nels")
    received = receive(sqs, queue_url)
    transcripts.context = context = FakeLambdaContext(left=150)

    result = make_handler(container)(lambda_event(received), context)

    # Then nothing is kept, the message goes back to the queue and a retry may claim the video
    assert result["batchItemFailures"] == [{"itemIdentifier": received[0]["MessageId"]}]
    job, video = job_and_video(container, job_id, "SoLarP4nels")
    assert video.status == "pending" and video.claimed_until is None and video.summary is None
    assert job.status == "running" and job.error_code == "INGEST_DEADLINE"
    assert "fetching_metadata" not in [s["stage"] for s in job.stages_done]

    retried = make_handler(container)(lambda_event(receive(sqs, queue_url)), FakeLambdaContext(left=400))
    assert retried["batchItemFailures"] == []
    job, video = job_and_video(container, job_id, "SoLarP4nels")
    assert job.status == "done" and video.status == "ready"


def test_the_summary_is_cut_off_when_only_the_time_to_store_is_left(
    sqs: Any, container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    # Given 1 s HTTP and model timeouts (metadata 1 s, one model attempt 1 s, storing 10 s), 13 s
    # left, and Claude (the real adapter) streaming a summary that would take 20 s
    container.settings = container.settings.model_copy(
        update={"http_timeout_seconds": 1.0, "llm_timeout_seconds": 1.0}
    )
    container.__dict__["chat_model"] = claude
    container.__dict__["transcripts"] = CountingTranscripts()
    fake_claude.enqueue(Reply(text="slow summary " * 40, chunk_size=13, delay_per_chunk=0.5))
    queue_url, _ = make_queues(sqs)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=sqs), "SoLarP4nels")
    received = receive(sqs, queue_url)

    started = time.monotonic()
    result = make_handler(container)(lambda_event(received), FakeLambdaContext(left=13))
    elapsed = time.monotonic() - started

    # Then the call stops with the store reserve left (about 3 s in), the upstream stream is
    # closed, and the message goes back with the lease released
    assert result["batchItemFailures"] == [{"itemIdentifier": received[0]["MessageId"]}]
    assert elapsed < 8
    assert fake_claude.wait_for_disconnect(timeout=5)
    job, video = job_and_video(container, job_id, "SoLarP4nels")
    assert job.error_code == "INGEST_DEADLINE" and video.status == "pending" and video.claimed_until is None
    assert video.summary is None
