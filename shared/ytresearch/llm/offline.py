"""``OfflineChatModel``: the model used with no API key and no network.

It does not pretend to be Claude. Summaries are extractive (the highest-scoring transcript
sentences, in their original order) and chat answers quote the transcript passages that share
the most words with the question, with their ``[mm:ss]`` timestamps. Given tools, it maps plain
requests in the person's message to tool calls and answers tool results with what they said
(``offline_agent``). Output is deterministic and streamed word by word like a real model, so
every streaming path can run offline.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

import anyio

from ytresearch.llm.offline_agent import AgentReply, call_id, plan_tool_calls, reply_to_results
from ytresearch.ports import (
    Completion,
    ContentBlock,
    MessageBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    TextDelta,
    ToolCallRequested,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

OFFLINE_MODEL_NAME = "offline"
SUMMARY_NOTE = "Offline summary (extracted sentences; no AI model configured):"
CHAT_NOTE = "Offline model: here is what the videos say about that:"
NO_MATCH_ANSWER = (
    "Offline model: I could not find anything about that in the videos' transcripts. "
    "No AI model is configured, so I can only quote transcript passages that share words "
    "with your question; try asking with words the speakers use."
)
NO_QUESTION_ANSWER = "Offline model: I did not find a question to answer."
EMPTY_TRANSCRIPT_SUMMARY = "Offline summary: the transcript has no text, so there is nothing to summarise."

SUMMARY_SENTENCES = 5
CHAT_QUOTES = 3
_LONG_SENTENCE_WORDS = 40  # captions often have no punctuation: cut run-ons into windows
_WINDOW_WORDS = 25

_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't could couldn't did didn't do does doesn't
    doing don't down during each even every few for from further get gets getting go goes going
    gonna got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
    just know let's like me more most mustn't my myself no nor not now of off on once one only
    or other ought our ours ourselves out over own really right same say said says she she'd
    she'll she's should shouldn't so some something such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've thing things think
    this those through to too uh um under until up us very video videos want was wasn't we we'd
    we'll we're we've well were weren't what what's when when's where where's which while who
    who's whom why why's will with won't would wouldn't yeah yes you you'd you'll you're you've
    your yours yourself yourselves tell me please does did
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_TIMESTAMP_LINE = re.compile(r"^\s*\[(?P<ts>(?:\d{1,2}:)?\d{1,2}:\d{2})\]\s*(?P<text>.*\S)\s*$")
_TAG = re.compile(r"</?[a-zA-Z_][\w-]*(?:\s[^<>]*)?>")
_TOKEN = re.compile(r"\S+\s*")
_QUOTE_WINDOW = 3  # consecutive caption lines quoted together
_BULLET = re.compile(r"^\s*[-*]\s+")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _normalize(word: str) -> str:
    word = word.replace("'s", "")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, lightly normalised words without stopwords or one-letter noise."""
    return [
        _normalize(w)
        for w in _WORD.findall(text.lower())
        if w not in STOPWORDS and len(w) > 1 and not w.isdigit()
    ]


def split_sentences(text: str) -> list[str]:
    """Sentences on ``.!?`` boundaries; run-ons (unpunctuated captions) cut into word windows."""
    sentences: list[str] = []
    for raw in _SENTENCE_END.split(" ".join(text.split())):
        words = raw.split()
        if len(words) <= _LONG_SENTENCE_WORDS:
            if words:
                sentences.append(raw)
            continue
        for i in range(0, len(words), _WINDOW_WORDS):
            sentences.append(" ".join(words[i : i + _WINDOW_WORDS]))
    return sentences


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


@dataclass(frozen=True)
class Passage:
    text: str
    timestamp: str | None  # "01:23" when the context carried a [mm:ss] marker
    order: int


def context_passages(texts: Iterable[str]) -> list[Passage]:
    """Transcript lines ``[mm:ss] text`` become timed passages; other text becomes sentences."""
    passages: list[Passage] = []
    loose: list[str] = []

    def flush() -> None:
        for sentence in split_sentences(" ".join(loose)):
            passages.append(Passage(sentence, None, len(passages)))
        loose.clear()

    for text in texts:
        for line in _TAG.sub(" ", text).splitlines():
            match = _TIMESTAMP_LINE.match(line)
            if match:
                flush()
                passages.append(Passage(match["text"], match["ts"], len(passages)))
            elif line.strip():
                loose.append(line.strip())
        flush()
    return passages


