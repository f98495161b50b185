"""A small, independent SSE client parser (the wire format per the HTML standard)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SSEEvent:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(lines: Iterator[str], meta: dict[str, Any] | None = None) -> Iterator[SSEEvent]:
    event, data, last_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r")
        if line == "":
            if data:
                yield SSEEvent(event, "\n".join(data), last_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            if meta is not None:
                meta["comments"] = meta.get("comments", 0) + 1
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
        elif field == "retry" and meta is not None:
            meta["retry"] = int(value)


def read_stream(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    stop_after: int | None = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> tuple[int, list[SSEEvent], dict[str, Any]]:
    """Read a whole SSE response (or its first ``stop_after`` events, then drop the connection)."""
    meta: dict[str, Any] = {}
    events: list[SSEEvent] = []
    with client.stream(method, url, headers=headers, **kw) as response:
        if response.status_code != 200:
            response.read()
            meta["body"] = response.json()
            return response.status_code, events, meta
        for ev in parse_sse(response.iter_lines(), meta):
            events.append(ev)
            if stop_after is not None and len(events) >= stop_after:
                break
    return 200, events, meta


def text_of(events: list[SSEEvent]) -> str:
    return "".join(e.json["text"] for e in events if e.event == "token")
