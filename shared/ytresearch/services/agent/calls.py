"""What a tool call needs (the agent's dependencies, the call, the reply's video budget) and what
it returns (``ToolOutcome``: for the person, for the model, and for undo)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ytresearch.config import Settings
from ytresearch.events import StreamEvent
from ytresearch.observability.metrics import Metrics, NullMetrics
from ytresearch.ports import JobQueue, VideoDiscovery
from ytresearch.repository import Store
from ytresearch.services.agent.inputs import ToolInput
from ytresearch.services.users import AuthUser


@dataclass
class ToolOutcome:
    """What one call did: for the person (summary), for the model (``content``), and for undo."""

    ok: bool
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    code: str | None = None  # the error code when not ok
    undo: dict[str, Any] | None = None
    status: Literal["done", "failed", "refused"] = "done"
    limit: str | None = None  # the bound that stopped it, when one did (videos_per_reply ...)
    artifact: dict[str, Any] | None = None  # the final ``artifact`` event's data, for one it saved

    @classmethod
    def failed(
        cls, code: str, message: str, *, status: Literal["failed", "refused"] = "failed"
    ) -> ToolOutcome:
        return cls(ok=False, summary=message, code=code, status=status)

    @property
    def content(self) -> str:
        """The JSON text the model reads back."""
        return result_content(self.event_data())

    def event_data(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "summary": self.summary, "data": self.data}
        return {
            "ok": False,
            "summary": self.summary,
            "data": {},
            "error": {"code": self.code, "message": self.summary},
        }


@dataclass(frozen=True, kw_only=True)
class AgentDeps:
    """What the tools reach: storage, the ingest queue, YouTube discovery, and the limits."""

    store: Store
    settings: Settings
    queue: JobQueue
    discovery: VideoDiscovery
    ingest_wait_seconds: float | None = None  # None: settings.agent_ingest_wait_seconds
    poll_seconds: float = 0.25
    metrics: Metrics = field(default_factory=NullMetrics)  # ToolCalls, by tool and outcome

    @property
    def ingest_wait(self) -> float:
        wait = self.ingest_wait_seconds
        return self.settings.agent_ingest_wait_seconds if wait is None else wait


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    call_id: str
    name: str
    input: ToolInput
    user: AuthUser
    session_id: uuid.UUID
    progress: Callable[[str, str, dict[str, Any]], None]  # (stage, message, extra fields)
    request_id: uuid.UUID | None = None  # the chat request (None on sync REST)


class VideoBudget:
    """How many more videos this reply may add (per reply and per session)."""

    def __init__(self, per_reply: int, per_session_left: Callable[[], int]) -> None:
        self.left_in_reply = per_reply
        self.per_session_left = per_session_left

    def allowance(self) -> tuple[int, str]:
        """How many may be added now, and which bound limits it."""
        session_left = self.per_session_left()
        if session_left < self.left_in_reply:
            return max(0, session_left), "videos_per_session"
        return self.left_in_reply, "videos_per_reply"

    def spend(self, count: int) -> None:
        self.left_in_reply -= count


def limit_message(limit: str) -> str:
    return {
        "videos_per_reply": "this reply has added as many videos as one reply may",
        "videos_per_session": "the agent has added as many videos to this session as it may",
        "tool_rounds": "this reply used as many tool rounds as one reply may",
        "tokens_per_reply": "this reply used as many tokens as one reply may",
    }[limit]


def limit_event(limit: str, maximum: int) -> StreamEvent:
    return StreamEvent("limit_reached", {"limit": limit, "max": maximum, "message": limit_message(limit)})


def result_content(result: dict[str, Any]) -> str:
    """The JSON text the model reads for a ``tool_result`` event's data (the live reply's and the
    one rebuilt from the event log are the same)."""
    if result.get("ok"):
        body = {"ok": True, "summary": result.get("summary", ""), "data": result.get("data") or {}}
    else:
        body = {"ok": False, "error": result.get("error") or {"code": "TOOL_FAILED", "message": ""}}
    return json.dumps(body, ensure_ascii=False)
