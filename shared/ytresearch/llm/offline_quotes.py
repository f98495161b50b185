"""What the offline model matches and quotes: the words that count in a question, and the
transcript passages that share the most of them.

With the videos as documents (their parts transcript windows, consecutive ones sharing their edge
lines; in retrieved mode only some windows), each caption line is read once, a quote is a run of
lines one window holds whole, and its citation names that window and quotes those lines as the
window has them. Without documents, passages come from plain text (the system blocks and context
blocks of older callers), uncited. ``video_titles`` tells the agent which videos the request is
about, from the same documents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ytresearch.ports import CitationDelta, ContentBlock, DocumentBlock, ModelRequest

CHAT_NOTE = "Offline model: here is what the videos say about that:"
NO_MATCH_ANSWER = (
    "Offline model: I could not find anything about that in the videos' transcripts. "
    "No AI model is configured, so I can only quote transcript passages that share words "
    "with your question; try asking with words the speakers use."
)
NO_QUESTION_ANSWER = "Offline model: I did not find a question to answer."

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
TIMESTAMP_LINE = re.compile(r"^\s*\[(?P<ts>(?:\d{1,2}:)?\d{1,2}:\d{2})\]\s*(?P<text>.*\S)\s*$")
MARKUP_TAG = re.compile(r"</?[a-zA-Z_][\w-]*(?:\s[^<>]*)?>")
_DOCUMENT_ID = re.compile(r"^YouTube video (?P<id>[A-Za-z0-9_-]{11})\b")  # how a document's context opens
_VIDEO_NOTE = re.compile(r'^- "(?P<title>[^\n]*)" \(YouTube video (?P<id>[A-Za-z0-9_-]{11})\b', re.MULTILINE)
_VIDEO_HEADER = re.compile(r'<video id="(?P<id>[A-Za-z0-9_-]{11})" title="(?P<title>[^\n]*?)" channel="')
_QUOTE_WINDOW = 3  # consecutive caption lines quoted together


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
        for line in MARKUP_TAG.sub(" ", text).splitlines():
            match = TIMESTAMP_LINE.match(line)
            if match:
                flush()
                passages.append(Passage(match["text"], match["ts"], len(passages)))
            elif line.strip():
                loose.append(line.strip())
        flush()
    return passages


def best_runs(
    wanted: set[str], texts: Sequence[str], joins: Callable[[int, int], bool], *, limit: int = CHAT_QUOTES
) -> list[tuple[int, int]]:
    """The runs ``(first, size)`` of ``texts`` to quote for the question words ``wanted``, in
    order. Caption lines are short, so each candidate is a run of a few consecutive lines that
    ``joins(first, size)`` allows; question words are weighted by rarity (a word found everywhere
    says little), and chosen runs never overlap."""
    words = [set(content_words(text)) for text in texts]
    documents = max(1, len(texts))
    weight = {w: math.log(1 + documents / (1 + sum(w in ws for ws in words))) for w in wanted}
    scored: list[tuple[float, int, int]] = []  # (score, first index, window length)
    for first in range(len(texts)):
        for size in range(1, _QUOTE_WINDOW + 1):
            last = first + size - 1
            if last >= len(texts) or not joins(first, size):
                break
            window_words = set().union(*words[first : last + 1])
            seen = window_words & wanted
            if seen and wanted & words[first]:
                # Matches count most; a little credit for substance (so "Now, the panel." loses
                # to a full explanation) and a cost per extra line (so windows stay tight).
                substance = 0.03 * min(len(window_words), 25)
                scored.append((sum(weight[w] for w in seen) + substance - 0.2 * (size - 1), first, size))
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
    return sorted(chosen)


def answer_from_context(question: str, context: Iterable[str], *, limit: int = CHAT_QUOTES) -> str:
    """Quote the passages of plain-text context that best match the question (no citations:
    there is no document to point at)."""
    wanted = set(content_words(question))
    if not wanted:
        return NO_QUESTION_ANSWER
    passages = context_passages(context)
    if any(p.timestamp for p in passages):
        # Timed transcript lines are the videos; the rest is instructions and headings.
        passages = [p for p in passages if p.timestamp]

    def joins(first: int, size: int) -> bool:
        return passages[first + size - 1].order == passages[first].order + size - 1

    runs = best_runs(wanted, [p.text for p in passages], joins, limit=limit)
    if not runs:
        return NO_MATCH_ANSWER
    lines = [CHAT_NOTE, ""]
    for first, size in runs:
        window = passages[first : first + size]
        prefix = f"[{window[0].timestamp}] " if window[0].timestamp else ""
        lines.append(f'- {prefix}"{" ".join(p.text for p in window)}"')
    return "\n".join(lines)


@dataclass(frozen=True)
class CaptionLine:
    text: str  # what was said, without its time
    timestamp: str | None  # "01:23" (or "1:01:23"); None for a line without a time
    document: int  # index among the request's documents
    raw: str  # the line as the part has it, time included


@dataclass(frozen=True)
class _Part:
    """Part ``part`` of document ``document`` holds ``lines[first:first + len(spans)]``; ``spans``
    are where each of those lines sits in the part's text."""

    document: int
    part: int
    first: int
    spans: tuple[tuple[int, int], ...]

    def holds(self, first: int, size: int) -> bool:
        return self.first <= first and first + size <= self.first + len(self.spans)


