"""Tool use through AnthropicChatModel and the real anthropic SDK, against the protocol-faithful
fake server: tool calls streamed as tool_use blocks, tool blocks and tools sent in the API's shape,
and the retry rule once a tool call went out."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic_server import (
    DropConnection,
    FakeAnthropic,
    MidStreamError,
    Reply,
    ToolCall,
)
from ytresearch.llm.anthropic_model import AnthropicChatModel
from ytresearch.ports import (
    ContentBlock,
    ModelError,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
    ToolCallRequested,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)

pytestmark = pytest.mark.anyio

SEARCH = ToolSpec(
    "search_transcript",
    "Find the passages of the video's transcript that match a query.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
CLIP = ToolSpec(
    "get_clip",
    "The transcript around one second of the video.",
    {"type": "object", "properties": {"start": {"type": "integer"}}, "required": ["start"]},
)
QUESTION = ModelMessage("user", [ContentBlock("What does the speaker say about solar panels?")])


def tool_request(*messages: ModelMessage, system: list[SystemBlock] | None = None) -> ModelRequest:
    return ModelRequest(
        system=system if system is not None else [SystemBlock("You answer questions about videos.")],
        messages=list(messages) or [QUESTION],
        max_tokens=512,
        tools=(SEARCH, CLIP),
    )


async def collect(model: AnthropicChatModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def calls_of(events: list[ModelEvent]) -> list[ToolCallRequested]:
    return [e for e in events if isinstance(e, ToolCallRequested)]


# ---------------------------------------------------------------- tool calls in the reply


async def test_text_then_a_tool_call_arrive_in_order(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(
        Reply(
            text="Let me search the transcript.",
            chunk_size=5,
            tool_calls=(ToolCall("search_transcript", {"query": "solar panels"}, chunk_size=4),),
        )
    )

    events = await collect(model, tool_request())

    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta"] * 6 + ["ToolCallRequested", "StreamFinished"]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me search the transcript."
    (call,) = calls_of(events)
    assert call.name == "search_transcript"
    assert call.input == {"query": "solar panels"}
    assert call.error is None
    assert call.call_id.startswith("toolu_")
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert finished.stop_reason == "tool_use"


async def test_parallel_tool_calls_keep_their_order_and_ids(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall("search_transcript", {"query": "inverter"}, id="toolu_first"),
                ToolCall("get_clip", {"start": 95}, id="toolu_second", chunk_size=3),
                ToolCall("search_transcript", {"query": "battery", "limit": [1, 2]}, id="toolu_third"),
            ),
        )
    )

    events = await collect(model, tool_request())

    assert [(c.call_id, c.name, c.input) for c in calls_of(events)] == [
        ("toolu_first", "search_transcript", {"query": "inverter"}),
        ("toolu_second", "get_clip", {"start": 95}),
        ("toolu_third", "search_transcript", {"query": "battery", "limit": [1, 2]}),
    ]
    assert not any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-1], StreamFinished)


async def test_tools_and_tool_blocks_reach_the_api_in_its_shape(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = tool_request(
        QUESTION,
        ModelMessage(
            "assistant",
            [ContentBlock("Searching."), ToolUseBlock("toolu_abc", "search_transcript", {"query": "panels"})],
        ),
        ModelMessage("user", [ToolResultBlock("toolu_abc", "no passage mentions panels", is_error=True)]),
    )

    await collect(model, request)

    body = fake.requests[0].body
    assert body["tools"] == [
        {"name": SEARCH.name, "description": SEARCH.description, "input_schema": SEARCH.input_schema},
        {"name": CLIP.name, "description": CLIP.description, "input_schema": CLIP.input_schema},
    ]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Searching."},
        {"type": "tool_use", "id": "toolu_abc", "name": "search_transcript", "input": {"query": "panels"}},
    ]
    assert body["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_abc",
            "content": "no passage mentions panels",
            "is_error": True,
        }
    ]


async def test_a_two_round_exchange_answers_the_tool_call_and_gets_the_answer(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    fake.enqueue(
        Reply(text="I will look that up.", tool_calls=(ToolCall("get_clip", {"start": 42}),)),
        Reply(text="At 0:42 the speaker says panels pay back in six years."),
    )

    first = await collect(model, tool_request())
    (call,) = calls_of(first)
    assert call.input is not None
    second = await collect(
        model,
        tool_request(
            QUESTION,
            ModelMessage(
                "assistant",
                [ContentBlock("I will look that up."), ToolUseBlock(call.call_id, call.name, call.input)],
            ),
            ModelMessage("user", [ToolResultBlock(call.call_id, '{"text": "panels pay back in six years"}')]),
        ),
    )

    assert "".join(e.text for e in second if isinstance(e, TextDelta)).startswith("At 0:42")
    finished = second[-1]
    assert isinstance(finished, StreamFinished) and finished.stop_reason == "end_turn"
    sent = fake.requests[1].body["messages"]
    assert sent[1]["content"][1]["id"] == sent[2]["content"][0]["tool_use_id"] == call.call_id


@pytest.mark.parametrize(
    ("raw_json", "expected_input", "error_says"),
    [
        ('{"query": "solar', None, "not valid JSON"),
        ('["solar", "panels"]', None, "not an object"),
        ("", {}, None),
    ],
    ids=["malformed", "not-an-object", "no-json-at-all"],
)
async def test_tool_input_that_is_not_a_json_object_is_reported_not_raised(
    fake: FakeAnthropic,
    model: AnthropicChatModel,
    raw_json: str,
    expected_input: dict[str, object] | None,
    error_says: str | None,
):
    fake.enqueue(Reply(text="", tool_calls=(ToolCall("search_transcript", raw_json=raw_json, chunk_size=5),)))

    events = await collect(model, tool_request())

    (call,) = calls_of(events)
    assert call.name == "search_transcript"
    assert call.input == expected_input
    if error_says is None:
        assert call.error is None
    else:
        assert call.error is not None and error_says in call.error
    assert isinstance(events[-1], StreamFinished)


async def test_complete_returns_the_text_and_leaves_the_tool_calls_out(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    fake.enqueue(Reply(text="Checking.", tool_calls=(ToolCall("get_clip", {"start": 1}),)))

    completion = await model.complete(tool_request())

    assert completion.text == "Checking."
    assert completion.stop_reason == "tool_use"


# ---------------------------------------------------------------- failures in the middle of a tool call


@pytest.mark.parametrize("failure", [DropConnection, MidStreamError])
async def test_a_failure_inside_the_first_tool_json_is_retried(
    fake: FakeAnthropic,
    model: AnthropicChatModel,
    sleeps: list[float],
    failure: type[DropConnection] | type[MidStreamError],
):
    call = ToolCall("search_transcript", {"query": "solar panels and batteries"}, chunk_size=6)
    fake.enqueue(
        failure(text="", tool_calls=(call,), after_tool_chunks=2),
        Reply(text="", tool_calls=(call,)),
    )

    events = await collect(model, tool_request())

    assert [(c.name, c.input) for c in calls_of(events)] == [
        ("search_transcript", {"query": "solar panels and batteries"})
    ]
    assert len(fake.requests) == 2
    assert len(sleeps) == 1


async def test_a_drop_after_a_tool_call_went_out_interrupts_without_retry(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    first = ToolCall("get_clip", {"start": 12}, chunk_size=4)
    second = ToolCall("get_clip", {"start": 640}, chunk_size=4)
    # The first call's JSON and its content_block_stop go out, then one piece of the second's.
    fake.enqueue(
        DropConnection(text="", tool_calls=(first, second), after_tool_chunks=len(first.json_chunks()) + 1),
        Reply(text="never sent"),
    )
    received: list[ModelEvent] = []

    with pytest.raises(ModelError) as caught:
        async for event in model.stream(tool_request()):
            received.append(event)

    assert caught.value.code == "MODEL_STREAM_INTERRUPTED"
    assert caught.value.retryable is True
    assert [(c.name, c.input) for c in calls_of(received)] == [("get_clip", {"start": 12})]
    assert len(fake.requests) == 1
    assert sleeps == []


async def test_a_failure_inside_a_tool_json_after_text_interrupts_without_retry(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    call = ToolCall("search_transcript", {"query": "grid"}, chunk_size=3)
    fake.enqueue(MidStreamError(text="Let me check.", tool_calls=(call,), after_tool_chunks=1))
    received: list[ModelEvent] = []

    with pytest.raises(ModelError) as caught:
        async for event in model.stream(tool_request()):
            received.append(event)

    assert caught.value.code == "MODEL_STREAM_INTERRUPTED"
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "Let me check."
    assert calls_of(received) == []
    assert len(fake.requests) == 1


# ---------------------------------------------------------------- what the API refuses


async def test_a_tool_result_answering_no_tool_use_is_a_bad_request_not_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    request = tool_request(
        QUESTION,
        ModelMessage("assistant", [ContentBlock("I know this one.")]),
        ModelMessage("user", [ToolResultBlock("toolu_nobody_asked", "a result")]),
    )

    with pytest.raises(ModelError) as caught:
        await collect(model, request)

    assert caught.value.code == "MODEL_BAD_REQUEST"
    assert caught.value.retryable is False
    assert caught.value.details["status"] == 400
    assert len(fake.requests) == 1
    assert sleeps == []


async def test_cache_marks_stay_within_four_with_tools_and_tool_blocks(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = tool_request(
        ModelMessage("user", [ContentBlock(f"transcript part {n}", cache=True) for n in range(3)]),
        ModelMessage("assistant", [ToolUseBlock("toolu_x", "get_clip", {"start": 3})]),
        ModelMessage("user", [ToolResultBlock("toolu_x", "clip text"), ContentBlock("Next?", cache=True)]),
        system=[SystemBlock("You answer questions about videos.", cache=True)],
    )

    events = await collect(model, request)

    assert isinstance(events[-1], StreamFinished)  # the API (and the fake) 400 on five or more
    body = fake.requests[0].body
    blocks = [*body["tools"], *body["system"], *(b for m in body["messages"] for b in m["content"])]
    marked = [b for b in blocks if "cache_control" in b]
    assert len(marked) == 4
    assert [b["text"] for b in marked] == [
        "transcript part 0",
        "transcript part 1",
        "transcript part 2",
        "Next?",
    ]
