"""The fake Anthropic server's wire format, read with a plain HTTP client (no SDK), so the
adapter tests drive the SDK against what the real API sends."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_server import (
    DEFAULT_API_KEY,
    Cited,
    DropConnection,
    ErrorReply,
    FakeAnthropic,
    MidStreamError,
    Reply,
    ToolCall,
    estimate_tokens,
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


# ---------------------------------------------------------------- tool use

TOOL = {
    "name": "search_transcript",
    "description": "Find passages of the transcript.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def post(fake: FakeAnthropic, **extra: Any) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/v1/messages", json=body(**extra), headers=HEADERS)


def test_tool_calls_stream_as_tool_use_blocks_after_the_text(fake: FakeAnthropic):
    call = ToolCall("search_transcript", {"query": "solar panels"}, chunk_size=5)
    fake.enqueue(Reply(text="Looking", chunk_size=4, tool_calls=(call, ToolCall("search_transcript"))))

    response = post(fake, tools=[TOOL])

    events = sse_events(response.content)
    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        *[("content_block_delta", 1)] * len(call.json_chunks()),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    for start in starts[1:]:
        assert set(start) == {"type", "id", "name", "input"}
        assert start["type"] == "tool_use" and start["name"] == "search_transcript" and start["input"] == {}
        assert re.fullmatch(r"toolu_[0-9a-f]{24}", start["id"])
    assert starts[1]["id"] != starts[2]["id"]
    json_deltas = [
        data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 1
    ]
    assert {d["type"] for d in json_deltas} == {"input_json_delta"}
    assert json.loads("".join(d["partial_json"] for d in json_deltas)) == {"query": "solar panels"}
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    written = "Looking" + json.dumps({"query": "solar panels"}) + "{}"
    assert final["usage"]["output_tokens"] == estimate_tokens(written)


def test_a_reply_with_only_a_tool_call_starts_with_the_tool_use_block(fake: FakeAnthropic):
    fake.enqueue(Reply(text="", tool_calls=(ToolCall("search_transcript", {"query": "x"}, id="toolu_mine"),)))

    events = sse_events(post(fake, tools=[TOOL]).content)

    assert [name for name, _ in events][:3] == ["message_start", "content_block_start", "ping"]
    assert events[1][1]["index"] == 0
    assert events[1][1]["content_block"]["id"] == "toolu_mine"


def test_non_streaming_reply_carries_tool_use_blocks(fake: FakeAnthropic):
    fake.enqueue(
        Reply(text="Looking", tool_calls=(ToolCall("search_transcript", {"query": "q"}, id="toolu_1"),))
    )

    message = post(fake, stream=False, tools=[TOOL]).json()

    assert message["content"] == [
        {"type": "text", "text": "Looking"},
        {"type": "tool_use", "id": "toolu_1", "name": "search_transcript", "input": {"query": "q"}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_max_tokens_can_cut_a_tool_call_short(fake: FakeAnthropic):
    fake.enqueue(Reply(text="abcd", tool_calls=(ToolCall("search_transcript", {"query": "a long query"}),)))

    events = sse_events(post(fake, tools=[TOOL], max_tokens=3).content)

    partial = "".join(
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    )
    assert partial == json.dumps({"query": "a long query"})[:8]
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_a_drop_in_the_middle_of_a_tool_call_really_drops(fake: FakeAnthropic):
    fake.enqueue(
        DropConnection(
            text="", tool_calls=(ToolCall("search_transcript", {"query": "q"}),), after_tool_chunks=1
        )
    )

    with pytest.raises(httpx.RemoteProtocolError):
        post(fake, tools=[TOOL])


def test_a_mid_stream_error_can_come_in_the_middle_of_a_tool_call(fake: FakeAnthropic):
    call = ToolCall("search_transcript", {"query": "solar panels"}, chunk_size=4)
    fake.enqueue(MidStreamError(text="Hi", tool_calls=(call,), after_tool_chunks=2))

    events = sse_events(post(fake, tools=[TOOL]).content)

    assert [name for name, _ in events][-5:] == [
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "error",
    ]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert [d.get("text") for d in deltas if d["type"] == "text_delta"] == ["Hi"]
    assert [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"] == call.json_chunks()[:2]


def _tool_exchange(result: dict[str, Any] | None = None, **use: Any) -> list[dict[str, Any]]:
    tool_use = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "search_transcript",
        "input": {"query": "q"},
        **use,
    }
    tool_result = (
        result if result is not None else {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}
    )
    return [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}, tool_use]},
        {"role": "user", "content": [tool_result, {"type": "text", "text": "And?"}]},
    ]


@pytest.mark.parametrize(
    "result",
    [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found it"},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "found it"}]},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "", "is_error": False},
        {"type": "tool_result", "tool_use_id": "toolu_1"},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "failed", "is_error": True},
    ],
    ids=["string", "text-blocks", "empty", "no-content", "error"],
)
def test_a_tool_use_answered_in_the_next_message_is_accepted(fake: FakeAnthropic, result: dict[str, Any]):
    response = post(fake, stream=False, tools=[TOOL], messages=_tool_exchange(result))

    assert response.status_code == 200, response.text


def _with_tools(*tools: Any) -> dict[str, Any]:
    return {"tools": list(tools)}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            _with_tools({**TOOL, "name": "search transcript"}),
            "tools.0.custom.name: String should match pattern",
        ),
        (_with_tools({**TOOL, "name": "x" * 65}), "tools.0.custom.name: String should match pattern"),
        (_with_tools(TOOL, {**TOOL, "description": "again"}), "tools: Tool names must be unique."),
        (_with_tools({**TOOL, "input_schema": {"type": "string"}}), "tools.0.custom.input_schema.type"),
        (_with_tools({k: v for k, v in TOOL.items() if k != "input_schema"}), "input_schema: Field required"),
        (
            _with_tools({**TOOL, "description": 7}),
            "tools.0.custom.description: Input should be a valid string",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "n", "input": {}}],
                    }
                ],
            },
            "messages.0.content.0: `tool_use` blocks can only be in `assistant` messages",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
                ],
            },
            "messages.1.content.0: `tool_result` blocks can only be in `user` messages",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    *_tool_exchange()[:2],
                    {"role": "user", "content": [{"type": "text", "text": "Never mind."}]},
                ],
            },
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1.",
        ),
        (
            {"tools": [TOOL], "messages": _tool_exchange()[:2]},
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    *_tool_exchange()[:2],
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Here:"},
                            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"},
                        ],
                    },
                ],
            },
            "`tool_use` ids were found without `tool_result` blocks immediately after",
        ),
        (
            {"tools": [TOOL], "messages": _tool_exchange({"type": "tool_result", "tool_use_id": "toolu_2"})},
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_2.",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "I know."},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
                ],
            },
            "unexpected `tool_use_id` found in `tool_result` blocks: toolu_1",
        ),
        (
            {
                "tools": [TOOL],
                "messages": _tool_exchange(
                    {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True}
                ),
            },
            "content cannot be empty if `is_error` is true",
        ),
        (
            {"tools": [TOOL], "messages": _tool_exchange(input="not an object")},
            "messages.1.content.1.tool_use.input: Input should be a valid dictionary",
        ),
        ({"messages": _tool_exchange()}, "blocks must define tools"),
        (
            {
                "tools": [TOOL],
                "messages": [
                    *_tool_exchange()[:2],
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"},
                            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r again"},
                        ],
                    },
                ],
            },
            "messages.2.content.1: each tool_use must have a single result",
        ),
    ],
    ids=[
        "name-with-space",
        "name-too-long",
        "duplicate-names",
        "schema-not-object",
        "no-schema",
        "description-not-string",
        "tool-use-from-user",
        "tool-result-from-assistant",
        "tool-use-unanswered",
        "tool-use-last",
        "text-before-result",
        "result-for-another-id",
        "result-without-tool-use",
        "empty-error-result",
        "input-not-object",
        "no-tools-defined",
        "two-results-for-one-call",
    ],
)
def test_tool_rules_are_enforced_like_the_api(fake: FakeAnthropic, extra: dict[str, Any], says: str):
    response = post(fake, stream=False, **extra)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]
    assert fake.pending == 0 and fake.requests[0].behaviour is None  # rejected before answering


def test_tool_definitions_are_the_start_of_the_cached_prefix(fake: FakeAnthropic):
    system = [{"type": "text", "text": "x" * 400, "cache_control": {"type": "ephemeral"}}]
    tool_tokens = estimate_tokens(json.dumps(TOOL, sort_keys=True))

    first = post(fake, stream=False, system=system, tools=[TOOL]).json()["usage"]
    again = post(fake, stream=False, system=system, tools=[TOOL]).json()["usage"]
    other_tools = post(fake, stream=False, system=system, tools=[{**TOOL, "name": "other"}]).json()["usage"]

    assert first["cache_creation_input_tokens"] == tool_tokens + 100
    assert again["cache_read_input_tokens"] == tool_tokens + 100
    assert other_tools["cache_read_input_tokens"] == 0  # a changed tool changes the whole prefix
    assert other_tools["cache_creation_input_tokens"] > 0


def test_count_tokens_includes_tools_and_tool_blocks(fake: FakeAnthropic):
    messages = _tool_exchange()
    without_tools = httpx.post(
        f"{fake.base_url}/v1/messages/count_tokens",
        json={"model": "claude-test", "messages": [{"role": "user", "content": "Hello"}]},
        headers=HEADERS,
    ).json()["input_tokens"]
    with_tools = httpx.post(
        f"{fake.base_url}/v1/messages/count_tokens",
        json={"model": "claude-test", "messages": messages, "tools": [TOOL]},
        headers=HEADERS,
    ).json()["input_tokens"]

    assert with_tools > without_tools + estimate_tokens(json.dumps(TOOL, sort_keys=True))


# ---------------------------------------------------------------- documents and citations

PARTS = ["[0:00] Solar panels got cheap. ", "[0:30] Storage is next. ", "[1:00] Grids must adapt."]


def document(parts: list[str] | None = None, *, title: Any = "Energy talk", **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": p} for p in parts or PARTS]},
        "citations": {"enabled": True},
        **extra,
    }
    if title is not None:
        block["title"] = title
    return block


def ask(*blocks: dict[str, Any], question: str = "What is said about solar?") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": question}]}]}


def deltas_of(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    return [(data["index"], data["delta"]) for name, data in events if name == "content_block_delta"]


def test_a_cited_piece_streams_as_its_own_block_with_the_citation_first(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("The talk says "), Cited("panels got cheap.", 0, start=0)), chunk_size=6))

    events = sse_events(post(fake, **ask(document())).content)

    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        *[("content_block_delta", 0)] * 3,
        ("content_block_stop", 0),
        ("content_block_start", 1),
        *[("content_block_delta", 1)] * 4,
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    block_one = [delta for index, delta in deltas_of(events) if index == 1]
    assert block_one[0] == {
        "type": "citations_delta",
        "citation": {
            "type": "content_block_location",
            "cited_text": PARTS[0],
            "document_index": 0,
            "document_title": "Energy talk",
            "start_block_index": 0,
            "end_block_index": 1,
        },
    }
    assert {d["type"] for d in block_one[1:]} == {"text_delta"}
    assert "".join(d["text"] for d in block_one[1:]) == "panels got cheap."
    assert all(d["type"] == "text_delta" for index, d in deltas_of(events) if index == 0)


def test_a_citation_over_several_parts_quotes_them_joined_exactly(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("Cheaper panels, then storage.", 0, start=0, end=2),)))

    events = sse_events(post(fake, **ask(document(title=None))).content)

    citation = deltas_of(events)[0][1]["citation"]
    assert citation["cited_text"] == PARTS[0] + PARTS[1]
    assert (citation["start_block_index"], citation["end_block_index"]) == (0, 2)
    assert citation["document_title"] is None


def test_documents_are_counted_over_all_messages(fake: FakeAnthropic):
    later = document(["Wind is steady offshore."], title="Wind talk")
    messages = [
        {"role": "user", "content": [document(), {"type": "text", "text": "Solar?"}]},
        {"role": "assistant", "content": "Solar got cheap."},
        {"role": "user", "content": [later, {"type": "text", "text": "And wind?"}]},
    ]
    fake.enqueue(Reply(cited=(Cited("Steady offshore.", 1), Cited("Storage next.", 0, start=1))))

    message = post(fake, stream=False, messages=messages).json()

    assert message["content"] == [
        {
            "type": "text",
            "text": "Steady offshore.",
            "citations": [
                {
                    "type": "content_block_location",
                    "cited_text": "Wind is steady offshore.",
                    "document_index": 1,
                    "document_title": "Wind talk",
                    "start_block_index": 0,
                    "end_block_index": 1,
                }
            ],
        },
        {
            "type": "text",
            "text": "Storage next.",
            "citations": [
                {
                    "type": "content_block_location",
                    "cited_text": PARTS[1],
                    "document_index": 0,
                    "document_title": "Energy talk",
                    "start_block_index": 1,
                    "end_block_index": 2,
                }
            ],
        },
    ]
    assert message["usage"]["output_tokens"] == estimate_tokens("Steady offshore.Storage next.")


def test_a_citation_outside_the_documents_is_sent_as_scripted(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("Made up.", 3, start=5, end=7), Cited("Too far.", 0, start=2, end=9))))

    citations = [b["citations"][0] for b in post(fake, stream=False, **ask(document())).json()["content"]]

    assert citations[0] == {
        "type": "content_block_location",
        "cited_text": "",
        "document_index": 3,
        "document_title": None,
        "start_block_index": 5,
        "end_block_index": 7,
    }
    assert (citations[1]["cited_text"], citations[1]["end_block_index"]) == (PARTS[2], 9)


def test_a_plain_text_document_is_cited_by_characters_of_its_sentences(fake: FakeAnthropic):
    plain = {
        "type": "document",
        "source": {
            "type": "text",
            "media_type": "text/plain",
            "data": "The grass is green. The sky is blue.",
        },
        "citations": {"enabled": True},
    }
    fake.enqueue(Reply(cited=(Cited("The sky is blue.", 0, start=1),)))

    message = post(fake, stream=False, **ask(plain)).json()

    assert message["content"][0]["citations"] == [
        {
            "type": "char_location",
            "cited_text": "The sky is blue.",
            "document_index": 0,
            "document_title": None,
            "start_char_index": 20,
            "end_char_index": 36,
        }
    ]


def test_a_default_reply_to_a_request_with_documents_is_plain_text(fake: FakeAnthropic):
    message = post(fake, stream=False, **ask(document(), question="Tell me.")).json()

    assert message["content"] == [{"type": "text", "text": "This is the fake Claude answering: Tell me."}]


def test_max_tokens_cuts_across_cited_pieces(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("abcd"), Cited("efghij", 0), Cited("never", 0, start=1))))

    message = post(fake, stream=False, max_tokens=2, **ask(document())).json()

    assert [(b["text"], len(b.get("citations", []))) for b in message["content"]] == [
        ("abcd", 0),
        ("efgh", 1),
    ]
    assert message["stop_reason"] == "max_tokens"


def test_a_drop_right_after_a_citation_sends_the_citation_first(fake: FakeAnthropic):
    fake.enqueue(DropConnection(cited=(Cited("Cut off.", 0),), after_chunks=0))

    with httpx.stream(
        "POST", f"{fake.base_url}/v1/messages", json=body(**ask(document())), headers=HEADERS
    ) as r:
        raw = b""
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in r.iter_bytes():
                raw += chunk

    deltas = deltas_of(sse_events(raw))
    assert [d["type"] for _, d in deltas] == ["citations_delta"]


def test_document_text_and_context_count_as_input_and_can_be_cached(fake: FakeAnthropic):
    cached = document(["x" * 400], title="t" * 40, context="c" * 80, cache_control={"type": "ephemeral"})
    plain = ask(question="Hi")

    bare = post(fake, stream=False, **plain).json()["usage"]
    first = post(fake, stream=False, **ask(cached, question="Hi")).json()["usage"]
    again = post(fake, stream=False, **ask(cached, question="Hi")).json()["usage"]

    document_tokens = estimate_tokens("t" * 40 + "\n" + "c" * 80 + "\n" + "x" * 400)
    assert first["cache_creation_input_tokens"] == document_tokens
    assert first["input_tokens"] == bare["input_tokens"]
    assert again["cache_read_input_tokens"] == document_tokens


def _documents_in(*contents: list[dict[str, Any]]) -> dict[str, Any]:
    roles = ["user", "assistant"]
    return {"messages": [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]}


QUESTION_BLOCK = {"type": "text", "text": "Question?"}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            _documents_in([QUESTION_BLOCK], [document()], [QUESTION_BLOCK]),
            "messages.1.content.0: `document` blocks can only be in `user` messages",
        ),
        (
            ask(document(), document(citations={"enabled": False})),
            "all or none of the documents in a request must have citations enabled",
        ),
        (
            ask(document(), {k: v for k, v in document().items() if k != "citations"}),
            "all or none of the documents in a request must have citations enabled",
        ),
        (ask(document(source={"type": "content", "content": []})), "document.source.content"),
        (ask(document([" "])), "source.content.0: text content blocks must contain non-whitespace text"),
        (
            ask(document(source={"type": "base64", "media_type": "application/pdf", "data": "JVBE"})),
            "supports content and text (plain-text) documents only",
        ),
        (ask(document(title=7)), "document.title: Input should be a valid string"),
        (ask(document(context=["x"])), "document.context: Input should be a valid string"),
        (ask({"type": "document", "citations": {"enabled": True}}), "document.source: Field required"),
    ],
    ids=[
        "in-assistant-message",
        "mixed-citations",
        "citations-missing-on-one",
        "empty-content",
        "blank-part",
        "pdf-source",
        "title-not-string",
        "context-not-string",
        "no-source",
    ],
)
def test_document_rules_are_enforced_like_the_api(fake: FakeAnthropic, extra: dict[str, Any], says: str):
    response = post(fake, stream=False, **extra)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]
    assert fake.requests[0].behaviour is None  # rejected before answering


def test_documents_without_citations_are_accepted(fake: FakeAnthropic):
    response = post(
        fake, stream=False, **ask(document(citations={"enabled": False}), document(citations=None))
    )

    assert response.status_code == 200, response.text


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
