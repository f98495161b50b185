"""WebSocket chat: `WS /v1/sessions/{id}/ws`.

Authentication, before anything else: the X-API-Key or ``Authorization: Bearer <access token>``
header (the CLI), or, from a browser (which cannot set headers on a WebSocket), a first frame
{"type":"auth","token":"<Cognito access token>"} or {"type":"auth","api_key":"..."} within 10 s.
Credentials never travel in the URL (URLs end up in proxy and load-balancer logs). Bad
credentials close the socket with 1008 (a bad header refuses the handshake with 403).

Client frames: {"type":"message","content":"...","video_ids":[...]} and {"type":"cancel"}.
Server frames: the stream events as JSON with a `type`, plus {"type":"ready"}, {"type":"accepted",
"request_id"}, {"type":"queued","position"} and {"type":"ping"}.

A message sent while a reply is streaming is queued and answered next, in order. Cancel stops
only the reply in progress. Closing the socket stops nothing: the reply in progress and queued
messages are still answered and saved, and show up in the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from streaming_service.routes import ChatIn
from ytresearch.bootstrap import Container
from ytresearch.errors import AppError, DependencyUnavailableError, UnauthorizedError
from ytresearch.services.sessions import get_session
from ytresearch.services.users import AuthUser, authenticate
from ytresearch.streams import ChatRequestManager
from ytresearch.web.auth import authenticate_credentials, authenticate_token

log = logging.getLogger(__name__)
router = APIRouter()

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
AUTH_TIMEOUT = 10.0


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
            frame = await ws.receive_json()
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            raise UnauthorizedError("the first frame must be {'type': 'auth', 'token' or 'api_key': ...}")
        token = frame.get("token")
        if token is not None:
            if not isinstance(token, str) or not token:
                raise UnauthorizedError("the token must be a non-empty string", code="INVALID_TOKEN")
            return await asyncio.to_thread(authenticate_token, container, token)
        return await asyncio.to_thread(authenticate, container.store, str(frame.get("api_key") or ""))
    except UnauthorizedError as exc:
        reason = "authentication required" if exc.code == UnauthorizedError.code else _close_reason(exc)
        await ws.close(code=POLICY_VIOLATION, reason=reason)
    except (TimeoutError, json.JSONDecodeError, KeyError):
        await ws.close(code=POLICY_VIOLATION, reason="authentication required")
    except DependencyUnavailableError:
        await ws.close(code=TRY_AGAIN_LATER, reason="authentication is unavailable")
    except WebSocketDisconnect:
        pass  # the client left before authenticating
    return None


@router.websocket("/v1/sessions/{session_id}/ws")
async def chat_socket(ws: WebSocket, session_id: str) -> None:
    container: Container = ws.app.state.container
    manager: ChatRequestManager = ws.app.state.manager
    user = await _authenticate(ws, container)
    if user is None:
        return
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
        self.inbox: asyncio.Queue[ChatIn] = asyncio.Queue(maxsize=20)
        self.current: uuid.UUID | None = None
        self.busy = False  # a message is being answered (from dequeue to its terminal event)
        self.connected = True

    async def send(self, frame: dict[str, Any]) -> None:
        if not self.connected:
            return
        try:
            async with asyncio.timeout(30):
                await self.ws.send_json(frame)
        except (TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            self.connected = False

    async def run(self) -> None:
        await self.send({"type": "ready", "session_id": str(self.session_id)})
        worker = asyncio.create_task(self.answer_in_order())
        try:
            await self.read_frames()
        finally:
            self.connected = False
            # Messages already received are still answered (nothing the user wrote is lost).
            await self.inbox.put(None)  # type: ignore[arg-type]
            if worker.done():
                worker.result()

    async def read_frames(self) -> None:
        while True:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            try:
                frame = json.loads(raw)
                kind = frame.get("type") if isinstance(frame, dict) else None
            except json.JSONDecodeError:
                kind = None
            if kind == "message":
                try:
                    message = ChatIn(message=frame.get("content", ""), video_ids=frame.get("video_ids"))
                except ValidationError as exc:
                    await self.error("INVALID_FRAME", f"message: {exc.errors()[0]['msg']}")
                    continue
                if self.inbox.full():
                    await self.error("TOO_MANY_QUEUED", "too many messages waiting; wait for a reply")
                    continue
                position = self.inbox.qsize() + (1 if self.busy else 0)
                await self.inbox.put(message)
                if position:
                    await self.send({"type": "queued", "position": position})
            elif kind == "cancel":
                if self.current is not None:
                    with contextlib.suppress(AppError):
                        await self.manager.cancel(self.user, self.current)
            elif kind == "ping":
                await self.send({"type": "pong"})
            else:
                await self.error("INVALID_FRAME", "frames are JSON objects with type message, cancel or ping")

    async def error(self, code: str, message: str, retryable: bool = False) -> None:
        await self.send({"type": "error", "code": code, "message": message, "retryable": retryable})

    async def answer_in_order(self) -> None:
        while (message := await self.inbox.get()) is not None:
            self.busy = True
            try:
                await self.answer(message)
            finally:
                self.busy = False

    async def answer(self, message: ChatIn) -> None:
        try:
            row = await self.manager.start_request(
                self.user, self.session_id, message.message, message.video_ids
            )
        except AppError as exc:
            await self.error(exc.code, exc.message, exc.retryable)
            return
        self.current = row.id
        await self.send({"type": "accepted", "request_id": str(row.id)})
        try:
            async for event in self.manager.follow(row.id, 0):
                if event is None:
                    await self.send({"type": "ping"})
                else:
                    await self.send({**event.ws(), "request_id": str(row.id)})
        finally:
            self.current = None
