"""``OfflineChatModel``: the model used with no API key and no network.

It does not pretend to be Claude. Summaries are extractive (the highest-scoring transcript
sentences, in their original order) and chat answers quote the transcript passages that share
the most words with the question, with their video's title and ``[mm:ss]`` time, each quote
just after the citation of the window it comes from (``offline_quotes``). Given tools, it maps
plain requests in the person's message to tool calls and answers tool results with what they
said (``offline_agent``); an artifact it is asked for is extracted from the videos
(``offline_artifacts``) and its input streamed as it is "written". Output is deterministic and
streamed word by word like a real model, so every streaming path can run offline.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio

from ytresearch.llm.offline_agent import PlannedCall, plan_tool_calls, reply_to_results
from ytresearch.llm.offline_artifacts import input_prefixes, request_videos
from ytresearch.llm.offline_quotes import (
    MARKUP_TAG,
    NO_QUESTION_ANSWER,
    TIMESTAMP_LINE,
    Piece,
    answer_from_context,
    answer_from_documents,
    content_words,
    request_documents,
    split_sentences,
    video_titles,
)
from ytresearch.ports import (
    CitationDelta,
    Completion,
    ContentBlock,
    DocumentBlock,
    MessageBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    TextDelta,
    ToolCallRequested,
    ToolInputDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

OFFLINE_MODEL_NAME = "offline"
CALL_ID_PREFIX = "toolu_offline_"
SUMMARY_NOTE = "Offline summary (extracted sentences; no AI model configured):"
EMPTY_TRANSCRIPT_SUMMARY = "Offline summary: the transcript has no text, so there is nothing to summarise."

SUMMARY_SENTENCES = 5
_TOKEN = re.compile(r"\S+\s*")
_BULLET = re.compile(r"^\s*[-*]\s+")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def extractive_summary(text: str, *, limit: int = SUMMARY_SENTENCES) -> list[str]:
    """The ``limit`` sentences with the highest mean normalised word frequency, in original
    order (ties go to the earlier sentence)."""
    sentences = split_sentences(text)
    if len(sentences) <= limit:
        return sentences
    frequencies = Counter(w for s in sentences for w in content_words(s))
    if not frequencies:
        return sentences[:limit]
    top = max(frequencies.values())
    scored: list[tuple[float, int]] = []
    for index, sentence in enumerate(sentences):
        words = content_words(sentence)
        if len(sentence.split()) < 4 or not words:
            score = 0.0
        else:
            score = sum(frequencies[w] / top for w in words) / len(words)
        scored.append((score, index))
    chosen = sorted(sorted(scored, key=lambda item: (-item[0], item[1]))[:limit], key=lambda i: i[1])
    return [sentences[index] for _, index in chosen]


def summarize_source(request: ModelRequest) -> str:
    """The document to summarise: the longest user content block (the transcript, or the part
    summaries when combining), without markup tags and without earlier offline notes. When the
    last user turn has several blocks, its final one is the instruction, never the document."""
    users = [m for m in request.messages if m.role == "user" and _texts(m)]
    blocks = [text for m in users for text in _texts(m)]
    if users and len(_texts(users[-1])) > 1:
        blocks.pop()
    if not blocks:
        return ""
    text = MARKUP_TAG.sub(" ", max(blocks, key=len))
    kept = [
        _BULLET.sub("", line)
        for line in text.splitlines()
        if not line.strip().startswith(("Offline summary", "Offline model"))
    ]
    return "\n".join(kept)


def offline_answer(request: ModelRequest) -> list[Piece]:
    """A summary, or the answer to the person's last question: quoted from the request's
    documents when it has some, else from its text (the system blocks and context blocks)."""
    if request.purpose == "summary":
        sentences = extractive_summary(summarize_source(request))
        if not sentences:
            return [EMPTY_TRANSCRIPT_SUMMARY]
        return ["\n".join([SUMMARY_NOTE, "", *(f"- {s}" for s in sentences)])]

    users = [m for m in request.messages if m.role == "user" and _texts(m)]
    if not users:
        return [NO_QUESTION_ANSWER]
    if documents := request_documents(request):
        return answer_from_documents(_texts(users[-1])[-1], documents)
    context = [b.text for b in request.system]
    for m, message in enumerate(users):
        texts = _texts(message)
        for i, text in enumerate(texts):
            is_last = i == len(texts) - 1
            # The last block of each user turn is that turn's question, unless it is clearly
            # context (timed transcript lines, or long text): earlier questions are not answers.
            if is_last and (m == len(users) - 1 or not _looks_like_context(text)):
                continue
            context.append(text)
    return [answer_from_context(_texts(users[-1])[-1], context)]


def _looks_like_context(text: str) -> bool:
    return len(text) > 2000 or any(TIMESTAMP_LINE.match(line) for line in text.splitlines())


def _texts(message: ModelMessage) -> list[str]:
    """The message's text blocks; tool calls and tool results are not text."""
    return [b.text for b in message.content if isinstance(b, ContentBlock)]


