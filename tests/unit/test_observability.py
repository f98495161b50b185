"""Units of observability: redaction, the JSON log line, EMF documents, the metrics port and its
adapters, the measured model, the background writer and the Lambda tracer without the X-Ray SDK."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest

from ytresearch.llm import OfflineChatModel
from ytresearch.observability import logs
from ytresearch.observability.chat_metrics import MeteredChatModel
from ytresearch.observability.context import request_id_var
from ytresearch.observability.emf import EmfMetrics
from ytresearch.observability.logs import (
    BackgroundOutput,
    JsonFormatter,
    JsonLineHandler,
    RequestContextFilter,
    redact,
)
from ytresearch.observability.metrics import (
    InMemoryMetrics,
    MetricPoint,
    NullMetrics,
    code_dimension,
    status_class,
)
from ytresearch.ports import (
    ContentBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
    Usage,
)

API_KEY = "ytr_" + "aB3-_x" * 7 + "Z"  # 43 characters after the prefix
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDB9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

# ------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"key {API_KEY} refused", API_KEY),
        (f"token={JWT}", JWT),
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization: Bearer opaque-token-value-123", "opaque-token-value-123"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("X-API-Key: not-our-format-but-secret", "not-our-format-but-secret"),
        ("{'x-api-key': 'some-key-value', 'accept': '*/*'}", "some-key-value"),
        ('{"Authorization": "Bearer abc.def-ghi"}', "abc.def-ghi"),
        ("[(b'host', b'x'), (b'x-api-key', b'plain-secret-123')]", "plain-secret-123"),
        ("[(b'authorization', b'Token zzz-yyy-xxx')]", "zzz-yyy-xxx"),
        ("api_key=abcdef123456 next", "abcdef123456"),
        ("anthropic sk-ant-api03-AbCdEfGhIjKlMnOp failed", "sk-ant-api03-AbCdEfGhIjKlMnOp"),
        ("postgresql://ytr:s3cr3t-pw@db.internal:5432/ytr", "s3cr3t-pw"),
        (
            "(IntegrityError) [SQL: INSERT INTO messages ...]\n[parameters: ('my private question', 3)]",
            "my private question",
        ),
    ],
)
def test_redact_masks_secrets(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "text",
    [
        "request failed with INVALID_API_KEY: the API key is not valid",
        "missing X-API-Key header",
        "ytresearch.services.ingest",
        "127.0.0.1:8000 GET /v1/sessions/4f6c0a9e-1b2c-3d4e-5f60-7182abcdef00 -> 200",
        "ingested video SoLarP4nels (93 segments)",
        "version 1.2.3, model claude-sonnet-4-5",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redacted_json_lines_stay_valid_json_with_the_same_keys() -> None:
    documents: list[dict[str, Any]] = [
        {"level": "INFO", "error_code": "INVALID_API_KEY", "request_id": "abc", "service": "ytresearch"},
        {"message": "headers", "x-api-key": API_KEY, "authorization": f"Bearer {JWT}"},
        {"secret": 123, "password": {"nested": "pw"}, "api_key": None, "list": ["api_key=1", "Bearer x"]},
        {"message": "quoted \"x-api-key\": \"v1\" and (b'authorization', b'Bearer tok-123456')"},
        {"exception": "Error\n[parameters: ('a \"quoted\" \\\\ text', 'b')]\n(Background on this error)"},
        {"url": "postgresql://u:p@h/db", "odd": 'api_key="', "tail": "secret:"},
    ]
    for document in documents:
        line = json.dumps(document, separators=(",", ":"))
        parsed = json.loads(redact(line))
        assert parsed.keys() == document.keys()


# ------------------------------------------------------------------ the JSON log line


class Collected:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> Collected:
    collected = Collected()
    monkeypatch.setattr(logs, "_output", collected)
    return collected


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    handler = JsonLineHandler()
    handler.setFormatter(JsonFormatter(service="svc"))
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("obs-unit.app")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)


def test_log_lines_have_the_powertools_keys_and_the_request_id(
    output: Collected, app_logger: logging.Logger
) -> None:
    token = request_id_var.set("req-123")
    try:
        app_logger.info("chat %s finished", "abc", extra={"status": "complete"})
    finally:
        request_id_var.reset(token)
    app_logger.info("outside a request")
    inside, outside = output.records
    assert {"level", "location", "message", "timestamp", "service"} <= inside.keys()
    assert inside["message"] == "chat abc finished" and inside["level"] == "INFO"
    assert inside["service"] == "svc" and inside["logger"] == "obs-unit.app"
    assert inside["request_id"] == "req-123" and inside["status"] == "complete"
    assert "request_id" not in outside


def test_secrets_are_masked_in_messages_extras_and_tracebacks(
    output: Collected, app_logger: logging.Logger
) -> None:
    try:
        raise ValueError(f"bad credentials {API_KEY}")
    except ValueError:
        app_logger.exception("auth failed for %s", JWT, extra={"headers": {"x-api-key": API_KEY}})
    (line,) = output.lines
    assert API_KEY not in line and JWT not in line
    record = json.loads(line)
    assert record["exception_name"] == "ValueError" and "***" in record["exception"]


def test_uvicorn_color_copy_is_dropped(output: Collected, app_logger: logging.Logger) -> None:
    app_logger.info("Started server", extra={"color_message": "\x1b[1mStarted\x1b[0m"})
    assert "color_message" not in output.records[0]


def test_a_record_reaching_the_handler_twice_is_written_once(output: Collected) -> None:
    handler = JsonLineHandler()
    handler.setFormatter(JsonFormatter(service="svc"))
    parent, child = logging.getLogger("obs-unit-dedup"), logging.getLogger("obs-unit-dedup.child")
    parent.propagate = False
    parent.addHandler(handler)
    child.addHandler(handler)
    child.setLevel(logging.INFO)
    try:
        child.info("once")
    finally:
        parent.removeHandler(handler)
        child.removeHandler(handler)
    assert len(output.lines) == 1


# ------------------------------------------------------------------ the background writer


def test_background_output_writes_in_order_and_drains_on_close() -> None:
    stream = io.StringIO()
    output = BackgroundOutput(stream)
    for i in range(1000):
        output.write(f'{{"n":{i}}}')
    output.close()
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(1000))


class StalledStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def write(self, text: str) -> int:
        self.go.wait(5)
        return super().write(text)


def test_background_output_drops_when_full_and_says_how_many() -> None:
    stream = StalledStream()
    output = BackgroundOutput(stream, max_lines=10)
    started = time.monotonic()
    for i in range(100):
        output.write(f'{{"n":{i}}}')  # never blocks, even though stdout is stalled
    assert time.monotonic() - started < 1
    assert output.dropped > 0
    stream.go.set()
    output.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    notice = [line for line in lines if "dropped" in str(line.get("message", ""))]
    assert notice and notice[0]["level"] == "WARNING"
    assert str(output.dropped) in notice[0]["message"]


# ------------------------------------------------------------------ metrics port and EMF


def test_emf_document_is_valid_and_carries_the_request_id() -> None:
    written: list[str] = []
    metrics = EmfMetrics(namespace="YtResearch", service="ytresearch", write=written.append)
    token = request_id_var.set("req-9")
    try:
        metrics.emit(
            [MetricPoint("OutputTokens", 42), MetricPoint("TimeToFirstToken", 12.5, "Milliseconds")],
            {"purpose": "chat"},
        )
    finally:
        request_id_var.reset(token)
    (doc,) = [json.loads(line) for line in written]
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "YtResearch"
    assert directive["Dimensions"] == [["purpose", "service"]]
    assert {(m["Name"], m["Unit"]) for m in directive["Metrics"]} == {
        ("OutputTokens", "Count"),
        ("TimeToFirstToken", "Milliseconds"),
    }
    assert doc["purpose"] == "chat" and doc["service"] == "ytresearch" and doc["request_id"] == "req-9"
    assert doc["OutputTokens"] == [42.0] and doc["TimeToFirstToken"] == [12.5]


def test_a_bad_metric_is_dropped_without_failing_the_caller() -> None:
    written: list[str] = []
    metrics = EmfMetrics(namespace="YtResearch", service="s", write=written.append)
    metrics.count("")
    metrics.milliseconds("StreamDuration", float("nan"))
    assert written == []


@pytest.mark.parametrize(
    ("points", "dimensions"),
    [
        ([MetricPoint("Requests", 1)], {"route": "/v1/sessions", "status_class": "2xx"}),
        ([MetricPoint("ActiveStreams", 0)], None),
        (
            [
                MetricPoint("StreamDuration", 1234.5, "Milliseconds"),
                MetricPoint("StreamEvents", 54),
                MetricPoint("StreamBytes", 9000, "Bytes"),
                MetricPoint("StreamEventRate", 26.9, "Count/Second"),
                MetricPoint("StreamEvents", 3),
            ],
            {"transport": "sse"},
        ),
        ([MetricPoint("Errors", 1)], {"code": "x" * 300}),
    ],
)
def test_emf_documents_are_the_ones_powertools_writes(
    points: list[MetricPoint], dimensions: dict[str, str] | None
) -> None:
    """The document built by hand is, field for field, Powertools' serialization of the same."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    ours = EmfMetrics(namespace="YtResearch", service="svc", write=lambda _line: None).document(
        points, dimensions
    )
    provider = AmazonCloudWatchEMFProvider(namespace="YtResearch", service="svc")
    for name, value in (dimensions or {}).items():
        provider.add_dimension(name=name, value=value[:250])
    for point in points:
        provider.add_metric(name=point.name, unit=point.unit, value=point.value)
    theirs = dict(provider.serialize_metric_set())
    for document in (ours, theirs):
        document["_aws"].pop("Timestamp")  # type: ignore[attr-defined]
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)


