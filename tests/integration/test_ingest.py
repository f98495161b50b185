"""The ingest flow: the Lambda handler with real SQS payloads through moto, and end to end on
loopback with the embedded queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.ingest.handler import make_handler
from local_run.app import build_local_app
from tests.fakes.anthropic_server import FakeAnthropic
from tests.support.aws import fake_aws
from tests.support.clients import client_for
from tests.support.ingest import CountingTranscripts, lambda_event, make_queues, queue_job
from tests.support.jobs import wait_for_job
from tests.support.server import serve
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import DEFAULT_MODEL, Settings
from ytresearch.db.models import IngestJob, Video
from ytresearch.ports import TranscriptError
from ytresearch.queues import SqsJobQueue


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("sqs", region_name="eu-west-1")


def poll_once(sqs: Any, queue_url: str, handler: Any) -> dict[str, Any]:
    """One event-source-mapping cycle: receive, invoke, delete what succeeded."""
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    )
    if not received:
        return {"batchItemFailures": [], "received": 0}
    result: dict[str, Any] = handler(lambda_event(received), None)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in received:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {**result, "received": len(received)}


def test_poison_message_fails_alone(aws: Any, container: Container) -> None:
    queue_url, _ = make_queues(aws)
    sqs_queue = SqsJobQueue(queue_url, client=aws)
    container.__dict__["transcripts"] = CountingTranscripts()
    good = queue_job(container, sqs_queue, "SoLarP4nels")
    aws.send_message(QueueUrl=queue_url, MessageBody="{not json")
    queue_job(container, sqs_queue, "s0urd0ughBr")
    received = aws.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    assert len(received) == 3
    poison_id = next(m["MessageId"] for m in received if m["Body"] == "{not json")
    result = make_handler(container)(lambda_event(received), None)
    assert result["batchItemFailures"] == [{"itemIdentifier": poison_id}]
    with container.store.transaction() as repo:
        assert repo.get_job(uuid.UUID(good)).status == "done"  # type: ignore[union-attr]
        assert {v.id: v.status for v in repo.session.query(Video)} == {
            "SoLarP4nels": "ready",
            "s0urd0ughBr": "ready",
        }


def test_duplicate_delivery_does_no_duplicate_work(
    aws: Any, container: Container, claude: Any, fake_claude: FakeAnthropic
) -> None:
    container.__dict__["chat_model"] = claude
    transcripts = CountingTranscripts()
    container.__dict__["transcripts"] = transcripts
    queue_url, _ = make_queues(aws)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=aws), "SoLarP4nels")
    body = aws.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"][0]
    handler = make_handler(container)
    first = handler(lambda_event([body]), None)
    duplicate = handler(lambda_event([{**body, "MessageId": str(uuid.uuid4())}]), None)
    assert first["batchItemFailures"] == [] == duplicate["batchItemFailures"]
    assert transcripts.fetches == ["SoLarP4nels"] and len(fake_claude.message_requests) == 1
    with container.store.transaction() as repo:
        assert repo.session.query(Video).count() == 1
        job = repo.get_job(uuid.UUID(job_id))
        assert job is not None and job.status == "done"
        assert [s["stage"] for s in job.stages_done] == [
            "validating",
            "fetching_transcript",
            "fetching_metadata",
            "summarising",
            "storing",
        ]
        video = repo.get_video("SoLarP4nels")
        assert video is not None and video.summary and video.summary_model == DEFAULT_MODEL
        assert video.summary_input_tokens and video.transcript_segments
    # The summary request sent the transcript as a cacheable block.
    blocks = [b for m in fake_claude.message_requests[0].body["messages"] for b in m["content"]]
    assert any(b.get("cache_control") for b in blocks)


def test_permanent_error_fails_the_job_without_retry(aws: Any, container: Container) -> None:
    container.__dict__["transcripts"] = CountingTranscripts(
        {"SoLarP4nels": TranscriptError("captions are off", code="TRANSCRIPTS_DISABLED", retryable=False)}
    )
    queue_url, dlq_url = make_queues(aws)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=aws), "SoLarP4nels")
    result = poll_once(aws, queue_url, make_handler(container))
    assert result["batchItemFailures"] == []  # acknowledged: retrying cannot help
    with container.store.transaction() as repo:
        job, video = repo.get_job(uuid.UUID(job_id)), repo.get_video("SoLarP4nels")
        assert job is not None and job.status == "failed" and job.error_code == "TRANSCRIPTS_DISABLED"
        assert video is not None and video.status == "failed" and video.error_code == "TRANSCRIPTS_DISABLED"
    assert "Messages" not in aws.receive_message(QueueUrl=dlq_url)


def test_transient_errors_retry_then_land_in_the_dlq(aws: Any, container: Container) -> None:
    transcripts = CountingTranscripts(
        {"SoLarP4nels": TranscriptError("blocked", code="YOUTUBE_BLOCKED", retryable=True)}
    )
    container.__dict__["transcripts"] = transcripts
    container.settings = container.settings.model_copy(update={"ingest_max_receives": 3})
    queue_url, dlq_url = make_queues(aws, max_receives=3)
    job_id = queue_job(container, SqsJobQueue(queue_url, client=aws), "SoLarP4nels")
    handler = make_handler(container)
    for _ in range(6):
        poll_once(aws, queue_url, handler)
    assert len(transcripts.fetches) == 3  # retried up to the receive limit
    dead = aws.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["job_id"] == job_id
    with container.store.transaction() as repo:
        job = repo.get_job(uuid.UUID(job_id))
        assert job is not None and job.status == "failed" and job.error_code == "YOUTUBE_BLOCKED"


# ------------------------------------------------------------------ end to end on loopback


@pytest.fixture
def local_system(settings: Settings) -> Iterator[tuple[str, Container, CountingTranscripts]]:
    transcripts = CountingTranscripts()
    container = Container(settings, transcripts=transcripts)
    app, queue = build_local_app(container)
    queue.start()
    with serve(app) as server:
        yield server.base_url, container, transcripts
    queue.stop()
    container.engine.dispose()


def test_end_to_end_ingest_and_second_session_reuses_it(
    local_system: tuple[str, Container, CountingTranscripts],
) -> None:
    base_url, container, transcripts = local_system
    key = make_user(container)[1]
    api = client_for(base_url, key)
    s1 = api.post("/v1/sessions", json={"title": "one"}).json()["id"]
    added = api.post(f"/v1/sessions/{s1}/videos", json={"url": "https://youtu.be/SoLarP4nels"})
    assert added.status_code == 202
    job = wait_for_job(api, added.json()["job_id"])
    assert job["status"] == "done" and job["stages_done"][-1] == "storing"
    # The job's record says what each stage found, and a subscriber that comes after the end gets
    # every stage with it, under ids that do not change, then the end; a reconnect resumes.
    found = {step["stage"]: step for step in job["progress"]}
    assert list(found) == ["validating", "fetching_transcript", "fetching_metadata", "summarising", "storing"]
    transcript = found["fetching_transcript"]["details"]
    assert transcript["language"] == "en" and transcript["segments"] > 10 and transcript["characters"] > 500
    assert f"{transcript['segments']:,} lines" in found["fetching_transcript"]["message"]
    assert found["summarising"]["details"]["output_tokens"] > 0 and found["storing"]["details"]["windows"] > 0
    assert all(step["at"] for step in job["progress"])
    _, events, _ = read_stream(api, "GET", f"/v1/jobs/{job['id']}/events")
    assert [(e.id, e.event) for e in events] == [(str(n), "stage") for n in range(1, 7)] + [("7", "complete")]
    stages = [e.json() for e in events[1:6]]
    assert [s["done"] for s in stages] == list(found)
    assert [s["details"] for s in stages] == [step["details"] for step in job["progress"]]
    assert [s["stages_done"] for s in stages][2] == ["validating", "fetching_transcript", "fetching_metadata"]
    _, rest, _ = read_stream(api, "GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "4"})
    assert [e.id for e in rest] == ["5", "6", "7"] and rest[0].data == events[4].data
    _, again, _ = read_stream(api, "GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "7"})
    assert [(e.id, e.event) for e in again] == [("7", "complete")]
    video = api.get("/v1/videos/SoLarP4nels").json()
    assert video["status"] == "ready" and video["summary"] and video["title"]

    s2 = api.post("/v1/sessions", json={"title": "two"}).json()["id"]
    again = api.post(f"/v1/sessions/{s2}/videos", json={"url": "SoLarP4nels"})
    assert again.status_code == 200 and again.json()["video"]["status"] == "ready"
    assert transcripts.fetches == ["SoLarP4nels"]  # no second fetch, and so no second summary
    with container.store.transaction() as repo:
        assert repo.session.query(IngestJob).count() == 1


def test_end_to_end_unknown_video_fails_clearly(
    local_system: tuple[str, Container, CountingTranscripts],
) -> None:
    base_url, container, _ = local_system
    api = client_for(base_url, make_user(container)[1])
    sid = api.post("/v1/sessions").json()["id"]
    job_id = api.post(f"/v1/sessions/{sid}/videos", json={"url": "AAAAAAAAAAA"}).json()["job_id"]
    job = wait_for_job(api, job_id)
    assert job["status"] == "failed" and job["error_code"] == "VIDEO_UNAVAILABLE"
    assert api.get("/v1/videos/AAAAAAAAAAA").json()["error_code"] == "VIDEO_UNAVAILABLE"
