"""Artifacts the offline model makes: a comparison table, an outline or study notes of the
request's videos, for the ``create_artifact`` tool.

Asked for only in the person's own message ("make a comparison table", "compare the videos in a
table", "make an outline", "write study notes"). Built only from what the request holds about the
videos (titles, what is said about them, and their transcript lines with ``[mm:ss]`` times):
extracted, never written, and saying so on its first line. Text from the videos stays text; it is
only kept on one line where a line break would change the Markdown around it (a table row, a
heading).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ytresearch.llm.offline_quotes import (
    MARKUP_TAG,
    content_words,
    read_documents,
    request_documents,
    split_sentences,
)
from ytresearch.ports import ContentBlock, ModelRequest

MAX_CONTENT_CHARS = 20_000
MAX_TITLE_CHARS = 120
OFFLINE_NOTE = (
    "_Made by the offline model: extracted from the videos' titles, summaries and transcripts "
    "(no AI model was used)._"
)
STREAM_CHUNK_CHARS = 80  # a streamed input grows by a line, or this much of a long one

Kind = Literal["table", "outline", "notes"]
NAMES: dict[str, str] = {"table": "a comparison table", "outline": "an outline", "notes": "study notes"}

_KEY_POINT_CHARS = 240
_PASSAGE_WORDS = 25  # caption lines are joined into sentences of about this many words at most
_SUMMARY_BULLETS = 8
_KEY_MOMENTS = 5


def _ci(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_NOUN = (
    r"(?:(?P<table>comparison(?:\s+(?:table|matrix|grid))?|table|matrix|grid)"
    r"|(?P<outline>outline)"
    r"|(?P<notes>(?:study\s+)?notes|study\s+guide|cheat\s*sheet))\b"
)
# Up to three words between the article and the noun ("a detailed comparison table"), none that
# starts another phrase ("take a look at the table", "write down what the notes say").
_FILLER = (
    r"(?:(?!(?:about|at|by|of|on|for|from|with|in|into|to|and|or|like|that|if|is|are|was|were"
    r"|what|which|who|where|when|why|how)\b)[\w'-]+\s+){0,3}?"
)
_ARTIFACT_PATTERNS = (
    # "make a comparison table", "write me some study notes", "I'd like an outline"
    _ci(
        r"(?:make|create|build|write|produce|generate|draft|prepare|put\s+together|draw\s+up"
        r"|(?:give|get)\s+me|i\s+(?:want|need|would\s+like)|i'd\s+like)\s+(?:(?:me|us)\s+)?"
        rf"(?:(?:a|an|the|some|my|our)\s+)?{_FILLER}{_NOUN}"
    ),
    _ci(r"take\s+(?:some\s+)?(?P<notes>(?:study\s+)?notes)\b"),  # "take notes"
    # "compare the videos in a table", "show my videos as a table", "summarize them in an outline"
    _ci(
        r"(?:compare|contrast|show|list|display|present|make|put|turn|summari[sz]e|sum\s+up|lay\s+out"
        r"|organi[sz]e|arrange)\s+(?:[\w']+\s+){0,5}?(?:in|as|into|with|using)\s+"
        rf"(?:(?:a|an|some)\s+)?{_FILLER}{_NOUN}"
    ),
    # "outline the videos", "tabulate them"
    _ci(
        r"(?:(?P<outline>outline)|(?P<table>tabulate))\s+(?:(?:the|these|those|my|our|all|both|each)\s+)*"
        r"(?:videos?|talks?|them|it)\b"
    ),
)

_CONTEXT = re.compile(  # video_context() in services/sources.py
    r"YouTube video (?P<id>[A-Za-z0-9_-]{11})(?:, by (?P<channel>.*?))?"
    r"(?:, (?P<length>(?:\d+:)?\d{1,2}:\d{2}) long)?(?:\. Summary: (?P<summary>.*)|\.?)\s*$",
    re.DOTALL,
)
_NOTE_ENTRY = re.compile(r'^- "(?P<title>[^\n]*)" \((?=YouTube video [A-Za-z0-9_-]{11}\b)', re.MULTILINE)
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|#{1,6})\s+")
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*$")


def wanted_kind(clauses: Sequence[str]) -> Kind | None:
    """The artifact the person's message asks for, if it asks for one."""
    for clause in clauses:
        for pattern in _ARTIFACT_PATTERNS:
            if match := pattern.match(clause):
                found = match.groupdict()
                return "table" if found.get("table") else "outline" if found.get("outline") else "notes"
    return None


# ---------------------------------------------------------------- what the request says of its videos


@dataclass(frozen=True)
class ArtifactVideo:
    """One video as the request has it: each text on one line, passages with their times."""

    title: str
    video_id: str  # "" when the request does not say
    channel: str
    length: str  # "12:34" as said about the video; "" when not said
    span: str  # "00:05 to 12:30": the times of its first and last transcript lines here, if any
    summary: tuple[str, ...]  # its summary's sentences
    passages: tuple[tuple[str | None, str], ...]  # (time of the first caption line, sentence)


