"""`ytr chat` over each transport: POST-then-SSE (default), WebSocket, polling and the synchronous
REST call, plus the interactive shell over one WebSocket.

Ctrl-C during a reply is a cancel: over REST (`POST /v1/requests/{id}/cancel`) or as a
``{"type": "cancel"}`` frame. The partial text the server saved is printed in full, then the
caller prints ``[cancelled]`` and exits 130. A second Ctrl-C leaves at once.

The research agent's tool events (``tool_call``, ``tool_progress``, ``tool_result``,
``approval_required``, ``approval``, ``limit_reached``) are shown on stderr by ``ytr.tool_view``
and kept for ``--json``. An ``approval_required`` is answered over REST
(`POST /v1/requests/{id}/approvals`) or as an ``{"type": "approve"}`` frame on the WebSocket.
Polling sees no events (only the text so far), and the synchronous reply shows the calls it made
once it is saved. A reply's ``citation`` events (or a saved reply's ``citations``) are listed as
its sources after its text, on stderr (``ytr.citations_view``); its ``artifact`` events (the
documents the agent writes) are told among the tool lines (``ytr.artifacts_view``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ytr.chat_socket import ChatSocket
from ytr.client import ApiClient
from ytr.errors import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    CliError,
    exit_for_code,
)
from ytr.render import Output, StreamedText
from ytr.reply import FINAL_STATUSES, ChatResult, ReplyFollower, str_or_none
from ytr.tool_view import TOOL_EVENTS, Approvals

TRANSPORTS = ("sse", "ws", "poll", "sync")
REPLY_FRAMES = frozenset(
    {"stage", "token", "citation", "artifact", "usage", "complete", "cancelled", "error"}
)
POLL_INTERVAL = 0.25
CANCEL_WAIT = 15.0


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


def approvals_over_rest(client: ApiClient, follower: ReplyFollower) -> Callable[[str, bool], None]:
    def respond(call_id: str, approve: bool) -> None:
        assert follower.request_id is not None
        client.approve(follower.request_id, call_id, approve)

    return respond


def chat_sse(
    client: ApiClient,
    session_id: str,
    message: str,
    video_ids: list[str] | None,
    follower: ReplyFollower,
    *,
    tools: str | None = None,
) -> ChatResult:
    try:
        with deferred_sigint():
            started = client.start_chat(session_id, message, video_ids, tools)
            follower.request_id = str(started["request_id"])
        follower.respond = approvals_over_rest(client, follower)
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
    *,
    tools: str | None = None,
) -> ChatResult:
    """`GET /v1/requests/{id}` until the reply ends: its text only (polling sees no tool events,
    so calls waiting for approval are refused when their time runs out)."""
    if tools == "confirm":
        follower.out.note(
            "note: polling shows no tool calls and cannot answer approvals; "
            "calls that need one are refused when they time out"
        )
    try:
        with deferred_sigint():
            started = client.start_chat(session_id, message, video_ids, tools)
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
    client: ApiClient,
    session_id: str,
    message: str,
    video_ids: list[str] | None,
    follower: ReplyFollower,
    *,
    tools: str | None = None,
) -> ChatResult:
    try:
        reply = client.send_message(session_id, message, video_ids, tools)
    except KeyboardInterrupt:
        follower.out.note(
            "note: a synchronous request cannot be cancelled; the server may still save the reply"
        )
        return ChatResult("sync", "cancelled", "")
    text = str(reply.get("content") or "")
    follower.replay(reply.get("tool_calls"))  # the calls it made, before its text
    follower.citations.extend(reply.get("citations"))  # listed after its text (``done``)
    follower.view.finish()
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
        message_id=str_or_none(reply.get("id")),
        stop_reason=reply.get("stop_reason"),
        usage=reply.get("usage"),
        error=error,
    )


def chat_ws(
    client: ApiClient,
    session_id: str,
    message: str,
    video_ids: list[str] | None,
    follower: ReplyFollower,
    *,
    tools: str | None = None,
) -> ChatResult:
    sock = client.websocket(session_id)
    try:
        if not sock.send_message(message, video_ids, tools=tools):
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
    approvals_sent = 0

    def respond(call_id: str, approve: bool) -> None:
        nonlocal approvals_sent
        if not sock.approve(call_id, approve):
            raise CliError(
                "CONNECTION_LOST", "the WebSocket closed before the answer was sent", EXIT_UNAVAILABLE
            )
        approvals_sent += 1

    follower.respond = respond
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
                if approvals_sent and follower.request_id is not None:
                    # The server refusing an approve frame (decided already, not waiting): the
                    # reply goes on, and its `approval` event tells what was decided.
                    follower.view.note(
                        f"note: the answer was not taken: {frame.get('message') or code} ({code})"
                    )
                    continue
                raise CliError(
                    code, str(frame.get("message") or code), exit_for_code(code, bool(frame.get("retryable")))
                )
            elif kind in REPLY_FRAMES or kind in TOOL_EVENTS:
                if frame.get("id") is not None:
                    last_id = str(frame["id"])
                result = follower.apply(kind, frame)
                if result is not None:
                    return result
            # ready, queued, ping, pong, session_update and unknown frames need nothing.
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
    follower.respond = approvals_over_rest(client, follower)
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
    *,
    tools: str | None = None,
) -> ChatResult:
    """One reply over ``transport``; ``tools`` is the agent's mode for it (None: the session's)."""
    runner = {"sse": chat_sse, "ws": chat_ws, "poll": chat_poll, "sync": chat_sync}[transport]
    return follower.done(runner(client, session_id, message, video_ids, follower, tools=tools))


# ---------------------------------------------------------------------- the shell


def shell(
    client: ApiClient,
    session_id: str,
    video_ids: list[str] | None,
    out: Output,
    stdin: Any,
    *,
    tools: str | None = None,
    assume_yes: bool = False,
) -> int:
    """Read questions line by line and stream each answer over one WebSocket. Ctrl-C cancels the
    reply in progress (or clears the line at the prompt); Ctrl-D (end of input) leaves. Calls
    waiting for approval are asked about at the prompt (``--yes``: allowed; piped: denied)."""
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
            if sock.closed or not sock.send_message(question, video_ids, tools=tools):
                sock.close()
                sock = client.websocket(session_id)  # the connection went away between questions
                sock.send_message(question, video_ids, tools=tools)
            follower = ReplyFollower(
                "ws",
                StreamedText(out, show=not out.json_mode),
                out,
                approvals=Approvals(assume_yes=assume_yes, stdin=stdin),
                session_id=session_id,
            )
            try:
                result = follower.done(follow_socket(client, sock, follower))
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