def test_empty_dimension_values_become_none() -> None:
    written: list[str] = []
    EmfMetrics(namespace="YtResearch", service="s", write=written.append).count("Errors", code="")
    assert json.loads(written[0])["code"] == "none"


def test_in_memory_and_null_metrics() -> None:
    metrics = InMemoryMetrics()
    metrics.count("Requests", route="/a", status_class="2xx")
    metrics.count("Requests", route="/b", status_class="4xx")
    metrics.milliseconds("IngestDuration", 5.0, outcome="done")
    assert metrics.values("Requests") == [1, 1]
    assert metrics.values("Requests", status_class="4xx") == [1]
    assert metrics.values("IngestDuration", outcome="done") == [5.0]
    NullMetrics().count("Requests", route="/a")  # records nothing, raises nothing


def test_dimension_helpers_keep_cardinality_bounded() -> None:
    assert status_class(201) == "2xx" and status_class(503) == "5xx"
    assert code_dimension("SESSION_NOT_FOUND") == "SESSION_NOT_FOUND"
    assert code_dimension("not a code") == "OTHER" and code_dimension(None) == "OTHER"
    assert code_dimension("A" * 100) == "OTHER"


# ------------------------------------------------------------------ the measured model


def request(purpose: str = "chat") -> ModelRequest:
    return ModelRequest(
        system=[SystemBlock("You summarise.")],
        messages=[ModelMessage("user", [ContentBlock("Solar panels turn light into electricity.")])],
        max_tokens=200,
        purpose="summary" if purpose == "summary" else "chat",
    )


