"""What the model reads of the session's videos, and how its citations map back to them.

Each ready video is one citable document whose parts are transcript windows (``windows``), so a
citation names windows and therefore a time range of one video. When every selected transcript
fits the full-context budget, each document holds all of its video's windows (cached, so follow-up
turns reread them cheaply). Otherwise each video's summary is given and the documents hold only the
windows the transcript index finds for the question and the recent turns, so the prompt stays
bounded whatever the number and length of the videos, and any minute of any video is reachable.

A citation becomes ``{video_id, title, start, end, quote, url}`` only when it points at parts the
request sent and quotes their text; anything else is dropped and never reaches the person.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ytresearch.config import Settings
from ytresearch.db.models import Video
from ytresearch.ports import ChatModel, CitationDelta, DocumentBlock
from ytresearch.repository import Repository
from ytresearch.windows import Window, timestamp, transcript_windows

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_LINE_TIME = re.compile(r"^\[(?:\d+:)?\d{1,2}:\d{2}\] ", re.MULTILINE)  # a caption line's "[mm:ss] "


@dataclass(frozen=True)
class Source:
    """One document of the request: which video, and the windows its parts are, in order."""

    video_id: str
    title: str | None
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class Sources:
    documents: list[DocumentBlock]
    sources: tuple[Source, ...]  # in the documents' order: a citation's document_index
    mode: Literal["full", "retrieved", "none"]
    note: str = ""  # said about videos none of whose windows were retrieved


def video_context(video: Video) -> str:
    """What is said about a video beside its passages (not citable): who, how long, the summary."""
    facts = [f"YouTube video {video.id}"]
    if video.channel:
        facts.append(f"by {video.channel}")
    if video.duration_seconds:
        facts.append(f"{timestamp(video.duration_seconds)} long")
    summary = (video.summary or "").strip()
    return ", ".join(facts) + (f". Summary: {summary}" if summary else ".")


def _document(video: Video, windows: Sequence[Window], *, cache: bool) -> DocumentBlock:
    return DocumentBlock(
        title=video.title or video.id,
        parts=tuple(w.text for w in windows),
        context=video_context(video),
        cache=cache,
    )


def build_sources(
    repo: Repository, model: ChatModel, settings: Settings, videos: Sequence[Video], queries: Sequence[str]
) -> Sources:
    """The documents for ``videos`` (ready ones, in the session's order): whole when they fit
    ``context_full_budget_tokens``, else the windows retrieved for ``queries``."""
    ready = [v for v in videos if v.status == "ready" and v.transcript_segments]
    if not ready:
        return Sources([], (), "none")
    if sum(_whole_size(model, video) for video in ready) <= settings.context_full_budget_tokens:
        whole = [(video, transcript_windows(video.transcript_segments or [])) for video in ready]
        documents = [_document(v, ws, cache=i == len(whole) - 1) for i, (v, ws) in enumerate(whole)]
        return Sources(documents, tuple(Source(v.id, v.title, tuple(ws)) for v, ws in whole), "full")
    return _retrieved(repo, model, settings, ready, queries)


def _whole_size(model: ChatModel, video: Video) -> int:
    """About how many tokens a video's windows take, without cutting them: its text, each line's
    "[mm:ss] " (about 3 tokens), and the windows' overlap (about a fifth of every window)."""
    lines = len(video.transcript_segments or [])
    return (model.count_tokens(video.transcript_text or "") + 3 * lines) * 6 // 5


def _retrieved(
    repo: Repository, model: ChatModel, settings: Settings, ready: Sequence[Video], queries: Sequence[str]
) -> Sources:
    ids = [v.id for v in ready]
    scores: dict[tuple[str, int], float] = {}
    found: dict[tuple[str, int], Window] = {}
    for weight, query in zip((1.0, 0.5, 0.25, 0.25), queries, strict=False):
        for row, score in repo.search_windows(ids, query, settings.retrieval_windows):
            key = (row.video_id, row.seq)
            scores[key] = scores.get(key, 0.0) + weight * score
            found[key] = Window(row.seq, row.start_seconds, row.end_seconds, row.text)
    budget = settings.retrieval_budget_tokens
    chosen: dict[str, list[Window]] = {}
    for key in sorted(scores, key=lambda k: (-scores[k], k)):
        window = found[key]
        cost = model.count_tokens(window.text)
        if cost > budget:
            continue
        budget -= cost
        chosen.setdefault(key[0], []).append(window)
        if sum(len(ws) for ws in chosen.values()) >= settings.retrieval_windows:
            break
    with_passages = [v for v in ready if v.id in chosen]
    documents: list[DocumentBlock] = []
    sources: list[Source] = []
    for video in with_passages:
        windows = sorted(chosen[video.id], key=lambda w: w.seq)
        documents.append(_document(video, windows, cache=False))
        sources.append(Source(video.id, video.title, tuple(windows)))
    others = [v for v in ready if v.id not in chosen]
    note = ""
    if others:
        lines = [f'- "{v.title or v.id}" ({video_context(v)})' for v in others]
        note = "No passage of these videos matched the question; what they are about:\n" + "\n".join(lines)
    return Sources(documents, tuple(sources), "retrieved", note)


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _quoted_from(windows: Sequence[Window], quote: str) -> float:
    """When the quote starts: the time of the first caption line it quotes (the window's start
    when no whole line is found in it), so the link opens at the words, not the window."""
    said = _normal(_LINE_TIME.sub("", quote))
    for window in windows:
        for line in window.text.splitlines():
            stamp = _LINE_TIME.match(line)
            words = _normal(line[stamp.end() :] if stamp else line)
            if stamp and words and said.startswith(words):
                *hours, minutes, seconds = (int(x) for x in stamp.group(0)[1:-2].split(":"))
                at = (hours[0] if hours else 0) * 3600 + minutes * 60 + seconds
                return float(max(at, int(window.start)))
    return windows[0].start


def cite(sources: Sequence[Source], delta: CitationDelta) -> dict[str, Any] | None:
    """The citation as the person sees it, or None when it does not match what the request sent
    (a document or a part that is not there, or a quote that is not in those parts)."""
    if not 0 <= delta.document_index < len(sources):
        log.info("dropped a citation of document %d (of %d)", delta.document_index, len(sources))
        return None
    source = sources[delta.document_index]
    if not 0 <= delta.start_part < delta.end_part <= len(source.windows):
        log.info("dropped a citation of parts %d..%d", delta.start_part, delta.end_part)
        return None
    windows = source.windows[delta.start_part : delta.end_part]
    quote = delta.cited_text.strip()
    if quote and _normal(quote) not in _normal("\n".join(w.text for w in windows)):
        log.info("dropped a citation whose quote is not in the parts it names")
        return None
    start = _quoted_from(windows, quote) if quote else windows[0].start
    quote = " ".join(_LINE_TIME.sub("", quote).split())  # the words, without the lines' times
    return {
        "video_id": source.video_id,
        "title": source.title,
        "start": start,
        "end": windows[-1].end,
        "quote": quote,
        "url": f"https://www.youtube.com/watch?v={source.video_id}&t={int(start)}",
    }
