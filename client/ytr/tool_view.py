"""How `ytr chat` and `ytr shell` show the research agent's tool events: a line per call
(``→ add_video https://youtu.be/…``), its progress (``  … fetching transcript``; redrawn in place on
a terminal), its result (``✓ added "Title"; it is ready`` / ``✗ VIDEO_NOT_FOUND: …``), approvals
and limits (``! limit reached: …``), with ASCII stand-ins when the stream is not UTF-8.

Every line goes to stderr (``Output.note``'s stream), so stdout carries only the reply's text.
The document tools' (create_artifact, revise_artifact) call lines leave their document out; the
``artifact`` events' lines are ``ytr.artifacts_view``'s, drawn through ``status`` and ``say``.
Tool inputs, titles and summaries come from the model and from strangers on YouTube: they are
cleaned of control characters (no terminal escapes) and kept to one line.

``Approvals`` decides on ``approval_required``: ``--yes`` allows, a terminal asks
``Allow add_video {"url": …}? [y/N]``, anything else denies.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ytr.render import Output, StreamedText, clean, label

TOOL_EVENTS = frozenset(
    {"tool_call", "tool_progress", "tool_result", "approval_required", "approval", "limit_reached"}
)
INPUT_WIDTH = 100  # characters of a tool's input shown on its call line
PROMPT_WIDTH = 300
BARE_INPUTS = frozenset({"url", "video", "query"})  # a lone one of these is shown as it is
# Tools whose input carries a whole document (told by ``artifact`` events): not on the call line.
ARTIFACT_TOOLS = frozenset({"create_artifact", "revise_artifact"})

_CLEAR_LINE = "\r\x1b[2K"


@dataclass(frozen=True)
class Symbols:
    call: str
    progress: str
    ok: str
    failed: str
    limit: str
    ask: str
    more: str  # what ends a shortened text


UNICODE = Symbols(call="→", progress="…", ok="✓", failed="✗", limit="!", ask="?", more="…")
ASCII = Symbols(call="->", progress="...", ok="[ok]", failed="[x]", limit="!", ask="?", more="...")


def call_input(name: str, tool_input: Any) -> Any:
    """What a call line shows of its input: a document tool's without its document."""
    if name in ARTIFACT_TOOLS and isinstance(tool_input, dict):
        return {k: v for k, v in tool_input.items() if k != "content"}
    return tool_input


def shorten(text: str, width: int, more: str = "…") -> str:
    return text if len(text) <= width else text[: max(0, width - len(more))].rstrip() + more


def input_json(tool_input: Any) -> str:
    return json.dumps(tool_input if tool_input is not None else {}, ensure_ascii=False, default=str)


def input_summary(tool_input: Any, width: int = INPUT_WIDTH, more: str = "…") -> str:
    """A call's input for people: a lone link, video or query as is (``https://youtu.be/…``),
    other flat inputs as ``key=value`` (``strategy=date``, ``url=… limit=5``), anything nested as
    compact JSON; empty when there is no input."""
    if not tool_input:
        return ""
    if isinstance(tool_input, dict) and all(_scalar(v) for v in tool_input.values()):
        if len(tool_input) == 1 and next(iter(tool_input)) in BARE_INPUTS:
            return shorten(clean(next(iter(tool_input.values()))), width, more)
        pairs = (f"{clean(k)}={_value(v)}" for k, v in tool_input.items())
        return shorten(" ".join(pairs), width, more)
    return shorten(clean(input_json(tool_input)), width, more)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _value(value: Any) -> str:
    if isinstance(value, str) and value and not re.search(r"[\s\"=]", value):
        return clean(value)
    return clean(json.dumps(value, ensure_ascii=False))


def _stored_error(item: dict[str, Any]) -> dict[str, Any]:
    """A saved failed call's error, from what the model read back (``content``)."""
    try:
        error = json.loads(str(item.get("content") or "")).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return error
    return {"code": "TOOL_FAILED", "message": item.get("summary") or "the tool failed"}


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _utf8(stream: Any) -> bool:
    return (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"


@dataclass
class ToolCallRecord:
    """One call as the reply's events told it (what `--json` prints)."""

    call_id: str
    name: str
    input: Any = None
    progress: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None  # {"required": true, "approved"?, "by"?}

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "name": self.name,
            "input": self.input if self.input is not None else {},
            "progress": self.progress,
            "result": self.result,
            "approval": self.approval,
        }


