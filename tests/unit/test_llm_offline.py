"""The offline model: honest, deterministic extractive answers, streamed word by word."""

from __future__ import annotations

import re

import anyio
import pytest

from ytresearch.llm.offline import SUMMARY_NOTE, OfflineChatModel
from ytresearch.llm.offline_quotes import CHAT_NOTE
from ytresearch.ports import (
    ChatModel,
    CitationDelta,
    ContentBlock,
    DocumentBlock,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
    ToolResultBlock,
    ToolUseBlock,
)

pytestmark = pytest.mark.anyio

TRANSCRIPT = (
    "Welcome back to the channel. Today we talk about solar panels and home batteries. "
    "Solar panels convert sunlight into electricity for your home. "
    "I had coffee this morning and it was nice. "
    "A home battery stores solar electricity for the evening. "
    "Batteries like this cost around eight thousand dollars. "
    "Please like and subscribe. "
    "Solar panels on a south facing roof produce the most electricity. "
    "The weather was cloudy last week. "
    "Net metering lets you sell extra solar electricity back to the grid. "
    "Thanks for watching and see you next time."
)

LINES = [
    "[00:05] welcome back to the channel",
    "[00:12] today we talk about solar panels",
    "[01:03] a home battery stores solar electricity",
    "[02:10] batteries cost around eight thousand dollars",
    "[03:00] thanks for watching",
]
# The video as the chat sends it: a document whose parts are overlapping transcript windows, and
# what is said about it (never quoted).
SOLAR = DocumentBlock(
    "Solar basics",
    parts=("\n".join(LINES[:3]), "\n".join(LINES[2:])),
    context="YouTube video aaaaaaaaaa1, by Energy Talks, 03:05 long. Summary: installers answer questions.",
)
# The same video as older callers gave it: plain text with a heading.
CONTEXT = "\n".join(["Video: Solar basics", *LINES])


def summary_request(transcript: str = TRANSCRIPT, max_tokens: int = 1000) -> ModelRequest:
    return ModelRequest(
        system=[SystemBlock("You summarise videos.")],
        messages=[
            ModelMessage(
                "user",
                [
                    ContentBlock(f"<transcript>\n{transcript}\n</transcript>", cache=True),
                    ContentBlock("Summarise the transcript above."),
                ],
            )
        ],
        max_tokens=max_tokens,
        purpose="summary",
    )


def chat_request(question: str, *, history: list[ModelMessage] | None = None) -> ModelRequest:
    """The chat's shape: instructions as system text, the video's document opening the first user
    turn (merged with the first user message after it), then the history and the question."""
    turns = [*(history or []), ModelMessage("user", [ContentBlock(question)])]
    first = ModelMessage("user", [SOLAR, *turns[0].content])
    return ModelRequest(
        system=[SystemBlock("Answer questions about the videos.")],
        messages=[first, *turns[1:]],
        max_tokens=1000,
    )


def text_request(question: str) -> ModelRequest:
    """An older caller's shape: the video as system text, no documents."""
    return ModelRequest(
        system=[SystemBlock("Answer questions about the videos."), SystemBlock(CONTEXT)],
        messages=[ModelMessage("user", [ContentBlock(question)])],
        max_tokens=1000,
    )


def bullets(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("- ")]


def test_offline_model_satisfies_the_port():
    model: ChatModel = OfflineChatModel()

    assert model.name == "offline"
    assert model.count_tokens("abcdefgh") == 2
    assert model.count_tokens("abcdefghi") == 3


# ---------------------------------------------------------------- summaries


async def test_summary_is_labelled_and_keeps_five_transcript_sentences_in_order():
    completion = await OfflineChatModel().complete(summary_request())

    assert completion.text.startswith(SUMMARY_NOTE)
    chosen = bullets(completion.text)
    assert len(chosen) == 5
    positions = [TRANSCRIPT.index(sentence) for sentence in chosen]  # verbatim from the source
    assert positions == sorted(positions)


async def test_summary_prefers_sentences_about_the_main_topic():
    chosen = bullets((await OfflineChatModel().complete(summary_request())).text)

    assert "I had coffee this morning and it was nice." not in chosen
    assert "The weather was cloudy last week." not in chosen
    assert sum("solar" in sentence.lower() for sentence in chosen) >= 4


async def test_summary_is_deterministic():
    model = OfflineChatModel()

    first = await model.complete(summary_request())
    second = await model.complete(summary_request())

    assert first == second


async def test_summary_ignores_the_instruction_block():
    completion = await OfflineChatModel().complete(summary_request())

    assert "Summarise" not in completion.text


async def test_unpunctuated_captions_are_cut_into_short_passages():
    captions = " ".join(f"word{n} solar panel talk" for n in range(100))  # 400 words, no stops

    chosen = bullets((await OfflineChatModel().complete(summary_request(captions))).text)

    assert 0 < len(chosen) <= 5
    assert all(len(sentence.split()) <= 40 for sentence in chosen)


async def test_empty_transcript_summary_says_so():
    completion = await OfflineChatModel().complete(summary_request("   "))

    assert "nothing to summarise" in completion.text


# ---------------------------------------------------------------- chat


async def test_chat_quotes_matching_passages_with_their_video_and_timestamps():
    completion = await OfflineChatModel().complete(chat_request("How much does a battery cost?"))

    assert completion.text.startswith(CHAT_NOTE)
    quotes = bullets(completion.text)
    assert 'Solar basics [02:10]: "batteries cost around eight thousand dollars"' in quotes
    assert 1 <= len(quotes) <= 3
    stamps = [re.search(r"\[(\d\d:\d\d)\]", q).group(1) for q in quotes]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)


