"""Citations through AnthropicChatModel and the real anthropic SDK, against the protocol-faithful
fake server: documents sent as custom-content documents, ``citations_delta`` events read back as
``CitationDelta`` before the text they support, and the retry rule once a citation went out."""

from __future__ import annotations

import logging

import anthropic
import pytest

from tests.fakes.anthropic_server import DEFAULT_API_KEY, Cited, DropConnection, FakeAnthropic, Reply
from ytresearch.llm import anthropic_citations
from ytresearch.llm.anthropic_model import AnthropicChatModel, build_messages_params
from ytresearch.ports import (
    CitationDelta,
    ContentBlock,
    DocumentBlock,
    ModelError,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
)

pytestmark = pytest.mark.anyio

SOLAR = DocumentBlock(
    title="Solar power explained",
    parts=(
        "[0:00] Solar panels got ten times cheaper in a decade.",
        "[0:30] Most of the cost now is installation.",
        "[1:00] Batteries are the next thing to get cheap.",
    ),
    context="A 12-minute explainer by an energy analyst.",
)
WIND = DocumentBlock(
    title="Offshore wind",
    parts=("[0:00] Offshore wind blows steadier than onshore.", "[0:20] Turbines now pass 15 MW."),
)


def ask(*documents: DocumentBlock, question: str = "What does the video say about cost?") -> ModelRequest:
    return ModelRequest(
        system=[SystemBlock("You answer questions about videos; cite them.")],
        messages=[ModelMessage("user", [*documents, ContentBlock(question)])],
        max_tokens=512,
    )


async def collect(model: AnthropicChatModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def shape(events: list[ModelEvent]) -> list[str]:
    """The event kinds in order, with consecutive text deltas folded into one "text"."""
    kinds: list[str] = []
    for event in events:
        kind = {TextDelta: "text", CitationDelta: "citation", StreamFinished: "finished"}[type(event)]
        if kind != "text" or not kinds or kinds[-1] != "text":
            kinds.append(kind)
    return kinds


# ---------------------------------------------------------------- documents in the request


async def test_documents_reach_the_api_as_custom_content_documents(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = ask(SOLAR, DocumentBlock("Offshore wind", WIND.parts, cache=True))

    await collect(model, request)

    (sent,) = fake.message_requests
    content = sent.body["messages"][0]["content"]
    assert content[0] == {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": p} for p in SOLAR.parts]},
        "citations": {"enabled": True},
        "title": "Solar power explained",
        "context": "A 12-minute explainer by an energy analyst.",
    }
    assert content[1] == {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": p} for p in WIND.parts]},
        "citations": {"enabled": True},
        "title": "Offshore wind",
        "cache_control": {"type": "ephemeral"},
    }
    assert content[2] == {"type": "text", "text": "What does the video say about cost?"}


async def test_a_cached_document_is_a_cache_breakpoint_the_api_honours(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    request = ask(DocumentBlock(SOLAR.title, SOLAR.parts, SOLAR.context, cache=True))

    first = await collect(model, request)
    again = await collect(model, request)

    assert isinstance(first[-1], StreamFinished) and isinstance(again[-1], StreamFinished)
    assert first[-1].usage.cache_creation_tokens > 0
    assert again[-1].usage.cache_read_tokens == first[-1].usage.cache_creation_tokens


# ---------------------------------------------------------------- citations in the reply


async def test_a_citation_comes_before_the_text_it_supports(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(
        Reply(
            cited=(
                Cited("The video says "),
                Cited("panels got ten times cheaper", 0, start=0),
                Cited(", and that "),
                Cited("installation is most of the cost.", 0, start=1),
            ),
            chunk_size=5,
        )
    )

    events = await collect(model, ask(SOLAR))

    assert shape(events) == ["text", "citation", "text", "citation", "text", "finished"]
    citations = [e for e in events if isinstance(e, CitationDelta)]
    assert citations == [
        CitationDelta(document_index=0, start_part=0, end_part=1, cited_text=SOLAR.parts[0]),
        CitationDelta(document_index=0, start_part=1, end_part=2, cited_text=SOLAR.parts[1]),
    ]
    first_citation = events.index(citations[0])
    assert text_of(events[:first_citation]) == "The video says "
    assert text_of(events[first_citation:]).startswith("panels got ten times cheaper")
    assert text_of(events) == (
        "The video says panels got ten times cheaper, and that installation is most of the cost."
    )


async def test_citations_point_at_each_of_two_documents(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(
        Reply(
            cited=(Cited("Wind is steadier offshore. ", 1, start=0), Cited("Batteries are next.", 0, start=2))
        )
    )

    events = await collect(model, ask(SOLAR, WIND))

    assert [e for e in events if isinstance(e, CitationDelta)] == [
        CitationDelta(document_index=1, start_part=0, end_part=1, cited_text=WIND.parts[0]),
        CitationDelta(document_index=0, start_part=2, end_part=3, cited_text=SOLAR.parts[2]),
    ]


async def test_documents_are_numbered_over_all_messages(fake: FakeAnthropic, model: AnthropicChatModel):
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [SOLAR, ContentBlock("What about solar?")]),
            ModelMessage("assistant", [ContentBlock("Solar got cheap.")]),
            ModelMessage("user", [WIND, ContentBlock("And wind?")]),
        ],
        max_tokens=256,
    )
    fake.enqueue(Reply(cited=(Cited("Turbines pass 15 MW.", 1, start=1),)))

    events = await collect(model, request)

    (citation,) = [e for e in events if isinstance(e, CitationDelta)]
    assert citation == CitationDelta(1, 1, 2, WIND.parts[1])


async def test_a_citation_spanning_several_parts_quotes_them_all(
    fake: FakeAnthropic, model: AnthropicChatModel
):
    fake.enqueue(Reply(cited=(Cited("Cheaper panels, then batteries.", 0, start=0, end=3),)))

    events = await collect(model, ask(SOLAR))

    (citation,) = [e for e in events if isinstance(e, CitationDelta)]
    assert (citation.start_part, citation.end_part) == (0, 3)
    assert citation.cited_text == "".join(SOLAR.parts)


async def test_citations_outside_the_documents_are_dropped(
    fake: FakeAnthropic, model: AnthropicChatModel, caplog: pytest.LogCaptureFixture
):
    fake.enqueue(
        Reply(
            cited=(
                Cited("No such video. ", 2, start=0),
                Cited("No such part. ", 0, start=3),
                Cited("Backwards. ", 0, start=2, end=1),
                Cited("Fine.", 0, start=1),
            )
        )
    )

    with caplog.at_level(logging.WARNING, logger=anthropic_citations.__name__):
        events = await collect(model, ask(SOLAR))

    assert [e for e in events if isinstance(e, CitationDelta)] == [CitationDelta(0, 1, 2, SOLAR.parts[1])]
    assert text_of(events) == "No such video. No such part. Backwards. Fine."
    assert sum("outside the request's documents" in r.getMessage() for r in caplog.records) == 3


async def test_complete_returns_the_text_without_citations(fake: FakeAnthropic, model: AnthropicChatModel):
    fake.enqueue(Reply(cited=(Cited("It says "), Cited("panels got cheap.", 0, start=0))))

    completion = await model.complete(ask(SOLAR))

    assert completion.text == "It says panels got cheap."
    assert completion.stop_reason == "end_turn"


async def test_a_citation_counts_as_output_so_a_later_failure_is_not_retried(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    fake.enqueue(DropConnection(cited=(Cited("Panels got cheap.", 0, start=0),), after_chunks=0), Reply())

    events: list[ModelEvent] = []
    with pytest.raises(ModelError) as caught:
        async for event in model.stream(ask(SOLAR)):
            events.append(event)

    assert events == [CitationDelta(0, 0, 1, SOLAR.parts[0])]
    assert caught.value.code == "MODEL_STREAM_INTERRUPTED"
    assert len(fake.message_requests) == 1 and sleeps == []


async def test_a_document_in_an_assistant_message_is_a_bad_request(
    fake: FakeAnthropic, model: AnthropicChatModel, sleeps: list[float]
):
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [ContentBlock("Quote yourself.")]),
            ModelMessage("assistant", [SOLAR]),
            ModelMessage("user", [ContentBlock("Go on.")]),
        ],
        max_tokens=64,
    )

    with pytest.raises(ModelError) as caught:
        await collect(model, request)

    assert caught.value.code == "MODEL_BAD_REQUEST"
    assert caught.value.retryable is False
    assert len(fake.message_requests) == 1 and sleeps == []


