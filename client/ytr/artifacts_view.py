"""How `ytr chat` and `ytr shell` show the documents the research agent writes (``artifact``
events: a comparison table, an outline, study notes), among the tool lines on stderr::

    ▣ writing "Talks compared"… 1,234 chars       (redrawn in place on a terminal while written)
    → create_artifact title="Talks compared" kind=table
    ▣ saved "Talks compared" (table, version 1): ytr artifact show SESSION_ID ARTIFACT_ID
    ✓ saved "Talks compared" (version 1)

or ``▣ not saved: <why>`` when it was not saved. Off a terminal the writing line is not shown (the
saved line says it all), and with ``--json`` nothing is: the result's ``artifacts`` lists the
final and failed events, without their content (``chars`` says how long it is).

A ``partial`` event carries only new text: its ``content`` replaces the draft from ``offset`` on,
so one told twice (a resumed stream) changes nothing. Titles come from the model: cleaned of
control characters (no terminal escapes) and kept to one line, like every tool line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ytr.render import clean
from ytr.tool_view import ARTIFACT_TOOLS, UNICODE, ToolView, shorten

TITLE_WIDTH = 80
TRANSPORT_KEYS = ("type", "id", "request_id")  # WebSocket frame fields, not the event's
_NOT_SAVED = re.compile(r"^not saved:\s*", re.IGNORECASE)


@dataclass
class Draft:
    """An artifact as written so far (its partial events applied)."""

    title: str = ""
    kind: str = ""
    text: str = ""

    def follow(self, data: dict[str, Any]) -> None:
        offset = data.get("offset")
        if isinstance(offset, bool) or not isinstance(offset, int):
            offset = len(self.text)
        self.text = self.text[: max(0, offset)] + str(data.get("content") or "")
        self.title = str(data.get("title") or self.title)
        self.kind = str(data.get("kind") or self.kind)


class ArtifactView:
    """Renders one reply's ``artifact`` events through its ``ToolView`` (same stream, same
    in-place line, same --json silence) and keeps how each ended for ``--json``."""

    def __init__(self, view: ToolView, session_id: str = "") -> None:
        self.view = view
        self.session_id = clean(session_id) or "SESSION_ID"
        self.symbol = "▣" if view.symbols == UNICODE else "[#]"
        self.drafts: dict[str, Draft] = {}
        self.ended: list[dict[str, Any]] = []

    def apply(self, data: dict[str, Any]) -> None:
        event = {k: v for k, v in data.items() if k not in TRANSPORT_KEYS}
        call_id = str(event.get("call_id") or "")
        status = event.get("status")
        if status == "partial":
            self.partial(call_id, event)
        elif status == "final":
            self.final(call_id, event)
        elif status == "failed":
            self.failed(call_id, event)

    def partial(self, call_id: str, event: dict[str, Any]) -> None:
        draft = self.drafts.setdefault(call_id, Draft())
        draft.follow(event)
        more = self.view.symbols.more
        self.view.status(
            call_id, f"{self.symbol} writing {self._title(draft.title)}{more} {len(draft.text):,} chars"
        )

    def final(self, call_id: str, event: dict[str, Any]) -> None:
        self.drafts.pop(call_id, None)
        content = event.get("content")
        chars = len(content) if isinstance(content, str) else event.get("chars")
        record = {
            "call_id": call_id,
            "status": "final",
            "artifact_id": event.get("artifact_id"),
            "version": event.get("version"),
            "title": event.get("title"),
            "kind": event.get("kind"),
            "chars": chars,
        }
        self.ended.append(record)
        parts = [clean(event.get("kind") or "")]
        if event.get("version") is not None:
            parts.append(f"version {clean(event['version'])}")
        what = ", ".join(part for part in parts if part)
        command = f"ytr artifact show {self.session_id} {clean(event.get('artifact_id') or '')}"
        what = f" ({what})" if what else ""
        line = f"{self.symbol} saved {self._title(event.get('title'))}{what}: {command}"
        self.view.say(line, replacing=call_id)

    def failed(self, call_id: str, event: dict[str, Any]) -> None:
        self.drafts.pop(call_id, None)  # the draft was not saved: forget it
        message = _NOT_SAVED.sub("", clean(event.get("message") or "")) or "the artifact was not saved"
        self.ended.append(
            {
                "call_id": call_id,
                "status": "failed",
                "artifact_id": event.get("artifact_id"),
                "message": event.get("message"),
            }
        )
        self.view.say(f"{self.symbol} not saved: {message}", replacing=call_id)

    def stored(self, item: dict[str, Any]) -> None:
        """A saved reply's call (the synchronous transport: no events): its artifact's line from
        what the tool returned (``content``, the JSON the model read)."""
        if item.get("name") not in ARTIFACT_TOOLS:
            return
        call_id = str(item.get("call_id") or "")
        try:
            told = json.loads(str(item.get("content") or ""))
        except ValueError:
            told = None
        told = told if isinstance(told, dict) else {}
        data = told.get("data")
        if item.get("ok") and isinstance(data, dict) and data.get("artifact_id"):
            self.final(call_id, {**data, "status": "final"})
        elif not item.get("ok"):
            error = told.get("error")
            why = error.get("message") if isinstance(error, dict) else None
            tool_input = item.get("input")
            revised = tool_input.get("artifact_id") if isinstance(tool_input, dict) else None
            self.failed(call_id, {"artifact_id": revised, "message": why or item.get("summary")})

    def as_json(self) -> list[dict[str, Any]]:
        return list(self.ended)

    def _title(self, title: Any) -> str:
        shown = clean(title or "")
        return f'"{shorten(shown, TITLE_WIDTH, self.view.symbols.more)}"' if shown else "an artifact"
