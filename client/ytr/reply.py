"""One reply as its events arrive, on any transport: the text printed, the tool lines shown, an
approval answered, the artifacts it wrote told, its sources listed once the text is done, and the
result (``ChatResult``) with its exit code and ``--json`` form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ytr.artifacts_view import ArtifactView
from ytr.citations_view import Citations, SourcesView
from ytr.errors import EXIT_CANCELLED, EXIT_OK, CliError, exit_for_code
from ytr.render import Output, StreamedText
from ytr.tool_view import TOOL_EVENTS, Approvals, ToolView

FINAL_STATUSES = ("complete", "cancelled", "failed")


@dataclass
class ChatResult:
    transport: str
    status: str  # complete | cancelled | failed
    text: str
    request_id: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    limits: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "complete":
            return EXIT_OK
        if self.status == "cancelled":
            return EXIT_CANCELLED
        error = self.error or {}
        return exit_for_code(str(error.get("code") or "ERROR"), bool(error.get("retryable")))

    def error_line(self) -> CliError | None:
        if self.status != "failed":
            return None
        error = self.error or {}
        code = str(error.get("code") or "CHAT_FAILED")
        return CliError(code, str(error.get("message") or "the reply failed"), self.exit_code)

    def as_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "request_id": self.request_id,
            "message_id": self.message_id,
            "status": self.status,
            "text": self.text,
            "stop_reason": self.stop_reason,
            "usage": self.usage,
            "error": self.error,
            "tool_calls": self.tool_calls,
            "limits": self.limits,
            "citations": self.citations,
            "artifacts": self.artifacts,
        }


@dataclass
class ReplyFollower:
    """Turns stream events (SSE or WebSocket frames) of one reply into printed text, tool lines,
    its sources and a result. ``respond`` sends the answer to an ``approval_required`` (set by the transport
    once the request is known; None: this transport cannot answer). ``session_id`` goes in the
    command an artifact's line shows."""

    transport: str
    text: StreamedText
    out: Output
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    noted: set[str] = field(default_factory=set)
    approvals: Approvals = field(default_factory=Approvals)
    respond: Callable[[str, bool], None] | None = None
    view: ToolView = field(init=False)
    answered: set[str] = field(default_factory=set)
    citations: Citations = field(default_factory=Citations)
    sources: SourcesView = field(init=False)
    session_id: str = ""
    artifacts: ArtifactView = field(init=False)

    def __post_init__(self) -> None:
        self.view = ToolView(self.out, text=self.text, show=not self.out.json_mode)
        self.sources = SourcesView(self.out, text=self.text, show=not self.out.json_mode)
        self.artifacts = ArtifactView(self.view, self.session_id)

    def apply(self, kind: str, data: dict[str, Any]) -> ChatResult | None:
        if kind == "token":
            self.view.before_text()
            self.text.add(str(data.get("text") or ""))
        elif kind == "citation":
            self.citations.add(data)  # listed once the text is done, never inside it
        elif kind == "artifact":
            self.artifacts.apply(data)
        elif kind in TOOL_EVENTS:
            self.view.apply(kind, data)
            if kind == "approval_required":
                self.answer(data)
        elif kind == "stage":
            pending = [v for v in data.get("pending_video_ids") or [] if v not in self.noted]
            if pending:
                self.noted.update(pending)
                self.out.note(f"note: still ingesting {', '.join(pending)}; this answer cannot use them yet")
        elif kind == "usage":
            self.usage = {k: v for k, v in data.items() if k not in ("type", "id", "request_id")}
        elif kind in ("complete", "cancelled", "error"):
            self.view.finish()
            self.text.settle(data.get("text"))
            status = {"complete": "complete", "cancelled": "cancelled", "error": "failed"}[kind]
            error = None
            if kind == "error":
                error = {k: data.get(k) for k in ("code", "message", "retryable")}
            return ChatResult(
                self.transport,
                status,
                str(data.get("text") if data.get("text") is not None else self.text.shown),
                request_id=self.request_id,
                message_id=str_or_none(data.get("message_id")),
                stop_reason=data.get("stop_reason"),
                usage=self.usage,
                error=error,
            )
        return None

    def answer(self, data: dict[str, Any]) -> None:
        """Decide on a call waiting for approval (once per call) and send the decision."""
        call_id = str(data.get("call_id") or "")
        if not call_id or call_id in self.answered:
            return
        self.answered.add(call_id)
        if self.respond is None:
            self.view.note(
                f"note: {self.transport} cannot answer approvals; the call waits and is refused in time"
            )
            return
        approved = self.approvals.decide(self.view, data)
        try:
            self.respond(call_id, approved)
        except CliError as exc:
            # 409: decided already (the timeout); 404: no longer waiting. The `approval` event says.
            self.view.note(f"note: the answer was not taken: {exc.message} ({exc.code})")

    def replay(self, stored: list[dict[str, Any]] | None) -> None:
        """Show the calls a saved reply made (and the artifacts they saved), before its text."""
        self.view.replay(stored, between=self.artifacts.stored)

    def done(self, result: ChatResult) -> ChatResult:
        """The result with the tool calls, limits, artifacts and citations seen, their lines
        finished and the sources listed."""
        self.view.finish()
        self.sources.render(self.citations)
        result.tool_calls = self.view.as_json()
        result.limits = list(self.view.limits)
        result.citations = list(self.citations.received)
        result.artifacts = self.artifacts.as_json()
        return result

    def from_status(self, state: dict[str, Any]) -> ChatResult:
        """A result from `GET /v1/requests/{id}` (polling, and after a cancel)."""
        text = str(state.get("text") or "")
        self.text.settle(text)
        status = str(state.get("status"))
        return ChatResult(
            self.transport,
            status if status in FINAL_STATUSES else "failed",
            text,
            request_id=self.request_id,
            message_id=str_or_none(state.get("message_id")),
            usage=self.usage,
            error=state.get("error")
            or (None if status in FINAL_STATUSES else {"code": "UNFINISHED", "message": f"status {status}"}),
        )


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
