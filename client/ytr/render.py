"""What the CLI prints: plain text for people (tables, a progress bar, streamed answers) or one
JSON document for scripts. Errors are one line on stderr."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from ytr.errors import CliError

INGEST_STAGES = ("validating", "fetching_transcript", "fetching_metadata", "summarising", "storing")


class Output:
    def __init__(
        self, *, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
    ):
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    @property
    def is_tty(self) -> bool:
        try:
            return self.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def unicode(self) -> bool:
        return (getattr(self.stdout, "encoding", None) or "").lower().replace("-", "") == "utf8"

    def write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def result(self, data: Any, human: str | Callable[[], None]) -> int:
        """A command's result: ``data`` as JSON with --json, else a line or a rendering; exit 0."""
        if self.json_mode:
            self.json(data)
        elif callable(human):
            human()
        else:
            self.line(human)
        return 0

    def note(self, text: str) -> None:
        """Status for people (stderr), never mixed into the answer or the JSON."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def json(self, document: Any) -> None:
        self.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")

    def error(self, error: CliError) -> None:
        if self.json_mode:
            with contextlib.suppress(OSError, ValueError):
                self.json(error.as_json())
        self.stderr.write(error.line() + "\n")
        self.stderr.flush()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")
# A whole terminal escape sequence: CSI (``ESC [ ... m``, ``0x9b ... m``), OSC (``ESC ] ... BEL``),
# or ESC and the rest of a short one.
_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -/]*[0-~]?)"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
)
_LINE_END = re.compile(r"\r\n?")


def clean(text: Any) -> str:
    """One line of plain text: control characters (escape sequences, bidi overrides) and line
    breaks become spaces."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", str(text))).strip()


def clean_text(text: Any) -> str:
    """Text of many lines (a document): whole escape sequences and every other control character
    (bidi overrides too) go; line breaks (``\\r\\n`` and ``\\r`` as ``\\n``) and tabs stay."""
    kept = _LINE_END.sub("\n", _ESCAPE.sub("", str(text)))
    return _CONTROL.sub(lambda m: "".join(c for c in m.group() if c in "\n\t"), kept)


