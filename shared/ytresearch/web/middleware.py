"""Pure ASGI middleware (safe for streaming responses): request ids, body limits, last-resort
error handling and database-outage mapping, and per-request observability (one log line and the
Requests/Errors metrics)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytresearch.db.outage import is_outage
from ytresearch.observability.context import request_id_var
from ytresearch.observability.metrics import ERRORS, REQUESTS, Metrics, code_dimension, status_class

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ytresearch.config import Settings

log = logging.getLogger("ytresearch.web")

__all__ = [
    "BodyReadTimeoutMiddleware",
    "BodySizeLimitMiddleware",
    "RequestContextMiddleware",
    "install_middleware",
    "request_id_var",
]

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ERROR_BODY_LIMIT = 16 * 1024  # error bodies are small; larger ones are not ours
_QUIET_ROUTES = frozenset({"/health", "/health/live"})  # load-balancer probes: DEBUG, not INFO


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    request_id: str,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"x-request-id", request_id.encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


class RequestContextMiddleware:
    """Gives every request an id (client's X-Request-ID, API Gateway's request id, or new), echoes
    it in the response, and turns any exception that escapes the app into our error format. When
    the request ends it writes one log line (route, status, duration, error code) and records
    the Requests and Errors metrics, all carrying the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        outcome = _Outcome()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):  # once only
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            outcome.saw(message)
            if outcome.complete and not outcome.observed:
                # Before the last bytes go out: the client cannot have moved on yet.
                _observe_safely(scope, outcome)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if scope["type"] != "http" or outcome.started:
                log.exception("unhandled error after the response started")
                outcome.error_code = outcome.error_code or "INTERNAL_ERROR"
                return
            if is_outage(exc):
                log.warning("database unavailable: %s", type(exc).__name__)
                outcome.status, outcome.error_code = 503, "DATABASE_UNAVAILABLE"
                await _send_json(
                    send,
                    503,
                    _error("DATABASE_UNAVAILABLE", "the database is unavailable; try again shortly"),
                    request_id,
                )
            else:
                log.exception("unhandled error")
                outcome.status, outcome.error_code = 500, "INTERNAL_ERROR"
                await _send_json(
                    send,
                    500,
                    _error("INTERNAL_ERROR", f"an internal error occurred (request id {request_id})"),
                    request_id,
                )
        finally:
            if not outcome.observed:
                _observe_safely(scope, outcome)
            request_id_var.reset(token)


class _Outcome:
    """What the app answered, seen from the messages it sent: status, and the error code of a JSON
    error body (read only for error statuses; those bodies are small)."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.started = False
        self.status: int | None = None
        self.error_code: str | None = None
        self.complete = False  # the last body message is being sent
        self.observed = False
        self._error_body: bytearray | None = None

    def saw(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        if kind == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            if self.status >= 400 and _is_json(message.get("headers", [])):
                self._error_body = bytearray()
        elif kind == "http.response.body" and self._error_body is not None:
            self._error_body += message.get("body", b"")
            if not message.get("more_body", False) or len(self._error_body) > _ERROR_BODY_LIMIT:
                self.error_code = _error_code(bytes(self._error_body))
                self._error_body = None
        elif kind == "websocket.accept":
            self.status = 101
        elif kind == "websocket.http.response.start":
            self.status = int(message["status"])
        elif kind == "websocket.close" and self.status is None:
            self.status = 403  # closed before the handshake completed: uvicorn answers 403

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.began) * 1000


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"application/json") for name, value in headers
    )


def _error_code(body: bytes) -> str | None:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code_dimension(code)


def _route(scope: Scope) -> str:
    """The route template (/v1/sessions/{session_id}), never the raw path: metrics stay bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _metrics(scope: Scope) -> Metrics | None:
    state = getattr(scope.get("app"), "state", None)
    container = getattr(state, "container", None)
    metrics = getattr(container, "metrics", None)
    return metrics if hasattr(metrics, "emit") else None


def _observe_safely(scope: Scope, outcome: _Outcome) -> None:
    outcome.observed = True
    try:
        _observe(scope, outcome)
    except Exception:  # observing must never fail a request
        log.debug("could not record the request's metrics", exc_info=True)


def _observe(scope: Scope, outcome: _Outcome) -> None:
    route = _route(scope)
    status = outcome.status
    method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
    level = logging.DEBUG if route in _QUIET_ROUTES and (status or 0) < 500 else logging.INFO
    log.log(
        level,
        "%s %s -> %s",
        method,
        route,
        status if status is not None else "no response (client gone)",
        extra={
            "http_method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(outcome.elapsed_ms, 1),
            "error_code": outcome.error_code,
            "user_id": scope.get("state", {}).get("user_id"),  # once authenticated; never a key
        },
    )
    metrics = _metrics(scope)
    if metrics is None:
        return
    if status is not None:
        metrics.count(REQUESTS, route=route, status_class=status_class(status))
    if outcome.error_code is not None:
        metrics.count(ERRORS, code=outcome.error_code)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
    event = scope.get("aws.event") or {}
    ctx_id = (event.get("requestContext") or {}).get("requestId")
    return str(ctx_id) if ctx_id else uuid.uuid4().hex


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, by Content-Length or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "")
        message = _error("PAYLOAD_TOO_LARGE", f"request body is larger than {self.max_bytes} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_json(send, 413, message, request_id)
                return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    # Answer 413 ourselves and tell the app the client went away.
                    if not rejected:
                        rejected = True
                        await _send_json(send, 413, message, request_id)
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            if not rejected:
                await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise


class BodyReadTimeoutMiddleware:
    """408 when the client stops sending its body: a wait for the next body chunk longer than the
    timeout ends the request (answered at once if no response has started; the app is told the
    client went away). Once the body is complete, waits (for a disconnect) are the app's own."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "")
        body_done = False
        started = False
        timed_out = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                msg = await asyncio.wait_for(receive(), self.timeout_seconds)
            except TimeoutError:
                timed_out = True
                if not started:
                    message = f"the request body did not arrive within {self.timeout_seconds:g} s"
                    # The unread rest of the body would be taken for the next request: close.
                    await _send_json(
                        send,
                        408,
                        _error("REQUEST_TIMEOUT", message),
                        request_id,
                        [(b"connection", b"close")],
                    )
                return {"type": "http.disconnect"}
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                body_done = True
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # we answered 408 for the app
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The outer layers both apps share, from the outside in: the request context (it wraps
    everything, so even a refused preflight has a request id and a log line), the body read
    timeout, the body size limit, then CORS. Added innermost first: Starlette puts each new
    middleware outside."""
    from ytresearch.web.cors import install_cors

    install_cors(app, settings.cors_origins)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeoutMiddleware, timeout_seconds=settings.body_read_timeout_seconds)
    app.add_middleware(RequestContextMiddleware)
