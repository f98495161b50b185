"""Observability of the real local system: `python -m local_run` (as `make run`
starts it) driven through a full flow, then its output read back.

Given the local process with stdout (logs) and stderr (the start-up banner) captured in files,
when a person creates a session, adds a sample video and a missing one, chats over POST-then-SSE,
one-step SSE and sync, and makes failing requests (bad key, bearer token, unknown id), then:
every stdout line is JSON; request lines carry the request id the client saw; the EMF documents
for every metric of the catalogue are there and valid; and no line holds the API key, a bearer
token or any run of the transcript's words.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.health import wait_until_healthy
from tests.support.jobs import wait_for_job
from tests.support.postgres import free_port
from tests.support.sse import read_stream, text_of

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "ytresearch" / "samples" / "SoLarP4nels.json"
BAD_KEY = "ytr_" + "Q" * 43
BEARER = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJvYnMtdGVzdCJ9.c2lnbmF0dXJlLW5vdC12YWxpZA"
CLIENT_REQUEST_ID = "obs-test-request-1"
BANNER_PREFIXES = (
    "YouTube Research Tool running at",
    "  database:",
    "  model:",
    "  transcripts:",
    "ytr from any folder",
    "  export YTR_API_URL=",
)
KEY_BANNER_PREFIXES = ("  API key:", "Try:  curl", "  export YTR_API_KEY=")
EMF_UNITS = {"Count", "Milliseconds", "Bytes", "Count/Second"}
STREAMED = ("sse", "sse_one_step", "websocket")  # the transports whose streams are measured


@dataclass
class Run:
    """What the flow saw as a client, and what the process wrote."""

    key: str
    responses: list[httpx.Response] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" not in line]

    @property
    def emf(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" in line]

    def metric(self, name: str, **dimensions: str) -> list[dict[str, Any]]:
        """EMF documents holding ``name`` whose dimension values include ``dimensions``."""
        found = []
        for doc in self.emf:
            names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
            if name in names and all(doc.get(k) == v for k, v in dimensions.items()):
                found.append(doc)
        return found


def start_local(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YTR_", "ANTHROPIC", "POWERTOOLS_"))}
    env["YTR_OFFLINE_TOKEN_DELAY_SECONDS"] = "0.002"
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:  # files: a full pipe would stall it
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_run", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, proc, failure=lambda: err.read_text()[-2000:])
    return proc, base, out, err


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp_path = tmp_path_factory.mktemp("observability")
    proc, base, out, err = start_local(tmp_path)
    try:
        key = (tmp_path / ".ytr" / "dev_api_key").read_text().strip()
        result = Run(key=key)
        seen = result.responses.append
        api = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60)
        api.event_hooks["response"] = [seen]

        session = api.post(
            "/v1/sessions", json={"title": "Solar"}, headers={"X-Request-ID": CLIENT_REQUEST_ID}
        )
        assert session.status_code == 201
        sid = session.json()["id"]
        added = api.post(f"/v1/sessions/{sid}/videos", json={"url": "https://youtu.be/SoLarP4nels"})
        assert added.status_code == 202
        status, events, _ = read_stream(api, "GET", f"/v1/jobs/{added.json()['job_id']}/events")
        assert status == 200 and events[-1].event == "complete"
        missing = api.post(f"/v1/sessions/{sid}/videos", json={"url": "https://youtu.be/AAAAAAAAAAA"})
        failed = wait_for_job(api, missing.json()["job_id"], timeout=60, interval=0.1)
        assert failed["error_code"] == "VIDEO_UNAVAILABLE"

        question = {"message": "How do solar panels make electricity?"}
        started = api.post(f"/v1/sessions/{sid}/chat", json=question)
        assert started.status_code == 201
        status, events, _ = read_stream(api, "GET", started.json()["stream_url"])
        assert status == 200 and events[-1].event == "complete" and text_of(events)
        status, events, _ = read_stream(api, "POST", f"/v1/sessions/{sid}/messages/stream", json=question)
        assert status == 200 and events[-1].event == "complete"
        reply = api.post(f"/v1/sessions/{sid}/messages", json={"message": "What is silicon for?"})
        assert reply.status_code == 201 and reply.json()["content"]
        ws_url = base.replace("http", "ws") + f"/v1/sessions/{sid}/ws"
        with connect(ws_url, additional_headers={"X-API-Key": key}) as ws:
            assert json.loads(ws.recv(10))["type"] == "ready"
            ws.send(json.dumps({"type": "message", "content": "list my videos"}))  # a tool call
            while (frame := json.loads(ws.recv(30)))["type"] != "complete":
                assert frame["type"] != "error", frame
        polled = api.post(f"/v1/sessions/{sid}/chat", json=question).json()
        while (state := api.get(f"/v1/requests/{polled['request_id']}").json())["status"] == "streaming":
            time.sleep(0.05)
        assert state["status"] == "complete" and state["text"]

        assert api.get("/v1/sessions", headers={"X-API-Key": BAD_KEY}).status_code == 401
        bearer = httpx.get(base + "/v1/sessions", headers={"Authorization": f"Bearer {BEARER}"})
        seen(bearer)
        assert bearer.status_code == 401
        assert api.get(f"/v1/sessions/{uuid.uuid4()}").status_code == 404
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    result.stdout, result.stderr = out.read_text(), err.read_text()
    yield result


# ------------------------------------------------------------------ the shape of every line


def test_every_stdout_line_is_a_json_object(run: Run) -> None:
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) > 20
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_log_lines_have_the_powertools_shape(run: Run) -> None:
    assert run.logs
    for line in run.logs:
        assert {"level", "location", "message", "timestamp", "service", "logger"} <= line.keys(), line
        assert line["service"] == "ytresearch"
    # uvicorn's own lines are among them, in the same shape
    assert any(line["logger"].startswith("uvicorn") for line in run.logs)


def test_stderr_holds_only_the_start_up_banner(run: Run) -> None:
    for line in run.stderr.splitlines():
        assert not line.strip() or line.startswith(BANNER_PREFIXES + KEY_BANNER_PREFIXES), line
    assert "YouTube Research Tool running at" in run.stderr


# ------------------------------------------------------------------ request ids


def test_each_request_has_a_log_line_with_the_request_id_the_client_saw(run: Run) -> None:
    by_id = {line["request_id"]: line for line in run.logs if line["logger"] == "ytresearch.web"}
    assert run.responses
    for response in run.responses:
        request_id = response.headers["x-request-id"]
        assert request_id in by_id, (response.request.url, request_id)
        assert by_id[request_id]["status"] == response.status_code
    assert by_id[CLIENT_REQUEST_ID]["route"] == "/v1/sessions"  # the client's own id is kept


def test_request_scoped_lines_carry_the_request_id(run: Run) -> None:
    scoped = [
        line
        for line in run.logs
        if line["logger"] == "ytresearch.web"
        or re.match(r"chat request \S+ (started|finished)", line["message"])
    ]
    assert len(scoped) >= len(run.responses)
    assert all(line.get("request_id") for line in scoped)
    # metrics recorded while handling a request carry it too (EMF metadata, not a dimension)
    for name in ("Requests", "Errors", "ChatReplies"):
        assert all(doc.get("request_id") for doc in run.metric(name)), name
    assert all(doc.get("request_id") for doc in run.metric("TimeToFirstToken", purpose="chat"))


def test_error_lines_name_the_error_code(run: Run) -> None:
    codes = {line.get("error_code") for line in run.logs if line["logger"] == "ytresearch.web"}
    assert {"INVALID_API_KEY", "SESSION_NOT_FOUND"} <= codes


# ------------------------------------------------------------------ metrics


def test_every_emf_document_is_valid(run: Run) -> None:
    assert run.emf
    for doc in run.emf:
        aws = doc["_aws"]
        assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
        assert aws["CloudWatchMetrics"]
        for directive in aws["CloudWatchMetrics"]:
            assert directive["Namespace"] == "YtResearch"
            assert directive["Dimensions"] and all(isinstance(s, list) for s in directive["Dimensions"])
            for dimension_set in directive["Dimensions"]:
                assert "service" in dimension_set
                for name in dimension_set:
                    assert isinstance(doc[name], str) and doc[name], (name, doc)
            for metric in directive["Metrics"]:
                assert metric["Unit"] in EMF_UNITS
                values = doc[metric["Name"]]
                values = values if isinstance(values, list) else [values]
                assert values and all(isinstance(v, (int, float)) for v in values), doc


def test_requests_are_counted_by_route_template_and_status_class(run: Run) -> None:
    expected = [
        ("/v1/sessions", "2xx"),
        ("/v1/sessions/{session_id}/videos", "2xx"),
        ("/v1/jobs/{job_id}/events", "2xx"),
        ("/v1/sessions/{session_id}/chat", "2xx"),
        ("/v1/streams/{request_id}", "2xx"),
        ("/v1/sessions/{session_id}/messages/stream", "2xx"),
        ("/v1/sessions/{session_id}/messages", "2xx"),  # sync chat
        ("/v1/sessions", "4xx"),
        ("/v1/sessions/{session_id}", "4xx"),
    ]
    for route, status_class in expected:
        assert run.metric("Requests", route=route, status_class=status_class), (route, status_class)
    # never a raw path: ids would make unbounded metric series
    assert not [d for d in run.metric("Requests") if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", d["route"])]


def test_errors_are_counted_by_code(run: Run) -> None:
    assert run.metric("Errors", code="INVALID_API_KEY")
    assert run.metric("Errors", code="SESSION_NOT_FOUND")


def test_model_metrics_cover_every_chat_transport(run: Run) -> None:
    # POST-then-SSE, one-step SSE, sync, WebSocket (two model calls: a tool round) and polling
    first_token = run.metric("TimeToFirstToken", purpose="chat")
    assert len(first_token) == 6
    assert all(
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds" for doc in first_token
    )
    usage = run.metric("OutputTokens", purpose="chat")
    assert len(usage) == 6 and all(doc["OutputTokens"][0] > 0 for doc in usage)
    assert all("CacheReadTokens" in doc for doc in usage)
    assert run.metric("OutputTokens", purpose="summary")  # the ingest summary is measured too


def test_chat_replies_and_active_streams(run: Run) -> None:
    assert len(run.metric("ChatReplies", status="complete")) == 4  # SSE twice, WebSocket, polling
    active = [value for doc in run.metric("ActiveStreams") for value in doc["ActiveStreams"]]
    assert 1.0 in active and active[-1] == 0.0


def test_streams_are_measured_per_transport(run: Run) -> None:
    for transport in (*STREAMED, "poll"):
        (ttft,) = run.metric("StreamTimeToFirstToken", transport=transport)
        assert ttft["StreamTimeToFirstToken"][0] > 0, transport
    for transport in STREAMED:
        (done,) = [d for d in run.metric("StreamDuration", transport=transport) if "StreamEvents" in d]
        assert done["StreamEvents"][0] > 2 and done["StreamBytes"][0] > done["StreamEvents"][0] * 20
        assert done["StreamEventRate"][0] > 0 and done["StreamDuration"][0] > 0
        units = {m["Name"]: m["Unit"] for m in done["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert units["StreamBytes"] == "Bytes" and units["StreamEventRate"] == "Count/Second"
        opened = [v for doc in run.metric("OpenStreams", transport=transport) for v in doc["OpenStreams"]]
        assert opened == [1.0, 0.0], transport


def test_each_stream_ends_with_a_stream_completed_line(run: Run) -> None:
    lines = [line for line in run.logs if line.get("message") == "stream_completed"]
    assert sorted(line["transport"] for line in lines) == sorted(STREAMED)
    user_ids = {line["user_id"] for line in lines}
    assert len(user_ids) == 1 and uuid.UUID(user_ids.pop())
    for line in lines:
        assert line["status"] == "complete" and line["events"] > 2 and line["bytes"] > 100
        assert line["duration_ms"] > 0 and line["events_per_second"] > 0 and line["ttft_ms"] > 0


def test_request_lines_name_the_user_and_never_the_key(run: Run) -> None:
    requests = [line for line in run.logs if "route" in line and "status" in line]
    authed = [
        line for line in requests if line["route"].startswith("/v1/") and line["status"] in (200, 201, 202)
    ]
    assert authed and all(uuid.UUID(line["user_id"]) for line in authed)
    assert {line["user_id"] for line in authed} == {
        line["user_id"] for line in run.logs if line.get("message") == "stream_completed"
    }
    refused = [line for line in requests if line["status"] == 401]
    assert refused and all(line.get("user_id") is None for line in refused)
    # Lines logged while a request is handled (the reply's own) carry the user too.
    assert any(line.get("user_id") and "route" not in line for line in run.logs)


def test_tool_calls_are_counted_by_tool_and_outcome(run: Run) -> None:
    assert run.metric("ToolCalls", tool="list_videos", outcome="done")


def test_ingest_duration_and_failures(run: Run) -> None:
    done = run.metric("IngestDuration", outcome="done")
    assert done and done[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    assert run.metric("IngestDuration", outcome="failed")
    assert run.metric("IngestFailures", code="VIDEO_UNAVAILABLE")


# ------------------------------------------------------------------ what must never be logged


def test_no_line_holds_the_api_key_or_a_bearer_token(run: Run) -> None:
    assert run.key not in run.stdout
    assert BAD_KEY not in run.stdout and BAD_KEY not in run.stderr
    assert BEARER not in run.stdout and BEARER not in run.stderr
    assert BEARER.split(".")[1] not in run.stdout
    # the key is shown once to the person who started the system, in the banner on stderr only
    for line in run.stderr.splitlines():
        assert run.key not in line or line.startswith(KEY_BANNER_PREFIXES), line


def test_no_line_holds_transcript_text(run: Run) -> None:
    segments = [s["text"].strip() for s in json.loads(SAMPLE.read_text())["segments"]]
    output = run.stdout + run.stderr
    for text in segments:
        if len(text) > 40:
            assert text not in output, text
    words = " ".join(segments).split()
    for i in range(len(words) - 7):
        run_of_eight = " ".join(words[i : i + 8])
        assert run_of_eight not in output, run_of_eight