Videos = Sequence[ArtifactVideo]


def request_videos(request: ModelRequest) -> list[ArtifactVideo]:
    """The request's videos in order: its documents, then the videos its opening message's note
    lists without passages (retrieved mode). Never read from the person's question."""
    documents = request_documents(request)
    read = read_documents(documents)
    videos: list[ArtifactVideo] = []
    seen: set[str] = set()
    for d, document in enumerate(documents):
        lines = [(line.timestamp, line.text) for line in read.lines if line.document == d]
        context = _CONTEXT.match(document.context or "")
        if context:
            seen.add(context["id"])
        stamps = [stamp for stamp, _ in lines if stamp]
        span = f"{stamps[0]} to {stamps[-1]}" if stamps else ""
        videos.append(_video(read.titles[d], context, _passages(lines), span))
    messages = request.messages
    question = messages[-1].content[-1] if messages and messages[-1].content else None
    opening = messages[0].content if messages and messages[0].role == "user" else []
    for block in opening:
        if not isinstance(block, ContentBlock) or block is question:
            continue
        entries = list(_NOTE_ENTRY.finditer(block.text))
        for number, entry in enumerate(entries, start=1):
            end = entries[number].start() if number < len(entries) else len(block.text)
            context = _CONTEXT.match(block.text[entry.end() : end].rstrip().removesuffix(")"))
            if context and context["id"] not in seen:
                seen.add(context["id"])
                videos.append(_video(_one_line(entry["title"]) or context["id"], context, (), ""))
    return videos


def _video(
    title: str, context: re.Match[str] | None, passages: Sequence[tuple[str | None, str]], span: str
) -> ArtifactVideo:
    video_id = context["id"] if context else ""
    channel = _one_line(context["channel"]) if context and context["channel"] else ""
    length = context["length"] if context and context["length"] else ""
    summary = _summary_sentences(context["summary"] or "") if context else []
    return ArtifactVideo(_one_line(title), video_id, channel, length, span, tuple(summary), tuple(passages))


def _summary_sentences(summary: str) -> list[str]:
    """A summary's sentences, without list marks, headings or the offline model's own note."""
    sentences: list[str] = []
    for line in MARKUP_TAG.sub(" ", summary).splitlines():
        line = _LIST_MARK.sub("", line).strip()
        if line and not line.startswith(("Offline summary", "Offline model")):
            sentences += split_sentences(line)
    return sentences


