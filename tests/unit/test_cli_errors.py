"""Every failure the client can meet becomes one `CliError` line with the documented exit code;
the SSE reader resumes dropped streams with Last-Event-ID and gives up clearly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ytr.client import ApiClient, error_from_response, transport_error
from ytr.errors import CliError, exit_for_code

BASE = "http://127.0.0.1:8000"


def api_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("GET", BASE + "/v1/x"))


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (400, "VALIDATION_ERROR", 1),
        (401, "INVALID_API_KEY", 3),
        (404, "SESSION_NOT_FOUND", 4),
        (409, "CONFLICT", 1),
        (410, "REQUEST_EXPIRED", 1),
        (413, "PAYLOAD_TOO_LARGE", 1),
        (429, "TOO_MANY_ACTIVE_REQUESTS", 5),
        (500, "INTERNAL_ERROR", 6),
        (503, "DATABASE_UNAVAILABLE", 6),
    ],
)
def test_api_errors_keep_code_and_message_and_map_the_exit_code(
    status: int, code: str, exit_code: int
) -> None:
    error = error_from_response(api_error(status, code, "a human sentence"))
    assert (error.code, error.exit_code) == (code, exit_code)
    assert error.line().startswith("error: a human sentence") and error.line().endswith(f"({code})")


def test_rate_limit_mentions_retry_after() -> None:
    error = error_from_response(api_error(429, "RATE_LIMITED", "slow down", headers={"Retry-After": "60"}))
    assert error.exit_code == 5 and error.retry_after == 60
    assert error.line() == "error: slow down; retry after 60 s (RATE_LIMITED)"
    from_details = error_from_response(
        api_error(429, "RATE_LIMITED", "slow down", details={"retry_after": 5})
    )
    assert from_details.retry_after == 5


def test_a_response_that_is_not_our_error_format() -> None:
    response = httpx.Response(
        502, text="<html>Bad Gateway</html>", request=httpx.Request("GET", BASE + "/v1/x")
    )
    error = error_from_response(response)
    assert error.code == "HTTP_502" and error.exit_code == 6 and "502" in error.message


def test_connection_refused_says_what_to_do() -> None:
    error = transport_error(httpx.ConnectError("refused"), BASE)
    assert error.exit_code == 6
    assert error.message == f"cannot reach {BASE}: is `make run` running?"
    remote = transport_error(httpx.ConnectError("refused"), "https://api.example.com")
    assert "make run" not in remote.message


def test_error_codes_without_a_status() -> None:
    assert exit_for_code("SESSION_NOT_FOUND") == 4
    assert exit_for_code("INVALID_API_KEY") == 3
    assert exit_for_code("TOO_MANY_ACTIVE_REQUESTS") == 5
    assert exit_for_code("MODEL_OVERLOADED", retryable=True) == 6
    assert exit_for_code("INVALID_FRAME") == 1


# ---------------------------------------------------------------------- ApiClient over a mock transport


def client_with(
    handler: Any, *, key: str | None = "ytr_test", sleeps: list[float] | None = None
) -> ApiClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    record = sleeps if sleeps is not None else []
    return ApiClient(BASE, BASE, key, http=http, sleep=record.append)


def test_rest_errors_raise_cli_errors() -> None:
    client = client_with(lambda request: api_error(404, "SESSION_NOT_FOUND", "session not found"))
    with pytest.raises(CliError) as raised:
        client.get_session("0b9a3c1e-0000-0000-0000-000000000000")
    assert raised.value.exit_code == 4 and raised.value.code == "SESSION_NOT_FOUND"


def test_no_api_key_is_an_auth_error_before_any_request() -> None:
    seen: list[httpx.Request] = []
    client = client_with(lambda request: seen.append(request) or httpx.Response(200), key=None)  # type: ignore[func-returns-value]
    with pytest.raises(CliError) as raised:
        client.list_sessions()
    assert raised.value.exit_code == 3 and "YTR_API_KEY" in raised.value.message and not seen


class CutStream(httpx.SyncByteStream):
    """A response body that breaks after some bytes, like a dropped connection."""

    def __init__(self, chunks: list[bytes], cut: bool) -> None:
        self.chunks, self.cut = chunks, cut

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.cut:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def sse_response(chunks: list[bytes], *, cut: bool) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=CutStream(chunks, cut))


def test_a_dropped_stream_resumes_from_the_last_complete_event() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:  # cut in the middle of event 3
            return sse_response(
                [
                    b"retry: 250\n\n",
                    b'id: 1\nevent: token\ndata: {"text":"a"}\n\n',
                    b'id: 2\nevent: token\ndata: {"text":"b"}\n\nid: 3\nevent: tok',
                ],
                cut=True,
            )
        return sse_response(
            [
                b'retry: 250\n\nid: 3\nevent: token\ndata: {"text":"c"}\n\n',
                b'id: 4\nevent: complete\ndata: {"text":"abc"}\n\n',
            ],
            cut=False,
        )

    sleeps: list[float] = []
    reconnects: list[int] = []
    client = client_with(handler, sleeps=sleeps)
    events = list(client.events("/v1/streams/r1", on_reconnect=lambda n, cause: reconnects.append(n)))
    assert [e.id for e in events] == ["1", "2", "3", "4"]  # no gap, no duplicate
    assert "last-event-id" not in requests[0].headers
    assert requests[1].headers["last-event-id"] == "2"
    assert sleeps == [0.25] and reconnects == [1]  # the server's retry: was honoured


def test_a_stream_that_cannot_be_resumed_gives_up_after_five_attempts() -> None:
    attempts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused")

    client = client_with(handler)
    with pytest.raises(CliError) as raised:
        list(client.events("/v1/streams/r1"))
    assert raised.value.code == "STREAM_LOST" and raised.value.exit_code == 6
    assert "cannot reach" in raised.value.message
    assert len(attempts) == 1 + 5


def test_a_stream_error_that_retrying_cannot_fix_is_raised_at_once() -> None:
    attempts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return api_error(410, "REQUEST_EXPIRED", "chat request r1 has expired")

    with pytest.raises(CliError) as raised:
        list(client_with(handler).events("/v1/streams/r1"))
    assert raised.value.code == "REQUEST_EXPIRED" and len(attempts) == 1
