"""Reading a whole SSE response in a test, with the client's parser (``ytr.sse``)."""

from __future__ import annotations

from typing import Any

import httpx

from ytr.sse import SSEEvent, SSEParser


def read_stream(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    stop_after: int | None = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> tuple[int, list[SSEEvent], dict[str, Any]]:
    """Read a whole SSE response (or its first ``stop_after`` events, then drop the connection).
    The third item holds ``retry`` and ``comments`` when the stream had them, and the JSON
    ``body`` of a response that was not a 200."""
    meta: dict[str, Any] = {}
    events: list[SSEEvent] = []
    parser = SSEParser()
    with client.stream(method, url, headers=headers, **kw) as response:
        if response.status_code != 200:
            response.read()
            meta["body"] = response.json()
            return response.status_code, events, meta
        for chunk in response.iter_bytes():
            events.extend(parser.feed(chunk))
            if stop_after is not None and len(events) >= stop_after:
                del events[stop_after:]
                break
    if parser.retry is not None:
        meta["retry"] = parser.retry
    if parser.comments:
        meta["comments"] = parser.comments
    return 200, events, meta


def text_of(events: list[SSEEvent]) -> str:
    """The reply's text: its token events put together."""
    return "".join(e.json()["text"] for e in events if e.event == "token")
