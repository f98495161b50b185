"""WebSocket chat: `WS /v1/sessions/{id}/ws`.

Authentication, before anything else: the X-API-Key or ``Authorization: Bearer <access token>``
header (the CLI), or, from a browser (which cannot set headers on a WebSocket), a first frame
{"type":"auth","token":"<Cognito access token>"} or {"type":"auth","api_key":"..."} within 10 s.
Credentials never travel in the URL (URLs end up in proxy and load-balancer logs). Bad
credentials close the socket with 1008 (a bad header refuses the handshake with 403).

Client frames (JSON text):
- {"type":"message","content":"...","video_ids":[...],"tools":"auto"|"confirm"|"off"}: ask; the
  reply streams back (``tools`` and ``video_ids`` optional).
- {"type":"resume","request_id":"<uuid>","last_event_id":N}: stream a reply again from after event
  N (default 0), e.g. after reconnecting; the WebSocket counterpart of SSE's Last-Event-ID.
- {"type":"cancel"}: stop the reply being streamed (a resumed one included).
- {"type":"approve","call_id":"...","approve":true|false}: decide on a tool call the reply being
  streamed waits for (its ``approval_required`` event); the outcome streams as ``approval``.
- {"type":"ping"}: answered with {"type":"pong"}.
Server frames: the stream events as JSON with a `type`, an `id` and the `request_id`, plus
{"type":"session_update","id","session_id","change",...} whenever the session's video list changes
(from any route, the agent or an ingest, on any process), also between replies, plus
{"type":"ready"}, {"type":"accepted","request_id"}, {"type":"queued","position"}, {"type":"ping"}
and {"type":"error","code","message","retryable"}.

Messages and resumes are answered one at a time, in order: one sent while a reply is streaming
is queued and answered next. Cancel stops only the reply in progress. Closing the socket stops
nothing: the reply in progress and queued messages are still answered and saved, and show up in
the history.

A frame the server cannot read gets an error frame, then the socket is closed: binary ->
UNSUPPORTED_FRAME, 1003; not JSON -> INVALID_FRAME, 1007; over MAX_FRAME_BYTES or nested deeper
than MAX_FRAME_DEPTH -> FRAME_TOO_LARGE, 1009. A JSON frame of an unknown type, or one that fails
validation, gets INVALID_FRAME and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, StrictInt, ValidationError

from streaming_service.chat_requests import ChatRequestManager
from streaming_service.routes import MAX_EVENT_ID, ChatIn
from streaming_service.session_updates import follow_session, latest_change
from ytresearch.bootstrap import Container
from ytresearch.db.outage import is_outage
from ytresearch.errors import AppError, DependencyUnavailableError, UnauthorizedError
from ytresearch.services.sessions import get_session
from ytresearch.services.users import AuthUser, authenticate
from ytresearch.web.auth import authenticate_credentials, authenticate_token, mark_user
from ytresearch.web.models import ApprovalIn

log = logging.getLogger(__name__)
router = APIRouter()
_WORKERS: set[asyncio.Task[None]] = set()

UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
AUTH_TIMEOUT = 10.0

# A message is at most 100,000 characters, 4 UTF-8 bytes each at worst, plus room for the rest.
MAX_FRAME_BYTES = 4 * 100_000 + 16 * 1024
# Client frames are two levels deep; json.loads recurses once per level (100,000 levels crashed it).
MAX_FRAME_DEPTH = 32
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets in strings don't nest
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class BadFrame(Exception):
    """A frame the socket cannot go on after: answered with an error frame, then closed."""

    def __init__(self, code: str, message: str, close_code: int, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.close_code, self.reason = code, message, close_code, reason


class ResumeIn(BaseModel):
    request_id: uuid.UUID
    last_event_id: StrictInt = Field(default=0, ge=0, le=MAX_EVENT_ID)


def _utf8_size(text: str) -> int:
    if len(text) * 4 <= MAX_FRAME_BYTES:  # the common case: no need to encode to know
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _too_deep(text: str) -> bool:
    """Whether JSON ``text`` nests deeper than MAX_FRAME_DEPTH: a scan of its brackets, outside
    strings, before the recursive parser sees it."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_FRAME_DEPTH:
                return True
        else:
            depth -= 1
    return False


