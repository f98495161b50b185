"""The agent's artifact tools (create_artifact, revise_artifact) and the drafts a reply shows
while the model writes one.

An artifact is told by ``artifact`` events: ``partial`` ones while the model writes the tool's
input (``ArtifactDrafts``), then ``final`` once saved, or ``failed`` when it was not. A partial
event carries only new text: ``content`` replaces the draft from ``offset`` on, so a client keeps
``draft[:offset] + content`` and a repeated event changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ytresearch.events import StreamEvent
from ytresearch.ports import ToolCallRequested, ToolInputDelta
from ytresearch.services import artifacts as artifact_service
from ytresearch.services.agent.calls import AgentDeps, ToolCall, ToolOutcome
from ytresearch.services.agent.inputs import CreateArtifactIn, ReviseArtifactIn
from ytresearch.services.artifacts import KINDS, follow_draft
from ytresearch.views import ArtifactOut


@dataclass
class _Draft:
    sent: str = ""  # the content told so far
    told_at: float = 0.0
    title: str = ""
    kind: str = ""


class ArtifactDrafts:
    """The artifacts one reply is writing, told as ``artifact`` partial events at most every
    ``interval`` seconds or ``chars`` new characters, whichever comes first (the model's input
    arrives a few characters at a time)."""

    def __init__(
        self,
        emit: Callable[[StreamEvent], None],
        shown: dict[str, dict[str, Any]],
        *,
        interval: float = 0.25,
        chars: int = 400,
    ):
        self.emit = emit
        self.shown = shown  # the reply's unfinished drafts as told (``Generation.drafts``)
        self.interval = interval
        self.chars = chars
        self._drafts: dict[str, _Draft] = {}

    def update(self, delta: ToolInputDelta) -> None:
        draft = self._drafts.setdefault(delta.call_id, _Draft())
        content = _text(delta.input.get("content"))
        title = _text(delta.input.get("title"))
        kind = _text(delta.input.get("kind"))
        if (content, title, kind) == (draft.sent, draft.title, draft.kind):
            return
        now = time.monotonic()
        grown = len(content) - len(draft.sent)
        if draft.told_at and grown < self.chars and now - draft.told_at < self.interval:
            return  # told with a later delta, or whole in the final event
        offset = _common_prefix(draft.sent, content)
        draft.sent, draft.told_at, draft.title, draft.kind = content, now, title, kind
        artifact_id = delta.input.get("artifact_id")
        self.tell(
            {
                "call_id": delta.call_id,
                "status": "partial",
                "artifact_id": artifact_id if isinstance(artifact_id, str) else None,
                "title": title,
                "kind": kind if kind in KINDS else "document",
                "offset": offset,
                "content": content[offset:],
            }
        )

    def tell(self, data: dict[str, Any]) -> None:
        """Emit one ``artifact`` event and keep the reply's drafts as the client now has them."""
        follow_draft(self.shown, data)
        if data["status"] != "partial":
            self._drafts.pop(str(data["call_id"]), None)
        self.emit(StreamEvent("artifact", data))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def final_event(call_id: str, saved: ArtifactOut) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "status": "final",
        "artifact_id": str(saved.id),
        "version": saved.version,
        "title": saved.title,
        "kind": saved.kind,
        "offset": 0,
        "content": saved.content,
    }


def artifact_ending(requested: ToolCallRequested, outcome: ToolOutcome) -> dict[str, Any]:
    """The last ``artifact`` event of a call: ``final`` once saved, else ``failed`` (the draft
    was not saved, and why)."""
    if outcome.artifact is not None:
        return outcome.artifact
    revised = requested.input.get("artifact_id") if requested.input else None
    return {
        "call_id": requested.call_id,
        "status": "failed",
        "artifact_id": revised if isinstance(revised, str) else None,
        "message": f"not saved: {outcome.summary}",
    }


def _saved(call: ToolCall, saved: ArtifactOut, verb: str) -> ToolOutcome:
    data = {
        "artifact_id": str(saved.id),
        "version": saved.version,
        "title": saved.title,
        "kind": saved.kind,
        "chars": len(saved.content),
    }
    undo = (
        {"kind": "delete_artifact", "artifact_id": str(saved.id)}
        if saved.version == 1
        else {"kind": "drop_artifact_version", "artifact_id": str(saved.id), "version": saved.version}
    )
    outcome = ToolOutcome(
        ok=True, summary=f'{verb} "{saved.title}" (version {saved.version})', data=data, undo=undo
    )
    outcome.artifact = final_event(call.call_id, saved)
    return outcome


def _create(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, CreateArtifactIn)
    saved = artifact_service.create_artifact(
        deps.store,
        deps.settings,
        call.user,
        call.session_id,
        title=call.input.title,
        kind=call.input.kind,
        content=call.input.content,
        request_id=call.request_id,
        call_id=call.call_id,
    )
    return _saved(call, saved, "saved")


async def create_artifact(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    return await asyncio.to_thread(_create, deps, call)


def _revise(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, ReviseArtifactIn)
    saved = artifact_service.revise_artifact(
        deps.store,
        deps.settings,
        call.user,
        call.session_id,
        call.input.artifact_id,
        content=call.input.content,
        title=call.input.title,
        request_id=call.request_id,
        call_id=call.call_id,
    )
    return _saved(call, saved, "revised")


async def revise_artifact(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    return await asyncio.to_thread(_revise, deps, call)
