"""Observability of the two Lambda handlers, each in a fresh Python process (so its first
invocation is a real cold start), invoked with the API Gateway fixture events and an SQS event.

Given a migrated SQLite database with a user and a queued ingest job, when the CRUD handler is
invoked three times (201, 200, 401) and the ingest handler with a good and a poison record, then
stdout holds only JSON: Powertools log lines carrying API Gateway's request id as correlation id
and request id, one ColdStart metric per process, and valid EMF documents for the requests,
errors and ingest metrics; and neither the key nor transcript text appears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.settings import test_settings
from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.services.users import create_user

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "fixtures" / "events"
SAMPLE = REPO / "shared" / "ytresearch" / "samples" / "SoLarP4nels.json"

CONTEXT = """
class Context:
    def __init__(self, name, remaining_ms=29_000):
        self.remaining_ms = remaining_ms
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:" + name
        self.memory_limit_in_mb = 512
        self.aws_request_id = "5f1c7a0e-0d0e-4c39-9a0b-7b0b3e0d1a11"
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "2026/11/21/[$LATEST]abc"

    def get_remaining_time_in_millis(self):
        return self.remaining_ms
"""

API_SCRIPT = (
    CONTEXT
    + """
import json, sys
events, key = sys.argv[1], sys.argv[2]
import functions.api.handler as api

def event(name, key):
    data = json.load(open(f"{events}/{name}"))
    if key is None:
        data["headers"].pop("x-api-key")
    else:
        data["headers"]["x-api-key"] = key
    return data

statuses = [
    api.handler(event("apigw_v2_post_session.json", key), Context("ytr-api"))["statusCode"],
    api.handler(event("apigw_v2_get_sessions.json", key), Context("ytr-api"))["statusCode"],
    api.handler(event("apigw_v2_get_sessions.json", None), Context("ytr-api"))["statusCode"],
]
heavy = [m for m in ("boto3", "anthropic", "aws_xray_sdk") if m in sys.modules]
print(json.dumps({"statuses": statuses, "heavy": heavy}), file=sys.stderr)
"""
)

INGEST_SCRIPT = (
    CONTEXT
    + """
import json, sys
import functions.ingest.handler as ingest
from ytresearch.queues import sqs_record