async def test_chat_quotes_each_line_once_though_windows_overlap():
    # [01:03] is in both windows; asked about, it is quoted once.
    completion = await OfflineChatModel().complete(chat_request("What stores solar electricity?"))

    assert completion.text.count("a home battery stores solar electricity") == 1


async def test_chat_quotes_at_most_three_passages():
    lines = [f"[{n:02d}:00] solar panel fact number {n} with more words in it" for n in range(12)]
    parts = tuple("\n".join(lines[i : i + 4]) for i in range(0, 12, 3))  # overlapping windows
    request = ModelRequest(
        system=[],
        messages=[ModelMessage("user", [DocumentBlock("Facts", parts), ContentBlock("solar panel facts")])],
        max_tokens=1000,
    )

    completion = await OfflineChatModel().complete(request)

    assert len(bullets(completion.text)) == 3


async def test_chat_does_not_quote_instructions_or_what_is_said_about_the_video():
    # "answer questions" is in the instructions and "installers" in the document's summary only.
    completion = await OfflineChatModel().complete(chat_request("Which installers answer questions?"))

    assert "could not find anything" in completion.text
    assert "Answer questions" not in completion.text
    assert "installers answer" not in completion.text


async def test_chat_without_documents_does_not_quote_instructions_or_headings():
    completion = await OfflineChatModel().complete(text_request("Which videos answer questions?"))

    assert "Answer questions" not in completion.text
    assert "Video: Solar basics" not in completion.text


async def test_chat_without_documents_quotes_the_system_text_uncited():
    events = [e async for e in OfflineChatModel().stream(text_request("How much does a battery cost?"))]

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert '[02:10] "batteries cost around eight thousand dollars"' in bullets(text)
    assert not any(isinstance(e, CitationDelta) for e in events)


async def test_chat_answers_the_last_question_and_not_earlier_ones():
    history = [
        ModelMessage("user", [ContentBlock("Tell me about the weather")]),
        ModelMessage("assistant", [ContentBlock("Nothing about the weather.")]),
    ]

    completion = await OfflineChatModel().complete(
        chat_request("What does a home battery store?", history=history)
    )

    assert "[01:03]" in completion.text
    assert "weather" not in completion.text


async def test_chat_says_honestly_when_nothing_matches():
    events = [e async for e in OfflineChatModel().stream(chat_request("What about quantum gravity?"))]

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "could not find anything" in text
    assert bullets(text) == []
    assert not any(isinstance(e, CitationDelta) for e in events)


async def test_chat_context_in_a_user_block_is_used():
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [ContentBlock(CONTEXT, cache=True), ContentBlock("What do batteries cost?")])
        ],
        max_tokens=500,
    )

    completion = await OfflineChatModel().complete(request)

    assert "[02:10]" in completion.text  # no documents: the old context shape still works


async def test_chat_reads_text_only_and_skips_earlier_tool_calls_and_results():
    history = [
        ModelMessage("user", [ContentBlock("list my videos")]),
        ModelMessage(
            "assistant",
            [ContentBlock("Listing."), ToolUseBlock("toolu_1", "list_videos", {"note": "weather"})],
        ),
        ModelMessage("user", [ToolResultBlock("toolu_1", '{"ok": true, "summary": "weather report"}')]),
        ModelMessage("assistant", [ContentBlock("Done: weather report.")]),
    ]

    completion = await OfflineChatModel().complete(
        chat_request("What does a home battery store?", history=history)
    )

    assert "[01:03]" in completion.text
    assert "weather" not in completion.text
    assert completion.stop_reason == "end_turn"


# ---------------------------------------------------------------- streaming


async def test_streams_word_by_word_and_finishes_once():
    model = OfflineChatModel()
    request = chat_request("How much does a battery cost?")

    events = [event async for event in model.stream(request)]

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert all(re.fullmatch(r"\S+\s*", d.text) for d in deltas)
    assert len(deltas) > 5
    assert isinstance(events[-1], StreamFinished)
    assert sum(isinstance(e, StreamFinished) for e in events) == 1
    text = "".join(d.text for d in deltas)
    assert text == (await model.complete(request)).text
    finished = events[-1]
    assert finished.model == "offline"
    assert finished.stop_reason == "end_turn"
    assert finished.usage.output_tokens == model.count_tokens(text)
    assert finished.usage.input_tokens > model.count_tokens("".join(SOLAR.parts))  # the document counts


async def test_max_tokens_cuts_the_answer_short():
    request = summary_request(max_tokens=10)

    completion = await OfflineChatModel().complete(request)

    assert completion.stop_reason == "max_tokens"
    assert 0 < completion.usage.output_tokens <= 10


async def test_aclose_after_the_first_word_ends_the_stream():
    stream = OfflineChatModel().stream(chat_request("battery cost"))

    first = await anext(stream)
    await stream.aclose()

    assert isinstance(first, TextDelta)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_cancelling_the_consumer_stops_the_stream_promptly():
    received: list[str] = []

    async def consume() -> None:
        async for event in OfflineChatModel(token_delay=60).stream(chat_request("battery cost")):
            if isinstance(event, TextDelta):
                received.append(event.text)

    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    assert received == []
