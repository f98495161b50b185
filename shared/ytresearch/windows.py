"""Transcript windows: a transcript cut into overlapping runs of whole caption lines, the unit the
transcript index stores and searches and a reply cites (a window is a time range of one video).

Pure and deterministic: the same segments always give the same windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Window:
    """Caption lines ``seq`` (0-based, in time order) of a video, from ``start`` to ``end``
    seconds. ``text`` holds the lines, one per line, each prefixed with its ``[mm:ss]`` time."""

    seq: int
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class _Line:
    start: float
    end: float
    text: str  # with its "[mm:ss] " prefix


def timestamp(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from one hour on (what the model is asked to cite)."""
    total = max(0, int(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def transcript_windows(
    segments: Sequence[dict[str, Any]],
    *,
    target_seconds: float = 75,
    overlap_seconds: float = 15,
    max_chars: int = 2000,
) -> list[Window]:
    """Cut caption segments (``{"text", "start", "duration"}``) into windows of about
    ``target_seconds`` (a window takes lines while they start less than ``target_seconds`` after
    its first one, so it lasts that plus its last line) that overlap the next window by about
    ``overlap_seconds`` (the next window starts at the first line starting in the last
    ``overlap_seconds`` of this one), so a passage cut by a window's end is whole in the next one.

    A caption line is never split, and a window's text never exceeds ``max_chars``, with one
    exception: a single line longer than that is a window of its own, whole. Lines without text
    are skipped; lines are taken in order of their start time."""
    if target_seconds <= 0 or max_chars <= 0 or not 0 <= overlap_seconds < target_seconds:
        raise ValueError("need target_seconds > overlap_seconds >= 0 and max_chars > 0")
    lines = _lines(segments)
    windows: list[Window] = []
    first = 0
    while first < len(lines):
        after = _window_end(lines, first, target_seconds, max_chars)  # lines[first:after]
        taken = lines[first:after]
        windows.append(
            Window(
                seq=len(windows),
                start=taken[0].start,
                end=max(line.end for line in taken),
                text="\n".join(line.text for line in taken),
            )
        )
        if after == len(lines):
            break
        first = _next_start(lines, first, after, windows[-1].end - overlap_seconds, target_seconds, max_chars)
    return windows


def _lines(segments: Sequence[dict[str, Any]]) -> list[_Line]:
    lines: list[_Line] = []
    for segment in segments:
        # One line each: newlines inside a caption become spaces; NUL cannot be stored in text.
        text = " ".join(str(segment.get("text") or "").replace("\x00", "").split())
        if not text:
            continue
        start = max(0.0, float(segment.get("start") or 0.0))
        duration = max(0.0, float(segment.get("duration") or 0.0))
        lines.append(_Line(start, start + duration, f"[{timestamp(start)}] {text}"))
    lines.sort(key=lambda line: line.start)  # stable: equal starts keep their order
    return lines


def _window_end(lines: Sequence[_Line], first: int, target_seconds: float, max_chars: int) -> int:
    """The index after the last line of the window that starts at ``first``."""
    chars = len(lines[first].text)
    after = first + 1
    while (
        after < len(lines)
        and lines[after].start - lines[first].start < target_seconds
        and chars + 1 + len(lines[after].text) <= max_chars
    ):
        chars += 1 + len(lines[after].text)
        after += 1
    return after


def _next_start(
    lines: Sequence[_Line], first: int, after: int, overlap_from: float, target_seconds: float, max_chars: int
) -> int:
    """Where the window after ``lines[first:after]`` starts: its first line starting at or after
    ``overlap_from``, never past ``after`` (no line is left out), and late enough that the new
    window still takes ``lines[after]`` (within its time and its characters), so every window
    brings a new line: after a long silence or a long line the next window overlaps less, or not
    at all."""
    start = next((i for i in range(first + 1, after) if lines[i].start >= overlap_from), after)
    chars = sum(len(line.text) + 1 for line in lines[start : after + 1]) - 1
    while start < after and (chars > max_chars or lines[after].start - lines[start].start >= target_seconds):
        chars -= len(lines[start].text) + 1
        start += 1
    return start
