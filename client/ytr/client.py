"""`ApiClient`: the deployment over HTTP (httpx), with every failure turned into a `CliError`
carrying a one-line message and an exit code. The chat WebSocket is `ytr.chat_socket.ChatSocket`,
opened with `ApiClient.websocket`.

Two base URLs: REST calls go to ``api_url``; chat streaming, polling, cancel, the WebSocket and
ingest progress go to ``stream_url`` (the streaming service). Locally both are the same address.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

import httpx

from ytr.chat_socket import ChatSocket
from ytr.errors import (
    EXIT_AUTH,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
    exit_for_status,
    with_retry_hint,
)
from ytr.net import USER_AGENT, path_id, unreachable
from ytr.sse import SSEEvent, SSEParser

__all__ = ["ApiClient", "CliError", "error_from_response", "transport_error"]

TERMINAL_EVENTS = frozenset({"complete", "error", "cancelled"})
DEFAULT_RETRY_MS = 1000
MAX_STREAM_ATTEMPTS = 5


def chat_body(message: str, video_ids: list[str] | None, tools: str | None) -> dict[str, Any]:
    """A question's body: the text, and the videos and tools mode when chosen."""
    body: dict[str, Any] = {"message": message}
    if video_ids:
        body["video_ids"] = video_ids
    if tools is not None:
        body["tools"] = tools
    return body


