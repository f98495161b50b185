"""WebSocket chat: `WS /v1/sessions/{id}/ws`.

Client frames: {"type":"auth","api_key":"..."} (browsers; the CLI sends the X-API-Key header
instead), {"type":"message","content":"...","video_ids":[...]} and {"type":"cancel"}.
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
from ytresearch.errors import AppError, UnauthorizedError
from ytresearch.services.sessions import get_session
from ytresearch.services.users import AuthUser, authenticate
from ytresearch.streams import ChatRequestManager

log = logging.getLogger(__name__)
router = APIRouter()

POLICY_VIOLATION = 1008
AUTH_TIMEOUT = 10.0


async def _authenticate(ws: WebSocket, container: Container) -> AuthUser | None:
    header_key = ws.headers.get("x-api-key")
    if header_key:
        try:
            return await asyncio.to_thread(authenticate, container.store, header_key)
        except UnauthorizedError:
            await ws.close(code=POLICY_VIOLATION, reason="invalid API key")
            return None
    await ws.accept()
    try:
        async with asyncio.timeout(AUTH_TIMEOUT):
            frame = await ws.receive_json()
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            raise UnauthorizedError("the first frame must be {'type': 'auth', 'api_key': ...}")
        return await asyncio.to_thread(authenticate, container.store, str(frame.get("api_key") or ""))
    except (UnauthorizedError, TimeoutError, json.JSONDecodeError, KeyError):
        await ws.close(code=POLICY_VIOLATION, reason="authentication required")
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
