"""summarize_transcript over the ChatModel port: one call when the transcript fits, map-reduce
when it does not, usage summed over every call."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

import pytest

from ytresearch.errors import ConfigurationError, InvalidInputError
from ytresearch.llm.offline import SUMMARY_NOTE, OfflineChatModel
from ytresearch.ports import (
    Completion,
    ModelEvent,
    ModelRequest,
    StreamFinished,
    TextDelta,
    Usage,
)
from ytresearch.summaries import SUMMARY_SYSTEM_PROMPT, split_transcript, summarize_transcript

pytestmark = pytest.mark.anyio

SENTENCES = [
    f"Point {n}: the speaker says solar panel number {n} produces {n * 10} watts of power."
    for n in range(1, 61)
]
LONG_TRANSCRIPT = " ".join(SENTENCES)  # about 5,000 characters, 1,300 estimated tokens


class RecordingModel:
    """Wraps a ChatModel and records every request and completion."""

    def __init__(self, inner: OfflineChatModel | ScriptedModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.requests: list[ModelRequest] = []
        self.completions: list[Completion] = []

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        return self.inner.stream(request)

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        completion = await self.inner.complete(request)
        self.completions.append(completion)
        return completion

    def prompt_tokens(self, request: ModelRequest) -> int:
        texts = [b.text for b in request.system] + [b.text for m in request.messages for b in m.content]
        return sum(self.count_tokens(t) for t in texts)


class ScriptedModel:
    """Answers every request with ``reply_chars`` characters and fixed usage."""

    name = "scripted"

    def __init__(self, reply_chars: int) -> None:
        self.reply_chars = reply_chars

    def count_tokens(self, text: str) -> int:
        return -(-len(text) // 4)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        yield TextDelta("s" * self.reply_chars)
        yield StreamFinished("end_turn", Usage(100, 10, 1, 2), self.name)

    async def complete(self, request: ModelRequest) -> Completion:
        return Completion("s" * self.reply_chars, "end_turn", Usage(100, 10, 1, 2), self.name)


def words(text: str) -> list[str]:
    return re.sub(r"</?transcript>", " ", text).split()


# ---------------------------------------------------------------- one call


async def test_a_transcript_that_fits_is_summarised_in_one_cached_call():
    model = RecordingModel(OfflineChatModel())

    result = await summarize_transcript(
        model,
        title="Solar basics",
        transcript_text=" ".join(SENTENCES[:5]),
        context_budget_tokens=150_000,
        max_tokens=512,
    )

    assert len(model.requests) == 1
    request = model.requests[0]
    assert request.purpose == "summary"
    assert request.max_tokens == 512
    assert [b.text for b in request.system] == [SUMMARY_SYSTEM_PROMPT]
    transcript_block, instruction = request.messages[0].content
    assert transcript_block.cache is True
    assert SENTENCES[0] in transcript_block.text
    assert instruction.cache is False
    assert '"Solar basics"' in instruction.text
    assert result == model.completions[0]
    assert result.text.startswith(SUMMARY_NOTE)


def test_the_system_prompt_asks_for_a_faithful_structured_summary():
    prompt = SUMMARY_SYSTEM_PROMPT.lower()

    for phrase in ("faithful", "key points", "structure", "notable claims"):
        assert phrase in prompt


async def test_an_empty_transcript_is_refused():
    with pytest.raises(InvalidInputError):
        await summarize_transcript(
            OfflineChatModel(),
            title=None,
            transcript_text=" \n ",
            context_budget_tokens=150_000,
            max_tokens=512,
        )


# ---------------------------------------------------------------- map-reduce


async def test_a_long_transcript_is_summarised_in_parts_then_combined():
    model = RecordingModel(OfflineChatModel())
    budget = 900

    result = await summarize_transcript(
        model,
        title="Solar basics",
        transcript_text=LONG_TRANSCRIPT,
        context_budget_tokens=budget,
        max_tokens=60,
    )

    *parts, final = model.requests
    assert len(parts) >= 3
    for request in model.requests:
        assert model.prompt_tokens(request) + request.max_tokens <= budget
        assert request.purpose == "summary"
    for n, request in enumerate(parts, start=1):
        transcript_block, instruction = request.messages[0].content
        assert transcript_block.cache is True
        assert f"part {n} of {len(parts)}" in instruction.text
    # The parts cover the transcript exactly, in order.
    covered = [w for r in parts for w in words(r.messages[0].content[0].text)]
    assert covered == LONG_TRANSCRIPT.split()
    # The final call combines the part summaries, in order.
    combined, instruction = final.messages[0].content
    assert "whole video" in instruction.text
    indexes = [int(i) for i in re.findall(r'<part_summary index="(\d+)">', combined.text)]
    assert indexes == list(range(1, len(parts) + 1))
    # Usage is summed over every call; the text and model are the final call's.
    total = Usage()
    for completion in model.completions:
        total = total + completion.usage
    assert result.usage == total
    assert result.text == model.completions[-1].text
    assert result.text.startswith(SUMMARY_NOTE)
    assert result.model == "offline"


async def test_part_summaries_that_do_not_fit_are_combined_in_batches_first():
    model = RecordingModel(ScriptedModel(reply_chars=700))  # each part summary ~175 tokens
    budget = 1400

    result = await summarize_transcript(
        model,
        title=None,
        transcript_text=LONG_TRANSCRIPT * 3,
        context_budget_tokens=budget,
        max_tokens=200,
    )

    instructions = [r.messages[0].content[1].text for r in model.requests]
    parts = [i for i in instructions if i.startswith("The transcript above is part")]
    merges = [i for i in instructions if "Merge them" in i]
    assert len(parts) > 4
    assert merges  # an intermediate level was needed
    assert "whole video" in instructions[-1]
    assert all(model.prompt_tokens(r) + r.max_tokens <= budget for r in model.requests)
    assert result.usage == _sum_usage(len(model.requests))


def _sum_usage(calls: int) -> Usage:
    total = Usage()
    for _ in range(calls):
        total = total + Usage(100, 10, 1, 2)
    return total


async def test_a_budget_too_small_for_the_prompt_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        await summarize_transcript(
            OfflineChatModel(),
            title=None,
            transcript_text=LONG_TRANSCRIPT,
            context_budget_tokens=600,
            max_tokens=200,
        )


# ---------------------------------------------------------------- splitting


def count(text: str) -> int:
    return -(-len(text) // 4)


def test_split_keeps_every_word_in_order_and_each_chunk_within_budget():
    chunks = split_transcript(LONG_TRANSCRIPT, 200, count)

    assert len(chunks) > 1
    assert all(count(chunk) <= 200 for chunk in chunks)
    assert " ".join(chunks).split() == LONG_TRANSCRIPT.split()


def test_split_cuts_on_sentence_boundaries():
    chunks = split_transcript(LONG_TRANSCRIPT, 200, count)

    assert all(chunk.endswith("watts of power.") for chunk in chunks)


def test_split_makes_chunks_of_similar_size():
    chunks = split_transcript(LONG_TRANSCRIPT, 500, count)

    sizes = [count(c) for c in chunks]
    assert max(sizes) - min(sizes) < 100


def test_split_falls_back_to_words_for_unpunctuated_captions():
    captions = " ".join(f"caption{n}" for n in range(500))

    chunks = split_transcript(captions, 50, count)

    assert all(count(chunk) <= 50 for chunk in chunks)
    assert " ".join(chunks).split() == captions.split()


def test_split_cuts_a_monster_word_on_characters():
    chunks = split_transcript("x" * 1000, 30, count)

    assert all(count(chunk) <= 30 for chunk in chunks)
    assert "".join(chunks) == "x" * 1000