# The deployed ingest function's timeout (420 s): its work fits the deadline checks.
good = ingest.handler({"Records": [sqs_record(sys.argv[1])]}, Context("ytr-ingest", 420_000))
poison = ingest.handler(
    {"Records": [sqs_record("{not json", message_id="poison-1")]}, Context("ytr-ingest", 420_000)
)
print(json.dumps({"good": good, "poison": poison}), file=sys.stderr)
"""
)


def lines_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def metric(lines: list[dict[str, Any]], name: str, **dimensions: str) -> list[dict[str, Any]]:
    found = []
    for doc in lines:
        if "_aws" not in doc:
            continue
        names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if name in names and all(doc.get(k) == v for k, v in dimensions.items()):
            found.append(doc)
    return found


def assert_valid_emf(doc: dict[str, Any]) -> None:
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "YtResearch"
    assert isinstance(doc["_aws"]["Timestamp"], int)
    for dimension_set in directive["Dimensions"]:
        assert "service" in dimension_set and all(isinstance(doc[d], str) for d in dimension_set)
    for definition in directive["Metrics"]:
        assert definition["Unit"] in ("Count", "Milliseconds")
        assert all(isinstance(v, float) for v in doc[definition["Name"]])


@pytest.fixture
def lambda_env(tmp_path: Path) -> tuple[dict[str, str], str, dict[str, Any]]:
    url = f"sqlite:///{tmp_path}/ytr.db"
    settings = test_settings(url)
    upgrade_to_head(settings)
    container = Container(settings)
    user, key = create_user(container.store, "lambda@example.com")
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "s")
        repo.get_or_add_video("SoLarP4nels")
        repo.link_video(session.id, "SoLarP4nels", None)
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id="SoLarP4nels", language=None)
        message: dict[str, Any] = {"version": 1, "job_id": str(job.id), "video_id": "SoLarP4nels"}
    container.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YTR_", "ANTHROPIC", "POWERTOOLS_"))}
    env.update(
        YTR_ENVIRONMENT="test",
        YTR_DATABASE_URL=url,
        YTR_TRANSCRIPT_SOURCE="samples",
        YTR_LLM_PROVIDER="offline",
        YTR_OFFLINE_TOKEN_DELAY_SECONDS="0",
        YTR_DB_POOL_SIZE="0",
        POWERTOOLS_SERVICE_NAME="ytresearch",
    )
    return env, key, message


def run(script: str, env: dict[str, str], *args: str) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    stderr_lines = done.stderr.strip().splitlines()
    assert len(stderr_lines) == 1, done.stderr  # only the script's own summary: no warnings, no text logs
    return lines_of(done.stdout), done.stdout, json.loads(stderr_lines[0])


def test_crud_handler_logs_json_with_correlation_ids_and_emits_emf_and_a_cold_start(
    lambda_env: tuple[dict[str, str], str, dict[str, Any]],
) -> None:
    env, key, _ = lambda_env
    lines, stdout, summary = run(API_SCRIPT, env, str(EVENTS), key)
    assert summary["statuses"] == [201, 200, 401]
    assert summary["heavy"] == []  # no boto3, anthropic, or X-Ray SDK for a CRUD call

    cold = metric(lines, "ColdStart")
    assert len(cold) == 1 and cold[0]["function_name"] == "ytr-api" and cold[0]["service"] == "ytresearch"
    assert len(metric(lines, "Requests", route="/v1/sessions", status_class="2xx")) == 2
    assert len(metric(lines, "Requests", route="/v1/sessions", status_class="4xx")) == 1
    assert metric(lines, "Errors", code="MISSING_API_KEY")
    for doc in lines:
        if "_aws" in doc:
            assert_valid_emf(doc)

    requests = [line for line in lines if line.get("logger") == "ytresearch.web"]
    assert [line["status"] for line in requests] == [201, 200, 401]
    assert [line["cold_start"] for line in requests] == [True, False, False]
    for line, fixture in zip(requests, ["post_session", "get_sessions", "get_sessions"], strict=True):
        fixture_event = json.loads((EVENTS / f"apigw_v2_{fixture}.json").read_text())
        assert line["correlation_id"] == line["request_id"] == fixture_event["requestContext"]["requestId"]
        assert line["function_name"] == "ytr-api" and line["service"] == "ytresearch"
    assert key not in stdout


def test_ingest_handler_emits_duration_failures_and_a_cold_start_without_transcript_text(
    lambda_env: tuple[dict[str, str], str, dict[str, Any]],
) -> None:
    env, _, message = lambda_env
    lines, stdout, summary = run(INGEST_SCRIPT, env, json.dumps(message))
    assert summary["good"] == {"batchItemFailures": []}
    assert summary["poison"] == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}

    cold = metric(lines, "ColdStart")
    assert len(cold) == 1 and cold[0]["function_name"] == "ytr-ingest"
    assert metric(lines, "IngestDuration", outcome="done")
    assert metric(lines, "IngestFailures", code="INVALID_INGEST_MESSAGE")
    assert metric(lines, "OutputTokens", purpose="summary")
    for doc in lines:
        if "_aws" in doc:
            assert_valid_emf(doc)

    (ingested,) = [line for line in lines if str(line.get("message", "")).startswith("ingested video")]
    assert ingested["job_id"] == message["job_id"] and ingested["video_id"] == "SoLarP4nels"
    assert ingested["function_name"] == "ytr-ingest"
    for segment in json.loads(SAMPLE.read_text())["segments"]:
        if len(segment["text"]) > 40:
            assert segment["text"] not in stdout