def transport_error(exc: Exception, base_url: str) -> CliError:
    """A connection-level failure (nothing or no complete answer came back)."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return CliError("INVALID_URL", f"{base_url} is not a usable URL: {exc}", EXIT_USAGE)
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return unreachable(base_url)
    if isinstance(exc, httpx.ConnectTimeout):
        return unreachable(base_url, "connection timed out")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return CliError("TIMEOUT", f"{base_url} did not answer in time", EXIT_UNAVAILABLE)
    detail = str(exc) or type(exc).__name__
    return CliError("CONNECTION_LOST", f"lost the connection to {base_url} ({detail})", EXIT_UNAVAILABLE)


def error_from_response(response: httpx.Response) -> CliError:
    """Map an error response (`{"error": {"code", "message", "details"}}` or anything else)."""
    status = response.status_code
    code, message = f"HTTP_{status}", ""
    details: Any = {}
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        reason = response.reason_phrase or "error"
        message = f"{response.request.method} {response.request.url.path} answered {status} {reason}".strip()
    retry_after = None
    if status == 429:
        retry_after = _retry_after(response.headers.get("retry-after"), details)
        message = with_retry_hint(message, retry_after)
    return CliError(code, message, exit_for_status(status), retry_after=retry_after)


def _retry_after(header: str | None, details: Any) -> int | None:
    for value in (header, details.get("retry_after") if isinstance(details, dict) else None):
        try:
            return max(0, int(float(str(value))))
        except (TypeError, ValueError):
            continue
    return None


class ApiClient:
    def __init__(
        self,
        api_url: str,
        stream_url: str,
        api_key: str | None,
        *,
        access_token: str | None = None,
        timeout: float = 30.0,
        stream_read_timeout: float = 60.0,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.stream_url = stream_url.rstrip("/")
        self.api_key = api_key
        self.access_token = access_token
        self.stream_timeout = httpx.Timeout(timeout, connect=10.0, read=stream_read_timeout)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self.auth_headers()}
        self.http = http or httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))
        if http is not None:
            self.http.headers.update(headers)
        self.sleep = sleep

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ plumbing
    def auth_headers(self) -> dict[str, str]:
        """The credentials: a signed-in user's access token, else the API key."""
        if self.access_token:
            return {"Authorization": f"Bearer {self.access_token}"}
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {}

    def _require_key(self) -> None:
        if not self.api_key and not self.access_token:
            raise CliError(
                "MISSING_API_KEY",
                "no API key and not signed in: run `ytr login`, pass --api-key, set YTR_API_KEY "
                "or run `ytr configure --api-key ...`",
                EXIT_AUTH,
            )

    def call(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; an error status or a transport failure raises `CliError`."""
        self._require_key()
        base = self.stream_url if stream else self.api_url
        params = {k: v for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": params or None}
        if json_body is not None:
            kwargs["json"] = json_body
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=10.0)
        try:
            response = self.http.request(method, base + path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, base) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def get_json(self, path: str, *, stream: bool = False, **params: Any) -> Any:
        return self._json(self.call("GET", path, stream=stream, params=params))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise CliError(
                "BAD_RESPONSE",
                f"{response.request.url.path} answered {response.status_code} with something not JSON",
                EXIT_UNAVAILABLE,
            ) from None

    # ------------------------------------------------------------------ REST
    def health(self) -> Any:
        return self.get_json("/health")

    def create_session(self, title: str | None) -> Any:
        body = {"title": title} if title is not None else {}
        return self._json(self.call("POST", "/v1/sessions", json_body=body))

    def list_sessions(self, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.get_json("/v1/sessions", limit=limit, cursor=cursor)

    def get_session(self, session_id: str) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}")

    def delete_session(self, session_id: str) -> None:
        self.call("DELETE", f"/v1/sessions/{path_id(session_id)}")

    def add_video(self, session_id: str, url: str, language: str | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"url": url}
        if language:
            body["language"] = language
        response = self.call("POST", f"/v1/sessions/{path_id(session_id)}/videos", json_body=body)
        return response.status_code, self._json(response)

    def list_videos(self, session_id: str) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}/videos")

    def remove_video(self, session_id: str, video_id: str) -> None:
        self.call("DELETE", f"/v1/sessions/{path_id(session_id)}/videos/{path_id(video_id)}")

    def get_video(self, video_id: str, *, transcript: bool = False) -> Any:
        return self.get_json(
            f"/v1/videos/{path_id(video_id)}", include_transcript="true" if transcript else None
        )

    def get_job(self, job_id: str) -> Any:
        return self.get_json(f"/v1/jobs/{path_id(job_id)}")

    def send_message(
        self, session_id: str, message: str, video_ids: list[str] | None, tools: str | None = None
    ) -> Any:
        body = chat_body(message, video_ids, tools)
        # The synchronous reply may take as long as the API allows (API Gateway: 30 s).
        response = self.call(
            "POST", f"/v1/sessions/{path_id(session_id)}/messages", json_body=body, timeout=120.0
        )
        return self._json(response)

    def list_messages(self, session_id: str, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}/messages", limit=limit, cursor=cursor)

    def export_session(self, session_id: str, fmt: str = "md") -> tuple[str | None, str]:
        """`GET /v1/sessions/{id}/export`: the file name the server suggests (Content-Disposition;
        None when it gives none) and the document."""
        response = self.call("GET", f"/v1/sessions/{path_id(session_id)}/export", params={"format": fmt})
        match = re.search(r'filename="([^"]*)"', response.headers.get("content-disposition", ""))
        return (match.group(1) if match else None), response.text

    def list_actions(self, session_id: str, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}/actions", limit=limit, cursor=cursor)

    def undo_action(self, session_id: str, action_id: str) -> Any:
        path = f"/v1/sessions/{path_id(session_id)}/actions/{path_id(action_id)}/undo"
        return self._json(self.call("POST", path))

    def list_artifacts(self, session_id: str, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}/artifacts", limit=limit, cursor=cursor)

    def get_artifact(self, session_id: str, artifact_id: str, version: int | None = None) -> Any:
        path = f"/v1/sessions/{path_id(session_id)}/artifacts/{path_id(artifact_id)}"
        return self.get_json(path, version=version)

    def artifact_versions(self, session_id: str, artifact_id: str) -> Any:
        return self.get_json(f"/v1/sessions/{path_id(session_id)}/artifacts/{path_id(artifact_id)}/versions")

    def delete_artifact(self, session_id: str, artifact_id: str) -> None:
        self.call("DELETE", f"/v1/sessions/{path_id(session_id)}/artifacts/{path_id(artifact_id)}")

    # ------------------------------------------------------------------ streaming service
    def start_chat(
        self, session_id: str, message: str, video_ids: list[str] | None, tools: str | None = None
    ) -> Any:
        body = chat_body(message, video_ids, tools)
        response = self.call("POST", f"/v1/sessions/{path_id(session_id)}/chat", stream=True, json_body=body)
        return self._json(response)

    def approve(self, request_id: str, call_id: str, approve: bool) -> Any:
        """`POST /v1/requests/{id}/approvals`: 404 when the call is not waiting, 409 when decided."""
        path = f"/v1/requests/{path_id(request_id)}/approvals"
        return self._json(
            self.call("POST", path, stream=True, json_body={"call_id": call_id, "approve": approve})
        )

    def request_status(self, request_id: str) -> Any:
        return self.get_json(f"/v1/requests/{path_id(request_id)}", stream=True)

    def cancel_request(self, request_id: str) -> Any:
        return self._json(self.call("POST", f"/v1/requests/{path_id(request_id)}/cancel", stream=True))

    def events(
        self,
        path: str,
        *,
        terminal: Collection[str] = TERMINAL_EVENTS,
        last_event_id: str | None = None,
        max_attempts: int = MAX_STREAM_ATTEMPTS,
        on_reconnect: Callable[[int, CliError], None] | None = None,
    ) -> Iterator[SSEEvent]:
        """The SSE events at ``path`` (on the streaming service) up to a terminal one.

        A dropped connection, or a stream that ends before a terminal event, is reconnected
        with ``Last-Event-ID`` after the server's ``retry:`` delay (doubling while attempts keep
        failing), so the caller sees every event exactly once. When ``max_attempts`` reconnects
        in a row bring no new event, a `CliError` (STREAM_LOST) says so. Errors that a retry
        cannot fix (401, 404, 410...) are raised at once.
        """
        self._require_key()
        url = path if path.startswith(("http://", "https://")) else self.stream_url + path
        parser = SSEParser()
        if last_event_id:
            parser.last_event_id = last_event_id
            parser.reset_connection()
        failures = 0
        while True:
            progressed = False
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            try:
                with self.http.stream("GET", url, headers=headers, timeout=self.stream_timeout) as response:
                    if response.status_code != 200:
                        response.read()
                        error = error_from_response(response)
                        if response.status_code < 500:
                            raise error  # 401, 404, 410...: reconnecting cannot help
                        cause = error
                    else:
                        cause = CliError(
                            "STREAM_ENDED",
                            "the server ended the stream before the reply did",
                            EXIT_UNAVAILABLE,
                        )
                        for chunk in response.iter_bytes():
                            for event in parser.feed(chunk):
                                if event.event == "reconnect":  # a draining server sends us elsewhere
                                    cause = CliError(
                                        "RECONNECT", "the server asked to reconnect", EXIT_UNAVAILABLE
                                    )
                                    break
                                progressed = True
                                yield event
                                if event.event in terminal:
                                    return
                            else:
                                continue
                            break
            except httpx.TransportError as exc:
                cause = transport_error(exc, self.stream_url)
            if progressed:
                failures = 0
            if failures >= max_attempts:
                raise CliError(
                    "STREAM_LOST",
                    f"the stream from {self.stream_url} was lost and {max_attempts} attempts to resume it "
                    f"failed ({cause.message})",
                    EXIT_UNAVAILABLE,
                )
            failures += 1
            if on_reconnect is not None:
                on_reconnect(failures, cause)
            delay = (parser.retry if parser.retry is not None else DEFAULT_RETRY_MS) / 1000
            self.sleep(delay * min(2 ** (failures - 1), 8))
            parser.reset_connection()

    # ------------------------------------------------------------------ WebSocket
    def websocket(self, session_id: str) -> ChatSocket:
        """Open `WS /v1/sessions/{id}/ws` (credentials in a header, never the URL) and wait for
        `ready`."""
        self._require_key()
        return ChatSocket.open(self.stream_url, session_id, self.auth_headers())
