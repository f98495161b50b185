"""How `ytr chat` and `ytr shell` show the moments a reply cited: after its text, on stderr (like
the tool lines, so stdout carries only the answer), one numbered source per line in the order of
first use, de-duplicated by (video, start second), its quote shortened below it::

    Sources:
    [1] Solar panels explained — 01:05  https://www.youtube.com/watch?v=SoLarP4nels&t=65
        "Photons knock electrons loose in the silicon, and that flow is the current…"

Titles and quotes come from strangers on YouTube and from the model: they are cleaned of control
characters (no terminal escapes) and kept to one line, and reduced to ASCII when the stream is not
UTF-8. The link is built from the video id and the second when both are sound.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, TextIO

from ytr.render import Output, StreamedText, clean

QUOTE_WIDTH = 80  # characters of a quote shown under its source
TITLE_WIDTH = 100
TRANSPORT_KEYS = ("type", "id", "request_id")  # WebSocket frame fields, not the citation's
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def clock(seconds: Any) -> str:
    """``mm:ss``, or ``h:mm:ss`` from one hour on (the server's own timestamps); "" when unknown."""
    second = start_second(seconds)
    if second is None:
        return ""
    hours, rest = divmod(second, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def start_second(value: Any) -> int | None:
    """A start time as whole seconds; None unless a finite number at or after 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        return None
    return int(value)


def watch_url(citation: dict[str, Any]) -> str:
    """The video at the cited second, built from its id and start; else the given url, cleaned."""
    video_id, second = str(citation.get("video_id") or ""), start_second(citation.get("start"))
    if _VIDEO_ID.match(video_id) and second is not None:
        return f"https://www.youtube.com/watch?v={video_id}&t={second}"
    url = clean(citation.get("url") or "")
    return url if url.startswith(("https://", "http://")) else ""


def ascii_only(text: str) -> str:
    """Accents dropped (``é`` → ``e``), anything else outside ASCII as ``?``."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.encode("ascii", "replace").decode("ascii")


def shorten_words(text: str, width: int, more: str) -> str:
    """At most ``width`` characters, cut between words when one ends in its second half."""
    if len(text) <= width:
        return text
    cut = text[: max(0, width - len(more)) + 1]
    space = cut.rfind(" ")
    kept = cut[:space] if space > width // 2 else cut[:-1]
    return kept.rstrip(" ,;:.") + more


def _utf8(stream: Any) -> bool:
    return (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(frozen=True)
class Source:
    """One cited moment as shown: its number, what it is, where it links, what it says."""

    number: int
    video_id: str
    title: str
    at: str  # mm:ss
    url: str
    quote: str


@dataclass
class Citations:
    """The citations of one reply as they arrive (``add``) or as saved (``extend``): the list as
    received (for ``--json``) and the numbered, de-duplicated sources (what is printed)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    _numbers: dict[tuple[str, int], int] = field(default_factory=dict)

    def add(self, data: dict[str, Any]) -> int | None:
        """Record one citation; its source's number (None when it names no video)."""
        citation = {k: v for k, v in data.items() if k not in TRANSPORT_KEYS}
        self.received.append(citation)
        video_id = clean(citation.get("video_id") or "")
        if not video_id:
            return None
        start = citation.get("start")
        second = start_second(start)
        key = (video_id, -1 if second is None else second)  # the second its link opens at
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self.sources) + 1
            self.sources.append(
                Source(
                    number,
                    video_id,
                    clean(citation.get("title") or "") or video_id,
                    clock(start),
                    watch_url(citation),
                    clean(citation.get("quote") or ""),
                )
            )
        return number

    def extend(self, stored: Any) -> None:
        """The citations a saved reply carries (``[{video_id, title, start, …, at}]``)."""
        for item in stored if isinstance(stored, list) else []:
            if isinstance(item, dict):
                self.add(item)


class SourcesView:
    """Prints a reply's sources on the notes stream (stderr) once its text is done.

    When both streams are the same terminal, the answer's open line is ended first so the two never
    share a line; a pipe on stdout gets nothing but the answer. ``show=False`` (``--json``) prints
    nothing."""

    def __init__(self, out: Output, *, text: StreamedText | None = None, show: bool = True) -> None:
        self.out = out
        self.stream: TextIO = out.stderr
        self.text = text
        self.show = show
        self.unicode = _utf8(self.stream)

    def lines(self, citations: Citations) -> list[str]:
        dash, more = ("—", "…") if self.unicode else ("-", "...")
        found: list[str] = []
        for source in citations.sources:
            head = f"[{source.number}] {shorten_words(source.title, TITLE_WIDTH, more)}"
            if source.at:
                head += f" {dash} {source.at}"
            if source.url:
                head += f"  {source.url}"
            found.append(head)
            if source.quote:
                found.append(f'    "{shorten_words(source.quote, QUOTE_WIDTH, more)}"')
        return found if self.unicode else [ascii_only(line) for line in found]

    def render(self, citations: Citations) -> None:
        if not self.show or not citations.sources:
            return
        if self.text is not None and _isatty(self.stream) and self.out.is_tty:
            self.text.break_line()
        self.stream.write("Sources:\n" + "".join(line + "\n" for line in self.lines(citations)))
        self.stream.flush()