# ---------------------------------------------------------------- the SDK reads the fake's citations


async def test_the_sdk_parses_non_streamed_citations(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("It says "), Cited("panels got cheap.", 0, start=0, end=2))))
    params = build_messages_params(ask(SOLAR), default_model="claude-test-model")

    async with anthropic.AsyncAnthropic(api_key=DEFAULT_API_KEY, base_url=fake.base_url) as client:
        message = await client.messages.create(**params)

    plain, cited = message.content
    assert plain.type == "text" and plain.text == "It says " and not plain.citations
    assert cited.type == "text" and cited.text == "panels got cheap."
    (citation,) = cited.citations or []
    assert isinstance(citation, anthropic.types.CitationContentBlockLocation)
    assert (citation.document_index, citation.start_block_index, citation.end_block_index) == (0, 0, 2)
    assert citation.cited_text == SOLAR.parts[0] + SOLAR.parts[1]
    assert citation.document_title == SOLAR.title


async def test_the_sdk_accumulates_streamed_citations_onto_their_text_blocks(fake: FakeAnthropic):
    fake.enqueue(Reply(cited=(Cited("Wind: "), Cited("steadier offshore.", 1, start=0)), chunk_size=4))
    params = build_messages_params(ask(SOLAR, WIND), default_model="claude-test-model")

    client = anthropic.AsyncAnthropic(api_key=DEFAULT_API_KEY, base_url=fake.base_url)
    async with client, client.messages.stream(**params) as stream:
        message = await stream.get_final_message()

    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "Wind: "),
        ("text", "steadier offshore."),
    ]
    block = message.content[1]
    assert block.type == "text"
    (citation,) = block.citations or []
    assert isinstance(citation, anthropic.types.CitationContentBlockLocation)
    assert (citation.document_index, citation.cited_text, citation.document_title) == (
        1,
        WIND.parts[0],
        "Offshore wind",
    )
