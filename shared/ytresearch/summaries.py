"""Video summaries: the prompt and the map-reduce over long transcripts, on the ChatModel port.

A transcript that fits the context budget is summarised in one call. A longer one is cut on
sentence boundaries into parts that each fit, every part is summarised, and the part summaries
are combined by a final call (combined in batches first if even they do not fit). Token usage is
summed over every call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import anyio

from ytresearch.errors import ConfigurationError, InvalidInputError
from ytresearch.ports import (
    ChatModel,
    Completion,
    ContentBlock,
    ModelMessage,
    ModelRequest,
    SystemBlock,
    Usage,
)

SUMMARY_SYSTEM_PROMPT = """\
You are a careful research assistant. You summarise YouTube video transcripts for a researcher \
who may not watch the video.

Rules:
- Stay faithful to the transcript. Report only what the video says; do not add facts, opinions \
or background from elsewhere. If a passage is unclear or the transcript looks garbled \
(automatic captions often are), say so instead of guessing.
- Attribute claims to the speaker ("the speaker argues ...") rather than stating them as facts, \
and keep names, numbers and quantities exactly as given.
- Be concise and concrete: prefer the speaker's specific points to generalities.

Format the summary in Markdown with these sections:
**Overview**: two or three sentences on what the video is and its main message.
**Key points**: three to eight bullet points.
**Structure**: how the video is organised, as a short ordered list of its sections.
**Notable claims**: specific claims, figures, predictions or recommendations worth checking, \
each attributed to the speaker; write "None" if there are none."""

# Room for the tags and separators around the transcript, on top of the measured prompt parts.
_FRAMING_TOKENS = 64
_MAX_REDUCE_LEVELS = 6
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _of_video(title: str | None) -> str:
    return f' "{title.strip()}"' if title and title.strip() else ""


def _single_instruction(title: str | None) -> str:
    return (
        f"Summarise the transcript above of the video{_of_video(title)}, following the format "
        "in your instructions."
    )


def _part_instruction(title: str | None, index: int, total: int) -> str:
    return (
        f"The transcript above is part {index} of {total} of the transcript of the video"
        f"{_of_video(title)}. Summarise this part only: its key points and notable claims in "
        "the order they appear, faithfully and concisely. Do not write an overview of the "
        "whole video."
    )


def _combine_instruction(title: str | None, first: int, last: int, total: int) -> str:
    if first == 1 and last == total:
        return (
            "Above are summaries of the consecutive parts of the transcript of the video"
            f"{_of_video(title)}, in order. Combine them into one summary of the whole video, "
            "following the format in your instructions. Use only what the part summaries say."
        )
    return (
        f"Above are summaries of parts {first} to {last} (of {total}) of the transcript of the "
        f"video{_of_video(title)}, in order. Merge them into one summary of these parts: their "
        "key points and notable claims in order, faithfully and concisely."
    )


def _transcript_block(text: str) -> str:
    return f"<transcript>\n{text}\n</transcript>"


def _summaries_block(summaries: Sequence[tuple[int, str]]) -> str:
    parts = [f'<part_summary index="{index}">\n{text.strip()}\n</part_summary>' for index, text in summaries]
    return "<part_summaries>\n" + "\n".join(parts) + "\n</part_summaries>"


def _request(document: str, instruction: str, *, cache: bool, max_tokens: int) -> ModelRequest:
    return ModelRequest(
        system=[SystemBlock(SUMMARY_SYSTEM_PROMPT)],
        messages=[
            ModelMessage(
                role="user",
                # The document goes first and is a cache breakpoint: a retry, or a later call
                # with the same transcript, reads it from the prompt cache.
                content=[ContentBlock(document, cache=cache), ContentBlock(instruction)],
            )
        ],
        max_tokens=max_tokens,
        purpose="summary",
    )


def split_transcript(text: str, budget_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Cut ``text`` into consecutive chunks of at most ``budget_tokens`` (as ``count_tokens``
    measures), on line and sentence boundaries where possible, then on words, then (for a
    monster "word") on characters. Chunks come out about equally long."""
    if budget_tokens < 1:
        raise ValueError("budget_tokens must be positive")
    units: list[str] = []
    for line in text.splitlines():
        for sentence in _SENTENCE_END.split(line.strip()):
            if not sentence:
                continue
            if count_tokens(sentence) <= budget_tokens:
                units.append(sentence)
                continue
            for word in sentence.split():
                if count_tokens(word) <= budget_tokens:
                    units.append(word)
                else:
                    step = max(1, len(word) * budget_tokens // max(1, count_tokens(word)))
                    units.extend(word[i : i + step] for i in range(0, len(word), step))
    if not units:
        return []

    sizes = [count_tokens(unit + " ") for unit in units]
    total = sum(sizes)
    # Aim for equal chunks rather than full ones followed by a small remainder.
    target = min(budget_tokens, math.ceil(total / math.ceil(total / budget_tokens)))
    chunks: list[str] = []
    current: list[str] = []
    current_size = 0
    for unit, size in zip(units, sizes, strict=True):
        if current and (current_size >= target or current_size + size > budget_tokens):
            chunks.append(" ".join(current))
            current, current_size = [], 0
        current.append(unit)
        current_size += size
    if current:
        chunks.append(" ".join(current))
    return chunks


async def summarize_transcript(
    model: ChatModel,
    *,
    title: str | None,
    transcript_text: str,
    context_budget_tokens: int,
    max_tokens: int,
    max_concurrency: int = 4,
) -> Completion:
    """Summarise a video transcript for research: key points, structure and notable claims,
    faithful to the transcript.

    ``context_budget_tokens`` bounds every call's prompt plus its reply (``max_tokens``); a
    longer transcript is summarised in parts that are then combined. The returned usage is the
    sum over all calls. Raises InvalidInputError for an empty transcript, ConfigurationError when
    the budget cannot hold the prompt, and ModelError from the model."""
    text = transcript_text.strip()
    if not text:
        raise InvalidInputError("the transcript is empty; there is nothing to summarise")

    overhead = (
        model.count_tokens(SUMMARY_SYSTEM_PROMPT)
        + max(
            model.count_tokens(_part_instruction(title, 999, 999)),
            model.count_tokens(_combine_instruction(title, 1, 999, 999)),
            model.count_tokens(_combine_instruction(title, 2, 998, 999)),
        )
        + max_tokens
        + _FRAMING_TOKENS
    )
    budget = context_budget_tokens - overhead
    if model.count_tokens(text) <= budget:
        return await model.complete(
            _request(
                _transcript_block(text),
                _single_instruction(title),
                cache=True,
                max_tokens=max_tokens,
            )
        )
    # Combining must make progress: any two part summaries (each at most max_tokens) must fit.
    if budget < 2 * (max_tokens + _FRAMING_TOKENS):
        raise ConfigurationError(
            f"a context budget of {context_budget_tokens} tokens is too small to summarise long "
            f"transcripts with replies of up to {max_tokens} tokens"
        )

    chunks = split_transcript(text, budget, model.count_tokens)
    usage = Usage()
    limiter = anyio.CapacityLimiter(max(1, max_concurrency))

    async def run_all(requests: list[ModelRequest]) -> list[Completion]:
        nonlocal usage
        results: list[Completion | None] = [None] * len(requests)

        async def run(i: int) -> None:
            async with limiter:
                results[i] = await model.complete(requests[i])

        async with anyio.create_task_group() as group:
            for i in range(len(requests)):
                group.start_soon(run, i)
        done = [r for r in results if r is not None]
        for completion in done:
            usage = usage + completion.usage
        return done

    parts = await run_all(
        [
            _request(
                _transcript_block(chunk),
                _part_instruction(title, i, len(chunks)),
                cache=True,
                max_tokens=max_tokens,
            )
            for i, chunk in enumerate(chunks, start=1)
        ]
    )

    # Each entry: (first part, last part, summary text) so batch instructions can name ranges.
    level = [(i, i, p.text) for i, p in enumerate(parts, start=1)]
    total = len(chunks)
    for _ in range(_MAX_REDUCE_LEVELS):
        block = _summaries_block([(first, text) for first, _, text in level])
        if model.count_tokens(block) <= budget:
            final = await model.complete(
                _request(
                    block,
                    _combine_instruction(title, 1, total, total),
                    cache=False,
                    max_tokens=max_tokens,
                )
            )
            return Completion(
                text=final.text,
                stop_reason=final.stop_reason,
                usage=usage + final.usage,
                model=final.model,
            )
        batches = _batches(level, budget, model.count_tokens)
        merged = await run_all(
            [
                _request(
                    _summaries_block([(first, text) for first, _, text in batch]),
                    _combine_instruction(title, batch[0][0], batch[-1][1], total),
                    cache=False,
                    max_tokens=max_tokens,
                )
                for batch in batches
            ]
        )
        level = [
            (batch[0][0], batch[-1][1], completion.text)
            for batch, completion in zip(batches, merged, strict=True)
        ]
    raise ConfigurationError("the part summaries could not be combined within the context budget")


def _batches(
    level: list[tuple[int, int, str]], budget: int, count_tokens: Callable[[str], int]
) -> list[list[tuple[int, int, str]]]:
    """Consecutive groups of part summaries whose rendered block fits the budget (at least two
    per group whenever two fit, so every level shrinks)."""
    batches: list[list[tuple[int, int, str]]] = []
    current: list[tuple[int, int, str]] = []
    for item in level:
        candidate = [*current, item]
        if current and count_tokens(_summaries_block([(f, t) for f, _, t in candidate])) > budget:
            batches.append(current)
            current = [item]
        else:
            current = candidate
    if current:
        batches.append(current)
    return batches
