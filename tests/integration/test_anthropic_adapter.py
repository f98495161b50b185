"""AnthropicChatModel through the real anthropic SDK against the protocol-faithful fake server."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator

import anyio
import pytest

from tests.fakes.anthropic_server import (
    DEFAULT_API_KEY,
    DropConnection,
    ErrorReply,
    FakeAnthropic,
    MidStreamError,
    Reply,
)
from ytresearch.llm import anthropic_model
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
)

pytestmark = pytest.mark.anyio

MAX_RETRIES = 3


def make_model(base_url: str, **overrides: object) -> AnthropicChatModel:
    options: dict[str, object] = {
        "api_key": DEFAULT_API_KEY,
        "model": "claude-test-model",
        "base_url": base_url,
        "max_retries": MAX_RETRIES,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "retry_after_max": 0.05,
        **overrides,
    }
    return AnthropicChatModel(**options)  # type: ignore[arg-type]


@pytest.fixture
async def model(fake: FakeAnthropic) -> AsyncIterator[AnthropicChatModel]:
    built = make_model(fake.base_url)
    yield built
    await built.aclose()


def chat_request(question: str = "What is the video about?", **kwargs: object) -> ModelRequest:
    return ModelRequest(
        system=[SystemBlock("You answer questions about videos.")],
        messages=[ModelMessage("user", [ContentBlock(question)])],
        max_tokens=512,
        **kwargs,  # type: ignore[arg-type]
    )


async def collect(model: AnthropicChatModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# ---------------------------------------------------------------- the happy path


async def test_streamed_text_reassembles_exactly(fake: FakeAnthropic, model: AnthropicChatModel):
    answer = "Die Sonne — 太陽 — is a star.\nSecond line, with  two spaces. ✨"
    fake.enqueue(Reply(text=answer, chunk_size=3))

    events = await collect(model, chat_request())

    deltas = [e for e in events[:-1] if isinstance(e, TextDelta)]
    assert len(deltas) == len(events) - 1 > 1
    assert text_of(events) == answer
    assert isinstance(events[-1], StreamFinished)


async def test_usage_stop_reason_and_model_are_mapped(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(
        Reply(
            text="Cut short",
            stop_reason="max_tokens",
            model="claude-served-model",
            usage={
                "input_tokens": 11,
                "output_tokens": 7,
                "cache_read_input_tokens": 5,
                "cache_creation_input_tokens": 3,
            },
        )
    )

    finished = (await collect(model, chat_request()))[-1]

    assert isinstance(finished, StreamFinished)
    assert finished.stop_reason == "max_tokens"
    assert finished.model == "claude-served-model"
    assert (
        finished.usage.input_tokens,
        finished.usage.output_tokens,
        finished.usage.cache_read_tokens,
        finished.usage.cache_creation_tokens,
    ) == (11, 7, 5, 3)


async def test_request_carries_model_max_tokens_system_and_messages(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = ModelRequest(
        system=[SystemBlock("Be brief.")],
        messages=[
            ModelMessage("user", [ContentBlock("First question")]),
            ModelMessage("assistant", [ContentBlock("First answer")]),
            ModelMessage("user", [ContentBlock("Follow-up")]),
        ],
        max_tokens=321,
    )

    await collect(model, request)

    sent = fake.requests[0]
    assert sent.stream is True
    assert sent.headers["anthropic-version"]
    assert sent.body["model"] == "claude-test-model"
    assert sent.body["max_tokens"] == 321
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert [(m["role"], m["content"][0]["text"]) for m in sent.body["messages"]] == [
        ("user", "First question"),
        ("assistant", "First answer"),
        ("user", "Follow-up"),
    ]


async def test_request_model_overrides_the_configured_model(fake: FakeAnthropic, model: AnthropicChatModel):
    await collect(model, chat_request(model="claude-other"))

    assert fake.requests[0].body["model"] == "claude-other"


async def test_complete_returns_the_whole_reply(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(Reply(text="A complete answer.", chunk_size=4))

    completion = await model.complete(chat_request())

    assert completion.text == "A complete answer."
    assert completion.stop_reason == "end_turn"
    assert completion.model == "claude-test-model"
    assert completion.usage.output_tokens > 0


async def test_many_concurrent_streams_each_get_their_own_answer(fake: FakeAnthropic):
    fake.responder = lambda body: Reply(
        text="answer to " + body["messages"][-1]["content"][0]["text"], chunk_size=5
    )
    model = make_model(fake.base_url)

    async def ask(n: int) -> str:
        return (await model.complete(chat_request(f"question {n}"))).text

    answers = await asyncio.gather(*(ask(n) for n in range(60)))

    assert answers == [f"answer to question {n}" for n in range(60)]


# ---------------------------------------------------------------- prompt caching


async def test_cache_marks_become_cache_control_on_exactly_those_blocks(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = ModelRequest(
        system=[SystemBlock("System prompt", cache=True), SystemBlock("Not cached")],
        messages=[
            ModelMessage(
                "user",
                [ContentBlock("[00:01] A long transcript", cache=True), ContentBlock("Question?")],
            )
        ],
        max_tokens=100,
    )

    await collect(model, request)

    body = fake.requests[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["system"][1]
    content = body["messages"][0]["content"]
    assert content[0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in content[1]


async def test_more_than_four_cache_marks_keep_the_last_four(fake: FakeAnthropic, model: AnthropicChatModel):
    request = ModelRequest(
        system=[SystemBlock("system one", cache=True), SystemBlock("system two", cache=True)],
        messages=[
            ModelMessage("user", [ContentBlock(f"transcript {n}", cache=True) for n in range(1, 5)]),
            ModelMessage("assistant", [ContentBlock("an answer")]),
            ModelMessage("user", [ContentBlock("a question")]),
        ],
        max_tokens=100,
    )

    events = await collect(model, request)

    assert isinstance(events[-1], StreamFinished)  # the API would 400 on five or more
    body = fake.requests[0].body
    blocks = [*body["system"], *(b for m in body["messages"] for b in m["content"])]
    marked = [b["text"] for b in blocks if "cache_control" in b]
    assert marked == ["transcript 1", "transcript 2", "transcript 3", "transcript 4"]


async def test_repeated_cached_prefix_is_read_from_the_cache(fake: FakeAnthropic, model: AnthropicChatModel):
    transcript = "[00:00] " + "The speaker explains solar power in detail. " * 40
    request = ModelRequest(
        system=[SystemBlock("You answer questions about videos.")],
        messages=[ModelMessage("user", [ContentBlock(transcript, cache=True), ContentBlock("Q1?")])],
        max_tokens=100,
    )

    first = await model.complete(request)
    second = await model.complete(request)

    assert first.usage.cache_creation_tokens > 0
    assert first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_creation_tokens
    assert second.usage.cache_creation_tokens == 0


# ---------------------------------------------------------------- retries before the first token


async def test_rate_limited_then_success_is_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(ErrorReply(status=429, retry_after=0), Reply(text="after the limit"))

    events = await collect(model, chat_request())

    assert text_of(events) == "after the limit"
    assert len(fake.requests) == 2
    assert len(sleeps) == 1


async def test_retry_after_is_obeyed(fake: FakeAnthropic, sleeps: list[float]):
    model = make_model(fake.base_url, retry_after_max=30.0)
    fake.enqueue(ErrorReply(status=429, retry_after=7), Reply(text="ok"))

    await collect(model, chat_request())

    assert sleeps == [7.0]


async def test_retry_after_is_capped(fake: FakeAnthropic, sleeps: list[float]):
    model = make_model(fake.base_url, retry_after_max=2.5)
    fake.enqueue(ErrorReply(status=429, retry_after=3600), Reply(text="ok"))

    await collect(model, chat_request())

    assert sleeps == [2.5]


async def test_backoff_is_exponential_with_full_jitter(fake: FakeAnthropic, sleeps: list[float]):
    model = make_model(fake.base_url, backoff_base=1.0, backoff_max=3.0)
    fake.enqueue(ErrorReply(500), ErrorReply(500), ErrorReply(500), Reply(text="ok"))

    await collect(model, chat_request())

    assert len(sleeps) == 3
    for retry, delay in enumerate(sleeps):
        assert 0 <= delay <= min(3.0, 1.0 * 2**retry)


async def test_overloaded_529_then_success_is_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(ErrorReply(status=529), Reply(text="capacity is back"))

    events = await collect(model, chat_request())

    assert text_of(events) == "capacity is back"
    assert len(fake.requests) == 2


async def test_server_errors_beyond_the_retry_budget_raise_unavailable(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(*[ErrorReply(status=500) for _ in range(MAX_RETRIES + 1)], Reply(text="never"))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_UNREACHABLE"
    assert caught.value.retryable is True
    assert caught.value.details["attempts"] == MAX_RETRIES + 1
    assert len(fake.requests) == MAX_RETRIES + 1
    assert fake.pending == 1


async def test_persistent_rate_limit_raises_rate_limited_with_retry_after(
    fake: FakeAnthropic, sleeps: list[float]
):
    model = make_model(fake.base_url, max_retries=1)
    fake.enqueue(ErrorReply(status=429, retry_after=4), ErrorReply(status=429, retry_after=4))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_RATE_LIMITED"
    assert caught.value.details["retry_after"] == 4


async def test_persistent_overload_raises_overloaded(fake: FakeAnthropic, sleeps: list[float]):
    model = make_model(fake.base_url, max_retries=0)
    fake.enqueue(ErrorReply(status=529))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_OVERLOADED"


async def test_server_saying_do_not_retry_is_obeyed(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(ErrorReply(status=500, should_retry=False), Reply(text="never"))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_UNREACHABLE"
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


async def test_mid_stream_overload_before_any_text_is_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(MidStreamError(after_chunks=0), Reply(text="second time lucky"))

    events = await collect(model, chat_request())

    assert text_of(events) == "second time lucky"
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("error_type", "code", "attempts"),
    [
        ("api_error", None, 2),
        ("some_new_error", None, 2),
        ("invalid_request_error", "MODEL_BAD_REQUEST", 1),
        ("not_found_error", "MODEL_UNAVAILABLE", 1),
    ],
)
async def test_mid_stream_error_types_before_text(
    fake: FakeAnthropic,
    model: AnthropicChatModel,
    sleeps: list[float],
    error_type: str,
    code: str | None,
    attempts: int,
):
    fake.enqueue(MidStreamError(after_chunks=0, error_type=error_type), Reply(text="retried"))

    if code is None:
        assert text_of(await collect(model, chat_request())) == "retried"
    else:
        with pytest.raises(ModelError) as caught:
            await collect(model, chat_request())
        assert caught.value.code == code
    assert len(fake.requests) == attempts


async def test_dropped_connection_before_any_text_is_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(DropConnection(after_chunks=0), Reply(text="reconnected"))

    events = await collect(model, chat_request())

    assert text_of(events) == "reconnected"
    assert len(fake.requests) == 2


async def test_connection_refused_raises_unavailable_after_retries(sleeps: list[float]):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = make_model(f"http://127.0.0.1:{port}", max_retries=1)

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_UNREACHABLE"
    assert caught.value.details["attempts"] == 2


async def test_read_timeout_raises_model_timeout(fake: FakeAnthropic):
    model = make_model(fake.base_url, max_retries=0, timeout_seconds=0.2)
    fake.enqueue(Reply(text="too late", delay_first=30))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_TIMEOUT"
    assert caught.value.retryable is True


# ---------------------------------------------------------------- errors that are not retried


async def test_wrong_api_key_fails_auth_without_retry(fake: FakeAnthropic, sleeps: list[float]):
    model = make_model(fake.base_url, api_key="sk-ant-wrong")

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_AUTH_FAILED"
    assert caught.value.retryable is False
    assert len(fake.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 413])
async def test_bad_request_is_not_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float], status: int
):
    fake.enqueue(ErrorReply(status=status), Reply(text="never"))

    with pytest.raises(ModelError) as caught:
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_BAD_REQUEST"
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


async def test_a_model_the_api_does_not_know_is_model_not_found_without_retry(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float], caplog: pytest.LogCaptureFixture
):
    # What the API answers for a retired or misspelt model id.
    fake.enqueue(ErrorReply(status=404, message="model: claude-test-model"), Reply(text="never"))

    with (
        caplog.at_level(logging.WARNING, logger=anthropic_model.__name__),
        pytest.raises(ModelError) as caught,
    ):
        await collect(model, chat_request())

    assert caught.value.code == "MODEL_UNAVAILABLE"
    assert caught.value.retryable is False
    assert caught.value.details == {"attempts": 1, "status": 404, "provider_error": "not_found_error"}
    assert len(fake.requests) == 1 and sleeps == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "does not know the model claude-test-model" in warnings[0]


# ---------------------------------------------------------------- failures after the first token


async def test_dropped_connection_after_text_interrupts_and_keeps_the_partial_text(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(DropConnection(after_chunks=3, text="abcdefghijklmnopqrstuvwxyz", chunk_size=4))
    received: list[str] = []

    with pytest.raises(ModelError) as caught:
        async for event in model.stream(chat_request()):
            assert isinstance(event, TextDelta)
            received.append(event.text)

    assert caught.value.code == "MODEL_STREAM_INTERRUPTED"
    assert caught.value.retryable is True
    assert "".join(received) == "abcdefghijkl"
    assert len(fake.requests) == 1


async def test_mid_stream_error_after_text_interrupts_without_retry(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(MidStreamError(after_chunks=2, text="partial answer here", chunk_size=5))
    received: list[str] = []

    with pytest.raises(ModelError) as caught:
        async for event in model.stream(chat_request()):
            assert isinstance(event, TextDelta)
            received.append(event.text)

    assert caught.value.code == "MODEL_STREAM_INTERRUPTED"
    assert "".join(received) == "partial an"
    assert len(fake.requests) == 1


async def test_complete_starts_an_interrupted_reply_again(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(DropConnection(after_chunks=2), Reply(text="the whole answer"))

    completion = await model.complete(chat_request())

    assert completion.text == "the whole answer"
    assert len(fake.requests) == 2


# ---------------------------------------------------------------- closing the stream


async def test_aclose_mid_stream_closes_the_upstream_connection(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    fake.enqueue(Reply(text="word " * 2000, chunk_size=5, delay_per_chunk=0.01))
    stream = model.stream(chat_request())

    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()

    assert await fake.wait_for_disconnect_async(within=10)
    assert [index for index, _ in fake.disconnects] == [0]
    assert fake.completed_streams == []


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    fake.enqueue(Reply(text="word " * 2000, chunk_size=5, delay_per_chunk=0.01))
    got_text = anyio.Event()

    async def consume() -> None:
        async for event in model.stream(chat_request()):
            if isinstance(event, TextDelta):
                got_text.set()

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await got_text.wait()
        group.cancel_scope.cancel()

    assert await fake.wait_for_disconnect_async(within=10)
    assert [index for index, _ in fake.disconnects] == [0]


async def test_a_finished_stream_is_not_recorded_as_a_disconnect(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    await collect(model, chat_request())

    assert fake.completed_streams == [0]
    assert fake.disconnects == []


# ---------------------------------------------------------------- event loops


def test_one_model_serves_successive_event_loops(fake: FakeAnthropic):
    # The ingest Lambda runs each summary in its own asyncio.run(); pooled connections from a
    # finished loop must not be reused (or closed) from the next one.
    model = make_model(fake.base_url)
    fake.enqueue(Reply(text="first loop"), Reply(text="second loop"))

    first = asyncio.run(model.complete(chat_request()))
    gc.collect()
    second = asyncio.run(model.complete(chat_request()))

    assert (first.text, second.text) == ("first loop", "second loop")
