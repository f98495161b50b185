"""The one event model for streams, rendered as SSE frames or WebSocket JSON.

Types: stage, token, usage, complete, error, cancelled (plus `reconnect` when a draining server
asks the client to come back). The research agent adds tool_call, tool_progress, tool_result,
approval_required, approval and limit_reached, interleaved with tokens in the order they
happened. ``citation`` {video_id, title, start, end, quote, url} comes just before the text it
supports. ``artifact`` tells a document the agent writes: ``partial`` ones while it is written
(``content`` replaces the draft from ``offset`` on), then ``final`` (saved, with ``artifact_id``
and ``version``) or ``failed``. ``session_update`` belongs to a session's own stream, not to a
reply's. Ids are a per-request sequence starting at 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "stage",
    "token",
    "usage",
    "complete",
    "error",
    "cancelled",
    "reconnect",
    "tool_call",
    "tool_progress",
    "tool_result",
    "approval_required",
    "approval",
    "limit_reached",
    "session_update",
    "citation",
    "artifact",
]
TERMINAL_TYPES = frozenset({"complete", "error", "cancelled"})
# What the research agent did in a reply (polling clients get these in the request's status).
AGENT_TYPES = frozenset(
    {
        "tool_call",
        "tool_progress",
        "tool_result",
        "approval_required",
        "approval",
        "limit_reached",
        "artifact",
    }
)


@dataclass(frozen=True)
class StreamEvent:
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    def sse(self) -> str:
        lines = []
        if self.id is not None:
            lines.append(f"id: {self.id}")
        lines.append(f"event: {self.type}")
        lines.append("data: " + json.dumps(self.data, separators=(",", ":"), ensure_ascii=False))
        return "\n".join(lines) + "\n\n"

    def ws(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, **self.data}


def sse_comment(text: str = "ping") -> str:
    """An SSE comment line: ignored by clients, keeps idle connections alive through proxies."""
    return f": {text}\n\n"


def sse_retry(milliseconds: int) -> str:
    return f"retry: {milliseconds}\n\n"
