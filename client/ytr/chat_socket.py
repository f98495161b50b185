"""`ChatSocket`: the chat WebSocket (`WS /v1/sessions/{id}/ws`) on the websockets sync client,
with handshake and close failures turned into a `CliError`."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

from ytr.errors import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
    exit_for_code,
    exit_for_status,
)
from ytr.net import USER_AGENT, path_id, unreachable


class ChatSocket:
    """A chat WebSocket on the websockets sync client (imported on first use: it is only needed
    by the ws transport and the interactive shell)."""

    def __init__(self, connection: Any, base_url: str, session_id: str) -> None:
        self.connection = connection
        self.base_url = base_url
        self.session_id = session_id
        self.closed = False

    @staticmethod
    def url_for(stream_url: str, session_id: str) -> str:
        parts = urlsplit(stream_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/v1/sessions/{path_id(session_id)}/ws"

    @classmethod
    def open(cls, stream_url: str, session_id: str, headers: dict[str, str]) -> ChatSocket:
        try:
            from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
            from websockets.sync.client import connect
        except ImportError:
            raise CliError(
                "WEBSOCKETS_MISSING",
                "the ws transport and the shell need the `websockets` package (pip install websockets)",
                EXIT_ERROR,
            ) from None
        url = cls.url_for(stream_url, session_id)
        try:
            connection = connect(
                url,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=15,
                compression=None,  # small JSON frames: not worth a zlib context per connection
                legacy=True,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 403:  # the server refuses the handshake when the credentials are wrong
                if "Authorization" in headers:
                    raise CliError(
                        "INVALID_TOKEN",
                        "the access token was refused (expired or revoked?): run `ytr login` again",
                        EXIT_AUTH,
                    ) from None
                raise CliError("INVALID_API_KEY", "API key is not valid", EXIT_AUTH) from None
            raise CliError(
                f"HTTP_{status}", f"the WebSocket handshake was refused ({status})", exit_for_status(status)
            ) from None
        except InvalidURI as exc:
            raise CliError("INVALID_URL", f"{url} is not a usable WebSocket URL: {exc}", EXIT_USAGE) from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            if isinstance(exc, ConnectionRefusedError | TimeoutError):
                raise unreachable(stream_url) from None
            raise CliError(
                "CONNECTION_FAILED", f"cannot open a WebSocket to {url}: {exc}", EXIT_UNAVAILABLE
            ) from None
        sock = cls(connection, stream_url, session_id)
        try:
            frame = sock.receive(timeout=30)
        except BaseException:
            sock.close()
            raise
        if frame is None:
            sock.close()
            raise CliError("CONNECTION_LOST", f"{url} closed before it was ready", EXIT_UNAVAILABLE)
        if frame.get("type") == "error":
            sock.close()
            code = str(frame.get("code") or "ERROR")
            raise CliError(code, str(frame.get("message") or code), exit_for_code(code))
        return sock

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next JSON frame; None when the connection closed. `TimeoutError` after ``timeout``."""
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self.connection.recv(timeout=timeout)
        except ConnectionClosed as exc:
            self.closed = True
            if exc.rcvd is not None and exc.rcvd.code == 1008:
                reason = exc.rcvd.reason or ""
                if "key" in reason:
                    raise CliError("INVALID_API_KEY", "API key is not valid", EXIT_AUTH) from None
                if "token" in reason:
                    code = "TOKEN_EXPIRED" if "expired" in reason else "INVALID_TOKEN"
                    raise CliError(code, f"the access token was refused ({reason})", EXIT_AUTH) from None
            return None
        try:
            frame = json.loads(raw)
        except (TypeError, ValueError):
            return {"type": "invalid", "raw": str(raw)[:200]}
        return frame if isinstance(frame, dict) else {"type": "invalid", "raw": str(raw)[:200]}

    def send(self, frame: dict[str, Any]) -> bool:
        """Send a frame; False if the connection is gone."""
        from websockets.exceptions import ConnectionClosed

        try:
            self.connection.send(json.dumps(frame))
            return True
        except ConnectionClosed:
            self.closed = True
            return False

    def send_message(
        self, content: str, video_ids: list[str] | None = None, *, tools: str | None = None
    ) -> bool:
        """Ask; ``tools`` ("auto", "confirm" or "off") is the agent's mode for this reply
        (None: the session's)."""
        frame: dict[str, Any] = {"type": "message", "content": content}
        if video_ids:
            frame["video_ids"] = video_ids
        if tools is not None:
            frame["tools"] = tools
        return self.send(frame)

    def cancel(self) -> bool:
        return self.send({"type": "cancel"})

    def approve(self, call_id: str, approve: bool) -> bool:
        """Answer a call of the reply being streamed that waits for approval."""
        return self.send({"type": "approve", "call_id": call_id, "approve": approve})

    def close(self) -> None:
        self.closed = True
        # Closing is best effort; the server keeps answering either way.
        with contextlib.suppress(Exception):
            self.connection.close()