def _passages(lines: Sequence[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Caption lines joined until one ends a sentence (or about 25 words when the captions have
    no punctuation), cut into sentences (long run-ons into word windows), each with the time of
    the first line of its run."""
    passages: list[tuple[str | None, str]] = []
    start: str | None = None
    words: list[str] = []
    for number, (stamp, text) in enumerate(lines, start=1):
        if not words:
            start = stamp
        words += text.split()
        if len(words) >= _PASSAGE_WORDS or _SENTENCE_END.search(text.strip()) or number == len(lines):
            passages += [(start, sentence) for sentence in split_sentences(" ".join(words))]
            words = []
    return passages


def _top_passages(video: ArtifactVideo, limit: int) -> list[tuple[str | None, str]]:
    """The ``limit`` passages whose words the video says most often (mean normalised frequency;
    short ones score nothing), in their order in the video."""
    words = [content_words(text) for _, text in video.passages]
    frequencies = Counter(w for ws in words for w in ws)
    top = max(frequencies.values(), default=1)
    scores = [
        sum(frequencies[w] / top for w in ws) / len(ws) if ws and len(text.split()) >= 4 else 0.0
        for ws, (_, text) in zip(words, video.passages, strict=True)
    ]
    chosen = sorted(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:limit])
    return [video.passages[i] for i in chosen]


# ---------------------------------------------------------------- the artifact


def artifact_input(kind: Kind, videos: Videos) -> dict[str, Any]:
    """The ``create_artifact`` input for ``videos``: its title, kind and Markdown content (with no
    videos, only the kind: there is nothing to make it from)."""
    if not videos:
        return {"kind": kind}
    if kind == "table":
        title, body = f"Comparison of {_count(videos)}", _table(videos)
    elif kind == "outline":
        more = f" and {len(videos) - 1} more" if len(videos) > 1 else ""
        title, body = f"Outline: {videos[0].title}{more}", _sections(videos, _outline_section)
    else:
        title, body = f"Study notes: {_count(videos)}", _sections(videos, _notes_section)
    return {"title": _one_line(title, MAX_TITLE_CHARS), "kind": kind, "content": body}


def announcement(kind: str) -> str:
    what = NAMES.get(kind, "a document")
    return f"Offline model: making {what} of the videos, extracted from their summaries and transcripts."


def no_videos(kind: Kind) -> str:
    return (
        f"Offline model: there are no videos with transcripts here to make {NAMES[kind]} from. "
        "Add a video and ask again once it is ready."
    )


def _table(videos: Sequence[ArtifactVideo]) -> str:
    channels = any(v.channel for v in videos)
    header = ["#", "Video", *(["Channel"] if channels else []), "Length", "Key point"]
    lines = [OFFLINE_NOTE, "", _row(header), _row(["---"] * len(header))]
    for number, video in enumerate(videos, start=1):
        span = f"{video.span} (transcript)" if video.span else "—"
        # Its summary's first sentence, else its transcript's most representative one (the
        # first is usually a greeting).
        sentences = video.summary or [text for _, text in _top_passages(video, 1)]
        key = _one_line(sentences[0], _KEY_POINT_CHARS) if sentences else "—"
        cells = [
            str(number),
            video.title,
            *([video.channel or "—"] if channels else []),
            video.length or span,
            key,
        ]
        lines.append(_row([_cell(c) for c in cells]))
    return _capped(lines, first_cut=4, total=len(videos))


def _sections(videos: Sequence[ArtifactVideo], section: Callable[[ArtifactVideo], list[str]]) -> str:
    lines = [OFFLINE_NOTE]
    starts: list[int] = []
    for video in videos:
        starts.append(len(lines))
        lines += ["", *section(video)]
    return _capped(lines, starts=starts, total=len(videos))


def _outline_section(video: ArtifactVideo) -> list[str]:
    limit = max(3, min(6, math.ceil(len(video.passages) / 10)))
    if points := _top_passages(video, limit):
        return [f"## {video.title}", "", *(_moment(video, stamp, text) for stamp, text in points)]
    # No transcript lines here (none matched the question): what its summary says, if anything.
    said = [f"- {s}" for s in video.summary[:limit]] or ["- (nothing about this video in this request)"]
    return [f"## {video.title}", "", "*From its summary:*", "", *said]


def _notes_section(video: ArtifactVideo) -> list[str]:
    lines = [f"## {video.title}"]
    facts = [fact for fact in (video.channel, video.length and f"{video.length} long") if fact]
    if facts:
        lines += ["", f"*{_inline(', '.join(facts))}*"]
    if video.summary:
        lines += ["", "### Summary", "", *(f"- {s}" for s in video.summary[:_SUMMARY_BULLETS])]
    if moments := _top_passages(video, _KEY_MOMENTS):
        lines += ["", "### Key moments", "", *(_moment(video, stamp, text) for stamp, text in moments)]
    return lines


def _moment(video: ArtifactVideo, stamp: str | None, text: str) -> str:
    """``- [01:03] what was said``, the time a link to that moment when the video's id is known."""
    if not stamp:
        return f"- {text}"
    if not video.video_id:
        return f"- [{stamp}] {text}"
    seconds = sum(int(part) * 60**i for i, part in enumerate(reversed(stamp.split(":"))))
    return f"- [{stamp}](https://www.youtube.com/watch?v={video.video_id}&t={seconds}s) {text}"


def _capped(lines: list[str], *, total: int, starts: Sequence[int] = (), first_cut: int = 0) -> str:
    """The lines as Markdown of at most MAX_CONTENT_CHARS, cut before the first video (a table
    row, or a section from ``starts``) that does not fit, saying how many were left out."""
    cuts = list(starts) if starts else list(range(first_cut, len(lines)))
    text = "\n".join(lines)
    if len(text) <= MAX_CONTENT_CHARS:
        return text
    for shown in range(len(cuts) - 1, -1, -1):
        left = total - shown
        note = f"_{left} more video{'s' if left != 1 else ''} left out: an artifact holds at most "
        note += f"{MAX_CONTENT_CHARS:,} characters._"
        kept = "\n".join([*lines[: cuts[shown]], "", note])
        if len(kept) <= MAX_CONTENT_CHARS:
            return kept
    return text[:MAX_CONTENT_CHARS]  # pragma: no cover - the note alone always fits


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(text: str) -> str:
    """A table cell: one line, its backslashes and pipes escaped so they stay in the cell."""
    return _one_line(text).replace("\\", "\\\\").replace("|", "\\|") or "—"


def _inline(text: str) -> str:
    return _one_line(text).replace("*", "\\*")


def _one_line(text: str, limit: int = 0) -> str:
    text = " ".join(text.split())
    return text[: limit - 1].rstrip() + "…" if limit and len(text) > limit else text


def _count(videos: Sequence[ArtifactVideo]) -> str:
    return "1 video" if len(videos) == 1 else f"{len(videos)} videos"


# ---------------------------------------------------------------- streaming the input


def input_prefixes(tool_input: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The input as a model writing it would have it so far: every field, its longest text cut
    at growing lengths (a line at a time, long lines ``STREAM_CHUNK_CHARS`` at a time), the last
    one whole."""
    texts = [key for key, value in tool_input.items() if isinstance(value, str)]
    if not texts:
        yield dict(tool_input)
        return
    key = max(texts, key=lambda k: len(tool_input[k]))
    value: str = tool_input[key]
    end = 0
    while True:
        newline = value.find("\n", end, end + STREAM_CHUNK_CHARS)
        end = min(len(value), newline + 1 if newline >= 0 else end + STREAM_CHUNK_CHARS)
        yield {**tool_input, key: value[:end]}
        if end >= len(value):
            return