async def receive_frame(ws: WebSocket) -> Any:
    """The JSON value of the client's next frame. Raises WebSocketDisconnect when the client has
    gone, BadFrame for a frame that is binary, not JSON, too large or too deep."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if not isinstance(text, str):
        raise BadFrame(
            "UNSUPPORTED_FRAME",
            "binary frames are not supported; send JSON text",
            UNSUPPORTED_DATA,
            "binary frame",
        )
    if _utf8_size(text) > MAX_FRAME_BYTES:
        raise BadFrame(
            "FRAME_TOO_LARGE",
            f"frames are limited to {MAX_FRAME_BYTES} bytes",
            MESSAGE_TOO_BIG,
            "frame too large",
        )
    if _too_deep(text):
        raise BadFrame(
            "FRAME_TOO_LARGE",
            f"frames may nest at most {MAX_FRAME_DEPTH} levels deep",
            MESSAGE_TOO_BIG,
            "frame too deep",
        )
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer too long to convert
        raise BadFrame("INVALID_FRAME", "frames must be JSON text", INVALID_PAYLOAD, "invalid JSON") from None


async def refuse(ws: WebSocket, bad: BadFrame) -> None:
    """Say why in an error frame, then close with the matching code."""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await ws.send_json({"type": "error", "code": bad.code, "message": bad.message, "retryable": False})
        await ws.close(code=bad.close_code, reason=bad.reason)


def _close_reason(exc: UnauthorizedError) -> str:
    return {
        "INVALID_TOKEN": "invalid token",
        "TOKEN_EXPIRED": "token expired",
        "TOKEN_AUTH_NOT_CONFIGURED": "bearer tokens are not accepted here",
    }.get(exc.code, "invalid API key")


async def _authenticate(ws: WebSocket, container: Container) -> AuthUser | None:
    header_key = ws.headers.get("x-api-key")
    authorization = ws.headers.get("authorization")
    if header_key or authorization:
        try:
            return await asyncio.to_thread(
                authenticate_credentials, container, api_key=header_key, authorization=authorization
            )
        except UnauthorizedError as exc:
            await ws.close(code=POLICY_VIOLATION, reason=_close_reason(exc))
            return None
        except DependencyUnavailableError:
            await ws.close(code=TRY_AGAIN_LATER, reason="authentication is unavailable")
            return None
    await ws.accept()
    try:
        async with asyncio.timeout(AUTH_TIMEOUT):
            frame = await receive_frame(ws)
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            raise UnauthorizedError("the first frame must be {'type': 'auth', 'token' or 'api_key': ...}")
        token = frame.get("token")
        if token is not None:
            if not isinstance(token, str) or not token:
                raise UnauthorizedError("the token must be a non-empty string", code="INVALID_TOKEN")
            return await asyncio.to_thread(authenticate_token, container, token)
        return await asyncio.to_thread(authenticate, container.store, str(frame.get("api_key") or ""))
    except BadFrame as bad:
        await refuse(ws, bad)
    except UnauthorizedError as exc:
        reason = "authentication required" if exc.code == UnauthorizedError.code else _close_reason(exc)
        await ws.close(code=POLICY_VIOLATION, reason=reason)
    except TimeoutError:
        await ws.close(code=POLICY_VIOLATION, reason="authentication required")
    except DependencyUnavailableError:
        await ws.close(code=TRY_AGAIN_LATER, reason="authentication is unavailable")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left before authenticating
    return None


@router.websocket("/v1/sessions/{session_id}/ws")
async def chat_socket(ws: WebSocket, session_id: str) -> None:
    container: Container = ws.app.state.container
    manager: ChatRequestManager = ws.app.state.manager
    user = await _authenticate(ws, container)
    if user is None:
        return
    mark_user(ws.scope, user)
    try:
        sid = uuid.UUID(session_id)
        await asyncio.to_thread(get_session, container.store, user, sid)
    except (ValueError, AppError):
        if ws.client_state.name == "CONNECTING":
            await ws.accept()
        await ws.send_json(
            {"type": "error", "code": "SESSION_NOT_FOUND", "message": "session not found", "retryable": False}
        )
        await ws.close(code=POLICY_VIOLATION, reason="session not found")
        return
    if ws.client_state.name == "CONNECTING":
        await ws.accept()
    await ChatSocket(ws, manager, user, sid).run()


class ChatSocket:
    def __init__(self, ws: WebSocket, manager: ChatRequestManager, user: AuthUser, session_id: uuid.UUID):
        self.ws, self.manager, self.user, self.session_id = ws, manager, user, session_id
        self.inbox: asyncio.Queue[ChatIn | ResumeIn | None] = asyncio.Queue(maxsize=20)
        self.current: uuid.UUID | None = None
        self.busy = False  # an inbox item is being answered (from dequeue to its terminal event)
        self.connected = True
        self.sending = asyncio.Lock()  # replies and session updates share the socket

    async def send(self, frame: dict[str, Any]) -> int:
        """Send one frame; its size in bytes (0 when it could not be sent)."""
        if not self.connected:
            return 0
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        try:
            async with self.sending, asyncio.timeout(30):
                await self.ws.send_text(text)
        except (TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            self.connected = False
            return 0
        return len(text.encode())

    async def run(self) -> None:
        store = self.manager.deps.store
        after = await asyncio.to_thread(latest_change, store, self.session_id)
        await self.send({"type": "ready", "session_id": str(self.session_id)})
        updates = asyncio.create_task(self.tell_session_updates(after))
        worker = asyncio.create_task(self.answer_in_order())
        # The worker outlives this handler (closing the socket stops nothing): hold a reference
        # until it ends, so it is never garbage-collected mid-reply.
        _WORKERS.add(worker)
        worker.add_done_callback(_WORKERS.discard)
        try:
            await self.read_frames()
        finally:
            updates.cancel()
            self.connected = False
            # Messages already received are still answered (nothing the user wrote is lost).
            await self.inbox.put(None)
            if worker.done():
                worker.result()

    async def tell_session_updates(self, after: int) -> None:
        """``session_update`` frames for changes made after the socket opened, by anyone. The
        database away pauses them (the chat goes on); they resume after the last one sent."""
        settings = self.manager.settings
        while self.connected:
            follow = follow_session(
                self.manager.deps.store,
                self.session_id,
                after,
                poll_interval=settings.session_poll_seconds,
                ping_interval=settings.stream_ping_seconds,
            )
            try:
                async for update in follow:
                    if not self.connected:
                        return
                    if update is not None:
                        after = update["id"]
                        await self.send({"type": "session_update", **update})
            except Exception:
                log.warning("session updates paused for a socket", exc_info=True)
                await asyncio.sleep(1.0)

    async def read_frames(self) -> None:
        while True:
            try:
                frame = await receive_frame(self.ws)
            except (WebSocketDisconnect, RuntimeError):
                return
            except BadFrame as bad:
                self.connected = False  # the worker sends nothing more; the error frame goes first
                await refuse(self.ws, bad)
                return
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "message":
                try:
                    message = ChatIn(
                        message=frame.get("content", ""),
                        video_ids=frame.get("video_ids"),
                        tools=frame.get("tools"),
                    )
                except ValidationError as exc:
                    await self.error("INVALID_FRAME", f"message: {exc.errors()[0]['msg']}")
                    continue
                await self.enqueue(message)
            elif kind == "resume":
                try:
                    resume = ResumeIn(
                        request_id=frame.get("request_id"), last_event_id=frame.get("last_event_id", 0)
                    )
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(part) for part in first["loc"])
                    await self.error("INVALID_FRAME", f"resume: {where}: {first['msg']}")
                    continue
                await self.enqueue(resume)
            elif kind == "cancel":
                if self.current is not None:
                    with contextlib.suppress(AppError):
                        await self.manager.cancel(self.user, self.current)
            elif kind == "approve":
                await self.approve(frame)
            elif kind == "ping":
                await self.send({"type": "pong"})
            else:
                await self.error(
                    "INVALID_FRAME",
                    "frames are JSON objects with type message, resume, cancel, approve or ping",
                )

    async def approve(self, frame: dict[str, Any]) -> None:
        """A decision on a tool call the reply being streamed here waits for."""
        try:
            decision = ApprovalIn.model_validate({k: v for k, v in frame.items() if k != "type"})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            await self.error("INVALID_FRAME", f"approve: {where}: {first['msg']}")
            return
        if self.current is None:
            await self.error("NO_REPLY_STREAMING", "no reply is streaming on this socket")
            return
        try:
            await self.manager.approve(self.user, self.current, decision.call_id, decision.approve)
        except AppError as exc:
            await self.error(exc.code, exc.message, exc.retryable)

    async def enqueue(self, item: ChatIn | ResumeIn) -> None:
        if self.inbox.full():
            await self.error("TOO_MANY_QUEUED", "too many messages waiting; wait for a reply")
            return
        position = self.inbox.qsize() + (1 if self.busy else 0)
        await self.inbox.put(item)
        if position:
            await self.send({"type": "queued", "position": position})

    async def error(self, code: str, message: str, retryable: bool = False) -> None:
        await self.send({"type": "error", "code": code, "message": message, "retryable": retryable})

    async def answer_in_order(self) -> None:
        while (item := await self.inbox.get()) is not None:
            self.busy = True
            try:
                if isinstance(item, ResumeIn):
                    await self.resume(item)
                else:
                    await self.answer(item)
            except AppError as exc:
                await self.error(exc.code, exc.message, exc.retryable)
            except Exception as exc:
                # One failed item (e.g. the database away) must not stop the ones queued after it.
                if is_outage(exc):
                    await self.error("DATABASE_UNAVAILABLE", "the database is unavailable; try again", True)
                else:
                    log.exception("a WebSocket frame could not be answered")
                    await self.error("INTERNAL_ERROR", "the server failed to answer this frame", True)
            finally:
                self.busy = False

    async def answer(self, message: ChatIn) -> None:
        try:
            row = await self.manager.start_request(
                self.user, self.session_id, message.message, message.video_ids, tools=message.tools
            )
        except AppError as exc:
            await self.error(exc.code, exc.message, exc.retryable)
            return
        await self.relay(row.id, 0, accepted=True)

    async def resume(self, frame: ResumeIn) -> None:
        if not self.connected:
            return  # nobody to stream to (the reply itself runs on without us)
        try:
            await self.manager.check_access(self.user, frame.request_id)
        except AppError as exc:
            await self.error(exc.code, exc.message, exc.retryable)
            return
        await self.relay(frame.request_id, frame.last_event_id)

    async def relay(self, request_id: uuid.UUID, after: int, *, accepted: bool = False) -> None:
        """Send one request's events after ``after`` until its terminal event, with pings while it
        is quiet; meanwhile a cancel frame applies to it."""
        self.current = request_id
        meter = self.manager.meters.start("websocket", request_id, self.user.id, after)
        try:
            if accepted:
                meter.sent(None, await self.send({"type": "accepted", "request_id": str(request_id)}))
            async for event in self.manager.follow(request_id, after):
                if event is None:
                    meter.sent(None, await self.send({"type": "ping"}))
                else:
                    meter.sent(event, await self.send({**event.ws(), "request_id": str(request_id)}))
        finally:
            self.current = None
            meter.close()