def shorten_line(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


class StreamedText:
    """An answer printed as it arrives; remembers what was shown so a resumed or cancelled reply
    prints only what is missing."""

    def __init__(self, out: Output, *, show: bool = True) -> None:
        self.out = out
        self.show = show
        self.shown = ""
        self.line_open = False  # the last character written was not a line break

    def add(self, delta: str) -> None:
        if not delta:
            return
        self.shown += delta
        if self.show:
            # Model text quotes strangers (titles, transcripts): no escape sequence reaches the
            # terminal (one split over two deltas loses its ESC, so it can do nothing).
            self.out.write(clean_text(delta))
            self.line_open = not delta.endswith("\n")

    def settle(self, full_text: str | None) -> None:
        """Print whatever of the server's final text was not printed yet."""
        if full_text and full_text.startswith(self.shown):
            self.add(full_text[len(self.shown) :])

    def end_line(self) -> None:
        if self.show and self.line_open:
            self.out.write("\n")
            self.line_open = False

    def break_line(self) -> None:
        """End the answer's unfinished line (on a terminal, before a status line goes below it);
        the answer goes on on the next line. ``shown`` is unchanged."""
        self.end_line()


class IngestProgress:
    """The 5 ingest stages: a one-line bar redrawn in place on a terminal, else one plain line
    per stage (in order, even when a stage went by between two updates)."""

    def __init__(self, out: Output, video_id: str, *, enabled: bool = True) -> None:
        self.out = out
        self.video_id = video_id
        self.enabled = enabled
        self.tty = out.is_tty
        self.printed: set[str] = set()
        self.told: set[str] = set()  # stages whose findings were printed
        self.stages: Sequence[str] = INGEST_STAGES
        self.drawn = False

    def update(self, job: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.stages = job.get("stages") or self.stages
        done = set(job.get("stages_done") or [])
        current = job.get("stage")
        if job.get("status") == "done":
            done |= set(self.stages)
        if self.tty:
            self._draw(done, current, str(job.get("status") or ""), clean(job.get("message") or ""))
            return
        finished, message = job.get("done"), clean(job.get("message") or "")

        def tell(stage: str) -> None:
            """What a stage found, under its line (once: a resumed stream repeats nothing)."""
            if stage == finished and message and stage not in self.told:
                self.told.add(stage)
                self.out.line(f"      {message}")

        if finished in self.printed:
            tell(finished)
        for index, stage in enumerate(self.stages, 1):
            if stage in self.printed:
                continue
            if stage in done or stage == current:
                self.printed.add(stage)
                self.out.line(f"[{index}/{len(self.stages)}] {label(stage)}")
                tell(stage)
            else:
                break

    def _draw(self, done: set[str], current: str | None, status: str, message: str = "") -> None:
        full, part, empty = ("█", "▒", "░") if self.out.unicode else ("#", ">", "-")
        cells = "".join(full if s in done else part if s == current else empty for s in self.stages)
        count = sum(1 for s in self.stages if s in done)
        what = "done" if status == "done" else label(current) if current else status or "queued"
        if message and status != "done":
            what += f" ({shorten_line(message, 60)})"
        self.out.write(f"\r\x1b[2K{self.video_id} [{cells}] {count}/{len(self.stages)} {what}")
        self.drawn = True

    def finish(self) -> None:
        if self.enabled and self.tty and self.drawn:
            self.out.write("\n")
            self.drawn = False


def label(stage: str | None) -> str:
    return (stage or "").replace("_", " ")


def fmt_time(value: Any) -> str:
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def table(out: Output, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) if c is not None else "" for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    out.line(fmt(list(headers)))
    for row in cells:
        out.line(fmt(row))


def session_line(session: dict[str, Any]) -> list[Any]:
    return [session.get("id"), fmt_time(session.get("created_at")), session.get("title")]


def video_rows(out: Output, videos: Sequence[dict[str, Any]]) -> None:
    table(
        out,
        ("VIDEO", "STATUS", "TITLE"),
        [[v.get("id"), v.get("status"), v.get("title") or v.get("error_code") or ""] for v in videos],
    )


def render_session(out: Output, session: dict[str, Any]) -> None:
    out.line(str(session.get("title") or "Untitled session"))
    out.line(f"id:       {session.get('id')}")
    out.line(f"created:  {fmt_time(session.get('created_at'))}")
    videos = session.get("videos") or []
    out.line(f"videos:   {len(videos)}")
    if videos:
        out.line()
        video_rows(out, videos)


def render_video(out: Output, video: dict[str, Any], *, transcript: bool = False) -> None:
    out.line(str(video.get("title") or video.get("id")))
    facts = [
        str(video.get("channel") or ""),
        fmt_duration(video.get("duration_seconds")),
        f"published {fmt_time(video.get('published_at'))[:10]}" if video.get("published_at") else "",
    ]
    line = " · ".join(f for f in facts if f)
    if line:
        out.line(line)
    out.line(str(video.get("url") or f"https://www.youtube.com/watch?v={video.get('id')}"))
    status = video.get("status")
    if status != "ready":
        out.line(f"status: {status}")
    if video.get("error_code"):
        out.line(f"error: {video.get('error_message') or 'ingest failed'} ({video.get('error_code')})")
    if video.get("summary"):
        out.line()
        out.line(str(video["summary"]).rstrip())
    if transcript:
        out.line()
        language = video.get("transcript_language") or "unknown language"
        kind = ", generated" if video.get("transcript_is_generated") else ""
        out.line(f"Transcript ({language}{kind}):")
        out.line(str(video.get("transcript_text") or "(no transcript)").rstrip())


def render_job(out: Output, job: dict[str, Any]) -> None:
    out.line(f"job:     {job.get('id')}")
    out.line(f"video:   {job.get('video_id')}")
    out.line(f"status:  {job.get('status')}" + (f" ({label(job.get('stage'))})" if job.get("stage") else ""))
    done = set(job.get("stages_done") or [])
    stages = job.get("stages") or INGEST_STAGES
    marks = []
    for stage in stages:
        mark = "x" if stage in done else ">" if stage == job.get("stage") else " "
        marks.append(f"[{mark}] {label(stage)}")
    out.line("stages:  " + "  ".join(marks))
    if job.get("error_code"):
        out.line(f"error:   {job.get('error_message') or ''} ({job.get('error_code')})")
    out.line(f"updated: {fmt_time(job.get('updated_at'))}")


def render_messages(out: Output, messages: Sequence[dict[str, Any]]) -> None:
    """Messages in reading order (the caller passes them oldest first)."""
    for index, m in enumerate(messages):
        if index:
            out.line()
        who = "you" if m.get("role") == "user" else "assistant"
        extra = []
        if m.get("role") == "assistant" and m.get("model"):
            extra.append(str(m["model"]))
        if m.get("status") and m.get("status") != "complete":
            extra.append(f"[{m['status']}]")
        if m.get("video_ids") and m.get("role") == "user":
            extra.append("videos: " + ",".join(m["video_ids"]))
        head = f"── {who} · {fmt_time(m.get('created_at'))}" + (" · " + " ".join(extra) if extra else "")
        out.line(head if out.unicode else head.replace("──", "--").replace("·", "|"))
        out.line(str(m.get("content") or "").rstrip())