async def consume(model: MeteredChatModel, req: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(req)]


def test_stream_records_time_to_first_token_once_and_usage() -> None:
    metrics = InMemoryMetrics()
    model = MeteredChatModel(OfflineChatModel(), metrics)
    events = asyncio.run(consume(model, request()))
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    assert len(metrics.values("TimeToFirstToken", purpose="chat")) == 1
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert metrics.values("OutputTokens", purpose="chat") == [finished.usage.output_tokens]
    assert metrics.values("InputTokens", purpose="chat") == [finished.usage.input_tokens]
    assert metrics.values("CacheReadTokens", purpose="chat") == [0]


def test_complete_records_usage_by_purpose() -> None:
    metrics = InMemoryMetrics()
    completion = asyncio.run(MeteredChatModel(OfflineChatModel(), metrics).complete(request("summary")))
    assert metrics.values("OutputTokens", purpose="summary") == [completion.usage.output_tokens]
    assert metrics.values("TimeToFirstToken") == []


class BreakerLike:
    name = "claude-x"

    def __init__(self) -> None:
        self.closed = False

    def paused_for(self) -> int | None:
        return 7

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        try:
            yield TextDelta("a")
            yield TextDelta("b")
            yield StreamFinished("end_turn", Usage(10, 2, 7, 0), "claude-x")
        finally:
            self.closed = True


def test_the_inner_model_surface_passes_through_and_closing_reaches_it() -> None:
    inner = BreakerLike()
    model = MeteredChatModel(inner, InMemoryMetrics())
    assert model.name == "claude-x" and model.paused_for() == 7 and model.count_tokens("abc") == 3

    async def first_then_close() -> None:
        stream = model.stream(request())
        await stream.__anext__()
        await stream.aclose()

    asyncio.run(first_then_close())
    assert inner.closed


# ------------------------------------------------------------------ Lambda tracer


def test_lambda_tracer_without_the_xray_sdk_is_a_working_no_op() -> None:
    code = (
        "import sys, json\n"
        "from ytresearch.observability.lambdas import lambda_tracer, tracing_enabled\n"
        "tracer = lambda_tracer()\n"
        "@tracer.capture_lambda_handler(capture_response=False)\n"
        "def handler(event, context):\n"
        "    return {'ok': event['n']}\n"
        "result = handler({'n': 1}, None)\n"
        "print(json.dumps({'result': result, 'enabled': tracing_enabled(), "
        "'xray': 'aws_xray_sdk' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "result": {"ok": 1},
        "enabled": False,
        "xray": False,
    }