@dataclass(frozen=True)
class DocumentLines:
    lines: list[CaptionLine]
    titles: list[str]  # each document's title, on one line
    parts: list[_Part]
    texts: list[tuple[str, ...]]  # each document's parts, to cut the cited text from

    def part_holding(self, first: int, size: int) -> _Part | None:
        """The first part that holds all of ``lines[first:first + size]``, if one does."""
        return next((p for p in self.parts if p.holds(first, size)), None)

    def citation(self, first: int, size: int) -> CitationDelta | None:
        """The citation of ``lines[first:first + size]``: the one part holding them, and those
        lines exactly as that part has them."""
        part = self.part_holding(first, size)
        if part is None:
            return None
        text = self.texts[part.document][part.part]
        start = part.spans[first - part.first][0]
        end = part.spans[first + size - 1 - part.first][1]
        return CitationDelta(part.document, part.part, part.part + 1, text[start:end])


def request_documents(request: ModelRequest) -> list[DocumentBlock]:
    """The request's documents in citation order: over all messages, in order."""
    return [b for m in request.messages for b in m.content if isinstance(b, DocumentBlock)]


def video_titles(request: ModelRequest) -> list[tuple[str, str]]:
    """(id, title) of the request's videos, first mention first (for grouping them by topic):
    each document's title and the id its context names, then the videos the opening message's
    note lists (retrieved mode: those without passages), then ``<video>`` headers in the system
    text (older callers). Never read from the person's question."""
    found = [
        (m["id"], d.title) for d in request_documents(request) if (m := _DOCUMENT_ID.match(d.context or ""))
    ]
    messages = request.messages
    question = messages[-1].content[-1] if messages and messages[-1].content else None
    opening = messages[0].content if messages and messages[0].role == "user" else []
    texts = [b.text for b in opening if isinstance(b, ContentBlock) and b is not question]
    texts += [b.text for b in request.system]
    found += [
        (m["id"], m["title"]) for t in texts for p in (_VIDEO_NOTE, _VIDEO_HEADER) for m in p.finditer(t)
    ]
    titles: dict[str, str] = {}
    for video_id, title in found:
        titles.setdefault(video_id, title)
    return list(titles.items())


def read_documents(documents: Sequence[DocumentBlock]) -> DocumentLines:
    """Every document's caption lines in order. A part that starts with the lines the previous
    ones ended with (overlapping windows) adds only its new lines."""
    lines: list[CaptionLine] = []
    parts: list[_Part] = []
    for d, document in enumerate(documents):
        opening = len(lines)
        for p, text in enumerate(document.parts):
            found = _part_lines(text)
            raws = [raw for raw, _ in found]
            known = [line.raw for line in lines[opening:]]
            shared = next(
                (k for k in range(min(len(known), len(raws)), 0, -1) if known[len(known) - k :] == raws[:k]),
                0,
            )
            parts.append(_Part(d, p, len(lines) - shared, tuple(span for _, span in found)))
            for raw, _ in found[shared:]:
                timed = TIMESTAMP_LINE.match(raw)
                said, stamp = (timed["text"], timed["ts"]) if timed else (raw, None)
                lines.append(CaptionLine(said, stamp, d, raw))
    titles = [" ".join(d.title.split()) or f"Document {i + 1}" for i, d in enumerate(documents)]
    return DocumentLines(lines, titles, parts, [d.parts for d in documents])


Piece = str | CitationDelta  # an answer: its text, each citation just before the text it supports


def answer_from_documents(
    question: str, documents: Sequence[DocumentBlock], *, limit: int = CHAT_QUOTES
) -> list[Piece]:
    """Quote the documents' caption lines that best match the question, each quote naming its
    video and time and preceded by its citation: the one window (part) that holds all its lines,
    and those lines as the window has them."""
    wanted = set(content_words(question))
    if not wanted:
        return [NO_QUESTION_ANSWER]
    read = read_documents(documents)
    texts = [line.text for line in read.lines]
    runs = best_runs(wanted, texts, lambda f, s: read.part_holding(f, s) is not None, limit=limit)
    if not runs:
        return [NO_MATCH_ANSWER]
    pieces: list[Piece] = [f"{CHAT_NOTE}\n\n"]
    for number, (first, size) in enumerate(runs, start=1):
        run = read.lines[first : first + size]
        if citation := read.citation(first, size):
            pieces.append(citation)
        stamp = f" [{run[0].timestamp}]" if run[0].timestamp else ""
        quote = " ".join(line.text for line in run)
        ending = "\n" if number < len(runs) else ""
        pieces.append(f'- {read.titles[run[0].document]}{stamp}: "{quote}"{ending}')
    return pieces


def _part_lines(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The part's non-blank lines, stripped, each with where it sits in ``text``."""
    found: list[tuple[str, tuple[int, int]]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        raw = line.strip()
        if raw:
            start = offset + len(line) - len(line.lstrip())
            found.append((raw, (start, start + len(raw))))
        offset += len(line)
    return found