@dataclass(frozen=True)
class OfflineTurn:
    """What the offline model says (text and citations, in order), then the tools it calls."""

    pieces: tuple[Piece, ...]
    calls: tuple[PlannedCall, ...] = ()


def offline_turn(request: ModelRequest) -> OfflineTurn:
    """What the offline model says and which tools it calls. After tool results: a reply built
    from them, never another call. With tools: the calls the person's newest message asks for.
    Otherwise (or when it asks for none): the extractive answer."""
    if request.purpose == "chat" and request.messages and request.messages[-1].role == "user":
        last = request.messages[-1]
        results = [b for b in last.content if isinstance(b, ToolResultBlock)]
        tool_names = {t.name for t in request.tools}
        if results:
            uses = {
                b.call_id: b
                for m in request.messages
                if m.role == "assistant"
                for b in m.content
                if isinstance(b, ToolUseBlock)
            }
            return OfflineTurn((reply_to_results(results, uses, tool_names),))
        texts = _texts(last)
        # Only the person's own words ask for actions: never a transcript or other context.
        if tool_names and texts and not _looks_like_context(texts[-1]):
            planned = plan_tool_calls(
                texts[-1], request.tools, video_titles(request), request_videos(request)
            )
            if planned is not None:
                return OfflineTurn((planned.text,), planned.calls)
    return OfflineTurn(tuple(offline_answer(request)))


def call_id(number: int) -> str:
    """Deterministic tool call ids: toolu_offline_1, toolu_offline_2 ..."""
    return f"{CALL_ID_PREFIX}{number}"


def _block_tokens(block: MessageBlock) -> int:
    if isinstance(block, ContentBlock):
        return estimate_tokens(block.text)
    if isinstance(block, DocumentBlock):
        return estimate_tokens(block.title + "".join(block.parts) + (block.context or ""))
    if isinstance(block, ToolUseBlock):
        return estimate_tokens(block.name + json.dumps(block.input))
    return estimate_tokens(block.content)


class OfflineChatModel:
    """Deterministic, honest stand-in for Claude. ``token_delay`` paces the word stream."""

    def __init__(self, *, token_delay: float = 0.0) -> None:
        self.name = OFFLINE_MODEL_NAME
        self.token_delay = token_delay

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def paused_for(self) -> int | None:
        return None

    async def aclose(self) -> None:
        return None  # no connections

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        turn = offline_turn(request)
        input_tokens = sum(estimate_tokens(b.text) for b in request.system)
        input_tokens += sum(_block_tokens(b) for m in request.messages for b in m.content)
        input_tokens += sum(
            estimate_tokens(t.name + t.description + json.dumps(t.input_schema)) for t in request.tools
        )
        sent_chars = 0
        stop_reason = "end_turn"
        citations: list[CitationDelta] = []  # go out just before the next word, if it fits
        for piece in turn.pieces:
            if isinstance(piece, CitationDelta):
                citations.append(piece)
                continue
            for token in _TOKEN.findall(piece):
                if math.ceil((sent_chars + len(token)) / 4) > request.max_tokens:
                    stop_reason = "max_tokens"
                    break
                # A checkpoint per word, so aclose() and cancellation take effect promptly.
                await anyio.sleep(self.token_delay)
                sent_chars += len(token)
                for citation in citations:
                    yield citation
                citations.clear()
                yield TextDelta(token)
            if stop_reason == "max_tokens":
                break
        if turn.calls and stop_reason == "end_turn":
            # Ids continue after the calls already in the conversation, so they never repeat.
            earlier = sum(isinstance(b, ToolUseBlock) for m in request.messages for b in m.content)
            streamed = {t.name for t in request.tools if t.streams_input}
            for number, call in enumerate(turn.calls, start=earlier + 1):
                # A tool whose input is worth watching (an artifact) gets it as it is "written".
                for partial in input_prefixes(call.input) if call.name in streamed else ():
                    await anyio.sleep(self.token_delay)
                    yield ToolInputDelta(call_id(number), call.name, partial)
                await anyio.sleep(self.token_delay)
                sent_chars += len(call.name) + len(json.dumps(call.input))
                yield ToolCallRequested(call_id(number), call.name, dict(call.input))
            stop_reason = "tool_use"
        yield StreamFinished(
            stop_reason=stop_reason,
            usage=Usage(input_tokens=input_tokens, output_tokens=math.ceil(sent_chars / 4)),
            model=OFFLINE_MODEL_NAME,
        )

    async def complete(self, request: ModelRequest) -> Completion:
        parts: list[str] = []
        async for event in self.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, StreamFinished):
                return Completion("".join(parts), event.stop_reason, event.usage, event.model)
        raise AssertionError("the offline stream always finishes")  # pragma: no cover
