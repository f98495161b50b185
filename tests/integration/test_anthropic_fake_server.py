"""The fake Anthropic server's wire format, read with a plain HTTP client (no SDK), so the
adapter tests drive the SDK against what the real API sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_server import (
    DEFAULT_API_KEY,
    DropConnection,
    ErrorReply,
    FakeAnthropic,
    MidStreamError,
    Reply,
)
from ytr.sse import SSEParser, parse

pytestmark = pytest.mark.anyio

HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
def fake(fake_claude: FakeAnthropic) -> FakeAnthropic:
    """The shared fake server (tests/conftest.py), emptied for this test."""
    return fake_claude


def body(*, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": stream,
        **extra,
    }


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(event.event, event.json()) for event in parse([raw])]


def test_stream_sends_the_real_event_sequence(fake: FakeAnthropic):
    fake.enqueue(Reply(text="Hello world", chunk_size=4))

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers=HEADERS)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    message = events[0][1]["message"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["id"].startswith("msg_") and message["model"] == "claude-test"
    assert message["content"] == [] and message["stop_reason"] is None
    assert {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    } <= set(message["usage"])
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["text_delta"] * 3
    assert "".join(d["text"] for d in deltas) == "Hello world"
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] > 0


def test_non_streaming_returns_one_message_object(fake: FakeAnthropic):
    fake.enqueue(Reply(text="Whole answer"))

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(stream=False), headers=HEADERS)

    message = response.json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "Whole answer"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] > 0


def test_bearer_authorization_is_accepted_like_anthropic_2x_sends_it(fake: FakeAnthropic):
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}", "anthropic-version": "2023-06-01"}

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(stream=False), headers=headers)

    assert response.status_code == 200


def test_wrong_key_is_401_authentication_error(fake: FakeAnthropic):
    response = httpx.post(
        f"{fake.base_url}/v1/messages",
        json=body(),
        headers={**HEADERS, "x-api-key": "sk-ant-wrong"},
    )

    assert response.status_code == 401
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "authentication_error"
    assert fake.pending == 0  # nothing scripted was consumed


def test_missing_version_header_is_rejected(fake: FakeAnthropic):
    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers={"x-api-key": DEFAULT_API_KEY})

    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "rate_limit_error"), (529, "overloaded_error"), (500, "api_error"), (400, None)],
)
def test_scripted_errors_have_the_api_shape(fake: FakeAnthropic, status: int, error_type: str | None):
    fake.enqueue(ErrorReply(status=status, retry_after=3 if status == 429 else None))

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers=HEADERS)

    assert response.status_code == status
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == (error_type or "invalid_request_error")
    assert payload["error"]["message"]
    if status == 429:
        assert response.headers["retry-after"] == "3"


def test_mid_stream_error_is_an_error_event_on_a_200_stream(fake: FakeAnthropic):
    fake.enqueue(MidStreamError(after_chunks=2, text="abcdefgh", chunk_size=2))

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers=HEADERS)

    assert response.status_code == 200
    events = sse_events(response.content)
    assert [name for name, _ in events][-3:] == [
        "content_block_delta",
        "content_block_delta",
        "error",
    ]
    assert events[-1][1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_drop_connection_really_drops_the_connection(fake: FakeAnthropic):
    fake.enqueue(DropConnection(after_chunks=1))

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers=HEADERS)


def test_more_than_four_cache_breakpoints_are_rejected_like_the_api(fake: FakeAnthropic):
    blocks = [
        {"type": "text", "text": f"block {n}", "cache_control": {"type": "ephemeral"}} for n in range(5)
    ]

    response = httpx.post(
        f"{fake.base_url}/v1/messages",
        json=body(messages=[{"role": "user", "content": blocks}]),
        headers=HEADERS,
    )

    assert response.status_code == 400
    assert "maximum of 4" in response.json()["error"]["message"]


def test_blank_text_blocks_are_rejected_like_the_api(fake: FakeAnthropic):
    response = httpx.post(
        f"{fake.base_url}/v1/messages",
        json=body(messages=[{"role": "user", "content": [{"type": "text", "text": " "}]}]),
        headers=HEADERS,
    )

    assert response.status_code == 400


def test_prompt_cache_is_created_then_read(fake: FakeAnthropic):
    system = [{"type": "text", "text": "x" * 4000, "cache_control": {"type": "ephemeral"}}]
    request = body(stream=False, system=system)

    first = httpx.post(f"{fake.base_url}/v1/messages", json=request, headers=HEADERS).json()
    second = httpx.post(f"{fake.base_url}/v1/messages", json=request, headers=HEADERS).json()

    assert first["usage"]["cache_creation_input_tokens"] == 1000
    assert first["usage"]["cache_read_input_tokens"] == 0
    assert second["usage"]["cache_creation_input_tokens"] == 0
    assert second["usage"]["cache_read_input_tokens"] == 1000


def test_max_tokens_is_honoured(fake: FakeAnthropic):
    fake.enqueue(Reply(text="y" * 100))

    response = httpx.post(
        f"{fake.base_url}/v1/messages", json=body(stream=False, max_tokens=5), headers=HEADERS
    )

    message = response.json()
    assert message["content"][0]["text"] == "y" * 20
    assert message["stop_reason"] == "max_tokens"


def test_responder_answers_from_the_request(fake: FakeAnthropic):
    fake.responder = lambda request: Reply(text=f"model was {request['model']}")

    response = httpx.post(f"{fake.base_url}/v1/messages", json=body(stream=False), headers=HEADERS)

    assert response.json()["content"][0]["text"] == "model was claude-test"


def test_requests_are_recorded_with_headers_and_body(fake: FakeAnthropic):
    httpx.post(f"{fake.base_url}/v1/messages", json=body(), headers=HEADERS)

    (recorded,) = fake.requests
    assert recorded.path == "/v1/messages"
    assert recorded.headers["x-api-key"] == DEFAULT_API_KEY
    assert recorded.body["messages"] == [{"role": "user", "content": "Hello"}]
    assert recorded.stream is True


async def test_hundreds_of_concurrent_streams_and_their_disconnects(fake: FakeAnthropic):
    streams = 300
    # Each stream sends message_start at once, then waits before its first text: all of them are
    # open at the same time, deterministically.
    fake.responder = lambda request: Reply(text="never sent", delay_first=60)
    limits = httpx.Limits(max_connections=streams + 10)

    async with httpx.AsyncClient(base_url=fake.base_url, limits=limits, timeout=30) as client:

        async def open_stream() -> tuple[httpx.Response, AsyncIterator[bytes]]:
            request = client.build_request("POST", "/v1/messages", json=body(), headers=HEADERS)
            response = await client.send(request, stream=True)
            # Keep the byte iterator referenced: a dropped, half-read iterator is finalised by
            # the garbage collector, which closes its connection at a random moment.
            chunks, parser = response.aiter_bytes(), SSEParser()
            while not any(event.event == "message_start" for event in parser.feed(await anext(chunks))):
                pass
            return response, chunks

        opened = await asyncio.gather(*(open_stream() for _ in range(streams)))
        assert fake.active_streams == streams
        await asyncio.gather(*(response.aclose() for response, _ in opened))

    deadline = asyncio.get_running_loop().time() + 20
    while len(fake.disconnects) < streams and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert sorted(index for index, _ in fake.disconnects) == list(range(streams))
    assert fake.max_active_streams == streams
