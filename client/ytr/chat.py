"""`ytr chat` over each transport: POST-then-SSE (default), WebSocket, polling and the synchronous
REST call, plus the interactive shell over one WebSocket.

Ctrl-C during a reply is a cancel: over REST (`POST /v1/requests/{id}/cancel`) or as a
``{"type": "cancel"}`` frame. The partial text the server saved is printed in full, then the
caller prints ``[cancelled]`` and exits 130. A second Ctrl-C leaves at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ytr.chat_socket import ChatSocket
from ytr.client import ApiClient
from ytr.errors import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    CliError,
    exit_for_code,
)
from ytr.render import Output, StreamedText

FINAL_STATUSES = ("complete", "cancelled", "failed")
TRANSPORTS = ("sse", "ws", "poll", "sync")
POLL_INTERVAL = 0.25
CANCEL_WAIT = 15.0


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
        }


@dataclass
class ReplyFollower:
    """Turns stream events (SSE or WebSocket frames) of one reply into printed text and a result."""

    transport: str
    text: StreamedText
    out: Output
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    noted: set[str] = field(default_factory=set)

    def apply(self, kind: str, data: dict[str, Any]) -> ChatResult | None:
        if kind == "token":
            self.text.add(str(data.get("text") or ""))
        elif kind == "stage":
            pending = [v for v in data.get("pending_video_ids") or [] if v not in self.noted]
            if pending:
                self.noted.update(pending)
                self.out.note(f"note: still ingesting {', '.join(pending)}; this answer cannot use them yet")
        elif kind == "usage":
            self.usage = {k: v for k, v in data.items() if k not in ("type", "id", "request_id")}
        elif kind in ("complete", "cancelled", "error"):
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
                message_id=_str_or_none(data.get("message_id")),
                stop_reason=data.get("stop_reason"),
                usage=self.usage,
                error=error,
            )
        return None

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
            message_id=_str_or_none(state.get("message_id")),
            usage=self.usage,
            error=state.get("error")
            or (None if status in FINAL_STATUSES else {"code": "UNFINISHED", "message": f"status {status}"}),
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@contextlib.contextmanager
def deferred_sigint(*, reraise: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C until the block is done (so a request we started is never lost track of),
    then raise it (or, with ``reraise=False``, drop it); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hits: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if hits and reraise:
        raise KeyboardInterrupt


def reconnect_note(out: Output) -> Callable[[int, CliError], None]:
    def note(attempt: int, cause: CliError) -> None:
        out.note(f"stream interrupted ({cause.message}); resuming (attempt {attempt})")

    return note


# ---------------------------------------------------------------------- transports


def chat_sse(
    client: ApiClient, session_id: str, message: str, video_ids: list[str] | None, follower: ReplyFollower
) -> ChatResult:
    try:
        with deferred_sigint():
            started = client.start_chat(session_id, message, video_ids)
            follower.request_id = str(started["request_id"])
        path = str(started.get("stream_url") or f"/v1/streams/{follower.request_id}")
        return follow_sse(client, path, follower)
    except KeyboardInterrupt:
        if follower.request_id is None:
            raise
        return cancel_over_rest(client, follower)


def follow_sse(
    client: ApiClient, path: str, follower: ReplyFollower, last_event_id: str | None = None
) -> ChatResult:
    for event in client.events(path, last_event_id=last_event_id, on_reconnect=reconnect_note(follower.out)):
        try:
            data = event.json()
        except ValueError:
            continue
        result = follower.apply(event.event, data if isinstance(data, dict) else {})
        if result is not None:
            return result
    raise CliError("STREAM_ENDED", "the stream ended before the reply did", EXIT_UNAVAILABLE)


def chat_poll(
    client: ApiClient,
    session_id: str,
    message: str,
    video_ids: list[str] | None,
    follower: ReplyFollower,
    interval: float = POLL_INTERVAL,
) -> ChatResult:
    try:
        with deferred_sigint():
            started = client.start_chat(session_id, message, video_ids)
            follower.request_id = str(started["request_id"])
        while True:
            state = client.request_status(follower.request_id)
            follower.text.settle(str(state.get("text") or ""))
            if state.get("status") in FINAL_STATUSES:
                return follower.from_status(state)
            time.sleep(interval)
    except KeyboardInterrupt:
        if follower.request_id is None:
            raise
        return cancel_over_rest(client, follower)


def chat_sync(
    client: ApiClient, session_id: str, message: str, video_ids: list[str] | None, follower: ReplyFollower
) -> ChatResult:
    try:
        reply = client.send_message(session_id, message, video_ids)
    except KeyboardInterrupt:
        follower.out.note(
            "note: a synchronous request cannot be cancelled; the server may still save the reply"
        )
        return ChatResult("sync", "cancelled", "")
    text = str(reply.get("content") or "")
    follower.text.add(text)
    status = str(reply.get("status") or "complete")
    error = None
    if status == "failed":
        code = reply.get("error_code") or "CHAT_FAILED"
        error = {"code": code, "message": "the reply failed", "retryable": False}
    return ChatResult(
        "sync",
        status,
        text,
        message_id=_str_or_none(reply.get("id")),
        stop_reason=reply.get("stop_reason"),
        usage=reply.get("usage"),
        error=error,
    )


def chat_ws(
    client: ApiClient, session_id: str, message: str, video_ids: list[str] | None, follower: ReplyFollower
) -> ChatResult:
    sock = client.websocket(session_id)
    try:
        if not sock.send_message(message, video_ids):
            raise CliError(
                "CONNECTION_LOST", "the WebSocket closed before the message was sent", EXIT_UNAVAILABLE
            )
        return follow_socket(client, sock, follower)
    finally:
        sock.close()


def follow_socket(client: ApiClient, sock: ChatSocket, follower: ReplyFollower) -> ChatResult:
    """Frames of one reply up to its terminal frame. Ctrl-C sends a cancel (as soon as the server
    has accepted the message) and keeps reading until the server confirms. If the socket drops
    mid-reply, the rest comes over SSE from the last event id seen."""
    cancel_wanted = cancel_sent = False
    last_id: str | None = None
    while True:
        try:
            frame = sock.receive()
            if frame is None:
                break
            kind = str(frame.get("type"))
            if kind == "accepted":
                follower.request_id = str(frame.get("request_id"))
                if cancel_wanted and not cancel_sent:
                    cancel_sent = sock.cancel()
            elif kind == "error" and "request_id" not in frame:
                code = str(frame.get("code") or "ERROR")
                raise CliError(
                    code, str(frame.get("message") or code), exit_for_code(code, bool(frame.get("retryable")))
                )
            elif kind in ("stage", "token", "usage", "complete", "cancelled", "error"):
                if frame.get("id") is not None:
                    last_id = str(frame["id"])
                result = follower.apply(kind, frame)
                if result is not None:
                    return result
            # ready, queued, ping, pong and unknown frames need nothing.
        except KeyboardInterrupt:
            if cancel_wanted:
                raise
            cancel_wanted = True
            if follower.request_id is not None:
                cancel_sent = sock.cancel()
    # The socket closed mid-reply: the request goes on; follow it over SSE from where we were.
    if follower.request_id is None:
        raise CliError(
            "CONNECTION_LOST", "the WebSocket closed before the server accepted the message", EXIT_UNAVAILABLE
        )
    follower.out.note("the WebSocket closed; resuming the reply over SSE")
    try:
        if cancel_wanted:
            raise KeyboardInterrupt
        return follow_sse(client, f"/v1/streams/{follower.request_id}", follower, last_event_id=last_id)
    except KeyboardInterrupt:
        return cancel_over_rest(client, follower)


def cancel_over_rest(client: ApiClient, follower: ReplyFollower) -> ChatResult:
    """Cancel the request, wait until the server has saved the partial reply, and show all of it."""
    assert follower.request_id is not None
    with deferred_sigint(reraise=False):  # one more Ctrl-C while cancelling changes nothing
        try:
            client.cancel_request(follower.request_id)
        except CliError as exc:
            follower.out.note(f"could not cancel: {exc.message} ({exc.code})")
        deadline = time.monotonic() + CANCEL_WAIT
        while True:
            try:
                state = client.request_status(follower.request_id)
            except CliError:
                return ChatResult(follower.transport, "cancelled", follower.text.shown, follower.request_id)
            # "cancelling": the request runs on another server task, which stops at its next check.
            if state.get("status") in FINAL_STATUSES or time.monotonic() > deadline:
                break
            time.sleep(POLL_INTERVAL)
    if state.get("status") not in FINAL_STATUSES:
        follower.out.note("note: the server is still stopping the reply; see `ytr history` later")
        follower.text.settle(str(state.get("text") or ""))
        return ChatResult(follower.transport, "cancelled", follower.text.shown, follower.request_id)
    result = follower.from_status(state)
    if result.status == "complete":
        follower.out.note("note: the reply had already finished")
    return result


def run_chat(
    transport: str,
    client: ApiClient,
    session_id: str,
    message: str,
    video_ids: list[str] | None,
    follower: ReplyFollower,
) -> ChatResult:
    runner = {"sse": chat_sse, "ws": chat_ws, "poll": chat_poll, "sync": chat_sync}[transport]
    return runner(client, session_id, message, video_ids, follower)


# ---------------------------------------------------------------------- the shell


def shell(client: ApiClient, session_id: str, video_ids: list[str] | None, out: Output, stdin: Any) -> int:
    """Read questions line by line and stream each answer over one WebSocket. Ctrl-C cancels the
    reply in progress (or clears the line at the prompt); Ctrl-D (end of input) leaves."""
    interactive = bool(getattr(stdin, "isatty", lambda: False)())
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    sock = client.websocket(session_id)
    if interactive:
        out.note(f"session {session_id}: ask a question. Ctrl-C cancels a reply, Ctrl-D leaves.")
    code = EXIT_OK
    try:
        while True:
            try:
                line = input("you> ") if interactive else stdin.readline()
            except EOFError:
                if interactive:
                    out.line()
                break
            except KeyboardInterrupt:
                out.line()
                continue
            if not interactive and line == "":
                break
            question = line.strip()
            if not question:
                continue
            if sock.closed or not sock.send_message(question, video_ids):
                sock.close()
                sock = client.websocket(session_id)  # the connection went away between questions
                sock.send_message(question, video_ids)
            follower = ReplyFollower("ws", StreamedText(out, show=not out.json_mode), out)
            try:
                result = follow_socket(client, sock, follower)
            except CliError as exc:
                if exc.exit_code == 3:
                    raise
                out.error(exc)
                code = exc.exit_code
                continue
            if out.json_mode:
                out.json(result.as_json())
            else:
                follower.text.end_line()
                if result.status == "cancelled":
                    out.line("[cancelled]")
                problem = result.error_line()
                if problem is not None:
                    out.error(problem)
                if interactive:
                    out.line()
            if result.status == "failed":
                code = result.exit_code
    finally:
        sock.close()
    return code