class ToolView:
    """Renders one reply's tool events on the notes stream (stderr) and remembers them.

    ``text`` is the reply's streamed text: when both streams are the same terminal, the answer's
    open line is ended before a tool line so the two never share a line. ``show=False`` (the
    `--json` mode) records without printing."""

    def __init__(self, out: Output, *, text: StreamedText | None = None, show: bool = True) -> None:
        self.out = out
        self.stream: TextIO = out.stderr
        self.text = text
        self.show = show
        self.tty = _isatty(self.stream)
        self.symbols = UNICODE if _utf8(self.stream) else ASCII
        self.calls: dict[str, ToolCallRecord] = {}
        self.limits: list[dict[str, Any]] = []
        self._open: str | None = None  # the call whose progress line is drawn in place (tty)

    # ------------------------------------------------------------------ events
    def apply(self, kind: str, data: dict[str, Any]) -> bool:
        """Show one event; False when it is not a tool event."""
        if kind == "tool_call":
            self.call(data)
        elif kind == "tool_progress":
            self.progress(data)
        elif kind == "tool_result":
            self.result(data)
        elif kind == "approval_required":
            self.approval_required(data)
        elif kind == "approval":
            self.approval(data)
        elif kind == "limit_reached":
            self.limit(data)
        else:
            return False
        return True

    def record(self, data: dict[str, Any]) -> ToolCallRecord:
        call_id = str(data.get("call_id") or "")
        found = self.calls.get(call_id)
        if found is None:
            found = self.calls[call_id] = ToolCallRecord(call_id, str(data.get("name") or "tool"))
        if data.get("name"):
            found.name = str(data["name"])
        if "input" in data:
            found.input = data.get("input")
        return found

    def call(self, data: dict[str, Any]) -> None:
        call = self.record(data)
        shown = input_summary(call_input(call.name, call.input), more=self.symbols.more)
        # Replacing the call's status line drawn in place, if any (an artifact being written).
        line = f"{self.symbols.call} {clean(call.name)}" + (f" {shown}" if shown else "")
        self._line(line, replacing=call.call_id)

    def progress(self, data: dict[str, Any]) -> None:
        call = self.record(data)
        step = {k: v for k, v in data.items() if k not in ("type", "id", "request_id", "call_id")}
        if call.progress and call.progress[-1] == step:
            return
        call.progress.append(step)
        what = clean(data.get("message") or label(str(data.get("stage") or "")))
        line = f"  {self.symbols.progress} {what}"
        if self.tty:
            self._draw(call.call_id, line)
        else:
            self._line(line)

    def result(self, data: dict[str, Any]) -> None:
        call = self.record(data)
        call.result = {k: data.get(k) for k in ("ok", "summary", "data", "error") if k in data}
        if data.get("ok"):
            line = f"{self.symbols.ok} {clean(data.get('summary') or 'done')}"
        else:
            found = data.get("error")
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            code = clean(error.get("code") or "TOOL_FAILED")
            message = clean(error.get("message") or data.get("summary") or "the tool failed")
            line = f"{self.symbols.failed} {code}: {message}"
        self._line(line, replacing=call.call_id)

    def approval_required(self, data: dict[str, Any]) -> None:
        call = self.record(data)
        call.approval = {"required": True}

    def decided(self, data: dict[str, Any], approved: bool, why: str) -> None:
        """A decision taken without asking (``--yes``, or no terminal to ask on)."""
        call = self.record(data)
        shown = input_summary(call_input(call.name, call.input), more=self.symbols.more)
        verdict = "allowed" if approved else "denied"
        name = clean(call.name) + (f" {shown}" if shown else "")
        self._line(f"{self.symbols.ask} {name} needs approval: {verdict} ({why})")

    def approval(self, data: dict[str, Any]) -> None:
        call = self.record(data)
        approved, by = bool(data.get("approved")), str(data.get("by") or "")
        call.approval = {**(call.approval or {"required": True}), "approved": approved, "by": by}
        if approved:
            self._line(f"  {self.symbols.ok} allowed")
        elif by == "timeout":
            self._line(f"  {self.symbols.failed} denied: no answer in time")
        else:
            self._line(f"  {self.symbols.failed} denied")

    def limit(self, data: dict[str, Any]) -> None:
        self.limits.append({k: data.get(k) for k in ("limit", "max", "message")})
        message = clean(data.get("message") or data.get("limit") or "a limit of this reply")
        maximum = data.get("max")
        self._line(
            f"{self.symbols.limit} limit reached: {message}" + (f" (max {maximum})" if maximum else "")
        )

    def note(self, text: str) -> None:
        """A status line of our own (e.g. a decision the server did not take); shown with --json
        too, like every note."""
        self._line(text, force=True)

    def status(self, key: str, line: str) -> None:
        """A line redrawn in place under ``key`` on a terminal (nothing elsewhere), ended like a
        progress line; a call line with ``key`` as its id replaces it."""
        if self.tty:
            self._draw(key, line)

    def say(self, line: str, *, replacing: str | None = None) -> None:
        """One line among the tool lines (not with --json), over ``replacing``'s status line."""
        self._line(line, replacing=replacing)

    # ------------------------------------------------------------------ stored calls
    def replay(
        self,
        stored: list[dict[str, Any]] | None,
        between: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Show the calls a saved reply made (the synchronous transport gets no events):
        ``{call_id, name, input, ok, summary}`` each; ``between`` sees each between its call and
        its result lines (an artifact's line)."""
        for item in stored or []:
            if not isinstance(item, dict):
                continue
            self.call(item)
            if between is not None:
                between(item)
            self.result(item if item.get("ok") else {**item, "error": _stored_error(item)})

    # ------------------------------------------------------------------ asking
    def ask(self, question: str, stdin: TextIO) -> str:
        """Ask on the terminal (the prompt on stderr, even with --json); the answer's line."""
        self._settle()
        self.stream.write(question)
        self.stream.flush()
        return stdin.readline()

    # ------------------------------------------------------------------ lines
    def before_text(self) -> None:
        """The answer goes on: end a progress line drawn in place."""
        self._end_progress()

    def finish(self) -> None:
        """The reply ended: end a progress line drawn in place."""
        self._end_progress()

    def as_json(self) -> list[dict[str, Any]]:
        return [call.as_json() for call in self.calls.values()]

    def _end_progress(self) -> None:
        if self._open is not None:
            self._open = None
            self._write("\n")

    def _settle(self) -> None:
        self._end_progress()
        # One terminal for both streams: the answer's unfinished line ends before ours begin.
        if self.text is not None and self.tty and self.out.is_tty:
            self.text.break_line()

    def _draw(self, call_id: str, line: str) -> None:
        if not self.show:
            return
        if self._open != call_id:
            self._settle()
        self._write(_CLEAR_LINE + line)
        self._open = call_id

    def _line(self, line: str, *, replacing: str | None = None, force: bool = False) -> None:
        if not (self.show or force):
            return
        if replacing is not None and self._open == replacing:
            self._open = None
            self._write(_CLEAR_LINE + line + "\n")
            return
        self._settle()
        self._write(line + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


@dataclass
class Approvals:
    """The answer to ``approval_required``: ``--yes`` allows every call, a terminal asks, and
    anything else (a pipe, a script) denies."""

    assume_yes: bool = False
    stdin: TextIO | None = None  # None: sys.stdin when asked

    def decide(self, view: ToolView, data: dict[str, Any]) -> bool:
        if self.assume_yes:
            view.decided(data, True, "--yes")
            return True
        stdin = self.stdin if self.stdin is not None else sys.stdin
        if not _isatty(stdin):
            view.decided(data, False, "not a terminal to ask on; --yes allows it")
            return False
        call = view.record(data)
        shown = shorten(clean(input_json(call.input)), PROMPT_WIDTH, view.symbols.more)
        answer = view.ask(f"Allow {clean(call.name)} {shown}? [y/N] ", stdin)
        return answer.strip().lower() in ("y", "yes")