def answer_from_context(question: str, context: Iterable[str], *, limit: int = CHAT_QUOTES) -> str:
    """Quote the transcript passages that best match the question. Caption lines are short, so
    each candidate is a window of a few consecutive timed lines; question words are weighted by
    rarity (a word found everywhere says little), and chosen windows never overlap."""
    wanted = set(content_words(question))
    if not wanted:
        return NO_QUESTION_ANSWER
    passages = context_passages(context)
    if any(p.timestamp for p in passages):
        # Timed transcript lines are the videos; the rest is instructions and headings.
        passages = [p for p in passages if p.timestamp]
    words = [set(content_words(p.text)) for p in passages]
    documents = max(1, len(passages))
    weight = {w: math.log(1 + documents / (1 + sum(w in ws for ws in words))) for w in wanted}
    scored: list[tuple[float, int, int]] = []  # (score, first index, window length)
    for first in range(len(passages)):
        for size in range(1, _QUOTE_WINDOW + 1):
            last = first + size - 1
            if last >= len(passages) or passages[last].order != passages[first].order + size - 1:
                break
            window_words = set().union(*words[first : last + 1])
            seen = window_words & wanted
            if seen and wanted & words[first]:
                # Matches count most; a little credit for substance (so "Now, the panel." loses
                # to a full explanation) and a cost per extra line (so windows stay tight).
                substance = 0.03 * min(len(window_words), 25)
                scored.append((sum(weight[w] for w in seen) + substance - 0.2 * (size - 1), first, size))
    if not scored:
        return NO_MATCH_ANSWER
    chosen: list[tuple[int, int]] = []
    taken: set[int] = set()
    for _, first, size in sorted(scored, key=lambda item: (-item[0], item[1], item[2])):
        span = set(range(first, first + size))
        if span & taken:
            continue
        chosen.append((first, size))
        taken |= span
        if len(chosen) == limit:
            break
    lines = [CHAT_NOTE, ""]
    for first, size in sorted(chosen):
        window = passages[first : first + size]
        prefix = f"[{window[0].timestamp}] " if window[0].timestamp else ""
        lines.append(f'- {prefix}"{" ".join(p.text for p in window)}"')
    return "\n".join(lines)


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
    text = _TAG.sub(" ", max(blocks, key=len))
    kept = [
        _BULLET.sub("", line)
        for line in text.splitlines()
        if not line.strip().startswith(("Offline summary", "Offline model"))
    ]
    return "\n".join(kept)


def offline_answer(request: ModelRequest) -> str:
    if request.purpose == "summary":
        sentences = extractive_summary(summarize_source(request))
        if not sentences:
            return EMPTY_TRANSCRIPT_SUMMARY
        return "\n".join([SUMMARY_NOTE, "", *(f"- {s}" for s in sentences)])

    users = [m for m in request.messages if m.role == "user" and _texts(m)]
    if not users:
        return NO_QUESTION_ANSWER
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
    return answer_from_context(_texts(users[-1])[-1], context)


def _looks_like_context(text: str) -> bool:
    return len(text) > 2000 or any(_TIMESTAMP_LINE.match(line) for line in text.splitlines())


def _texts(message: ModelMessage) -> list[str]:
    """The message's text blocks; tool calls and tool results are not text."""
    return [b.text for b in message.content if isinstance(b, ContentBlock)]


def offline_turn(request: ModelRequest) -> AgentReply:
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
            return AgentReply(reply_to_results(results, uses, tool_names))
        texts = _texts(last)
        # Only the person's own words ask for actions: never a transcript or other context.
        if tool_names and texts and not _looks_like_context(texts[-1]):
            planned = plan_tool_calls(texts[-1], request.tools, [b.text for b in request.system])
            if planned is not None:
                return planned
    return AgentReply(offline_answer(request))


def _block_tokens(block: MessageBlock) -> int:
    if isinstance(block, ContentBlock):
        return estimate_tokens(block.text)
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
        for token in _TOKEN.findall(turn.text):
            if math.ceil((sent_chars + len(token)) / 4) > request.max_tokens:
                stop_reason = "max_tokens"
                break
            # A checkpoint per word, so aclose() and cancellation take effect promptly.
            await anyio.sleep(self.token_delay)
            sent_chars += len(token)
            yield TextDelta(token)
        if turn.calls and stop_reason == "end_turn":
            # Ids continue after the calls already in the conversation, so they never repeat.
            earlier = sum(isinstance(b, ToolUseBlock) for m in request.messages for b in m.content)
            for number, call in enumerate(turn.calls, start=earlier + 1):
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
