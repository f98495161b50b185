"""The CRUD routes driven through the Mangum handler with real API Gateway HTTP API v2 events."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ytresearch.bootstrap import Container
from ytresearch.services.users import AuthUser

EVENTS = Path(__file__).parent.parent / "fixtures" / "events"


class LambdaContext:
    function_name = "ytr-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:ytr-api"
    memory_limit_in_mb = 512
    aws_request_id = "5f1c7a0e-0d0e-4c39-9a0b-7b0b3e0d1a11"
    log_group_name = "/aws/lambda/ytr-api"
    log_stream_name = "2026/11/21/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def event(name: str, key: str | None, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if key is None:
        data["headers"].pop("x-api-key")
    else:
        data["headers"]["x-api-key"] = key
    for path, value in changes.items():
        data["rawPath"] = data["requestContext"]["http"]["path"] = (
            value if path == "path" else data["rawPath"]
        )
    return data


@pytest.fixture
def handler(container: Container) -> Iterator[Any]:
    from functions.api import handler as module

    # Swapped by hand: monkeypatch cannot see Starlette's State attributes and would delete the
    # module's own container on undo.
    original = module.app.state.container
    module.app.state.container = container
    try:
        yield module.handler
    finally:
        module.app.state.container = original


def body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw)
    return json.loads(raw)


def test_post_then_get_through_the_lambda_handler(handler: Any, alice: tuple[AuthUser, str]) -> None:
    created = handler(event("apigw_v2_post_session.json", alice[1]), LambdaContext())
    assert created["statusCode"] == 201
    assert body(created)["title"] == "Solar research"
    listed = handler(event("apigw_v2_get_sessions.json", alice[1]), LambdaContext())
    assert listed["statusCode"] == 200
    assert [s["title"] for s in body(listed)["items"]] == ["Solar research"]
    # API Gateway's request id becomes ours, so logs and clients can correlate.
    assert listed["headers"]["x-request-id"] == "Cx1aBhz0DoEEMqA="


def test_lambda_errors_use_our_format(handler: Any, alice: tuple[AuthUser, str]) -> None:
    missing = handler(event("apigw_v2_get_sessions.json", None), LambdaContext())
    assert missing["statusCode"] == 401 and body(missing)["error"]["code"] == "MISSING_API_KEY"
    unknown = handler(event("apigw_v2_get_sessions.json", alice[1], path="/v1/nope"), LambdaContext())
    assert unknown["statusCode"] == 404 and body(unknown)["error"]["code"] == "NOT_FOUND"
    bad_id = handler(event("apigw_v2_get_sessions.json", alice[1], path="/v1/sessions/123"), LambdaContext())
    assert bad_id["statusCode"] == 400 and body(bad_id)["error"]["code"] == "INVALID_ID"


def test_handler_import_stays_light() -> None:
    code = (
        "import sys; import functions.api.handler; "
        "bad = [m for m in ('boto3', 'anthropic', 'youtube_transcript_api', 'uvicorn') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
