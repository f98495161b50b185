"""Tool use on the Messages API: how port blocks and tool specs become request parameters, and how
the ``tool_use`` blocks of a streamed reply become ``ToolCallRequested`` events.

A streamed tool call arrives as ``content_block_start`` (``type: "tool_use"`` with its id and
name), ``input_json_delta`` pieces of its input JSON, then ``content_block_stop`` at the same
index; only then is the JSON whole. For a tool whose spec ``streams_input`` (an artifact), the
input so far is also parsed after each piece, in jiter's partial mode (as the SDK's own message
accumulator does), and told as ``ToolInputDelta``. Blocks of one message never interleave.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from jiter import from_json

from ytresearch.llm.anthropic_citations import document_param
from ytresearch.ports import (
    ContentBlock,
    DocumentBlock,
    MessageBlock,
    ToolCallRequested,
    ToolInputDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)


def text_param(text: str, cache: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    return block


def block_param(block: MessageBlock) -> dict[str, Any] | None:
    """One message block as the API's content block; None for a whitespace-only text block (the
    API rejects those). Tool blocks are never left out: their ids pair a call with its result; nor
    are documents: citations point at them by their position among the request's documents."""
    if isinstance(block, ContentBlock):
        return text_param(block.text, block.cache) if block.text.strip() else None
    if isinstance(block, DocumentBlock):
        return document_param(block)
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.call_id, "name": block.name, "input": block.input}
    if isinstance(block, ToolResultBlock):
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": block.call_id,
            "content": block.content,
        }
        if block.is_error:
            result["is_error"] = True
        return result
    raise TypeError(f"not a message block: {block!r}")


def tool_param(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


def parse_tool_input(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """The input object of a finished tool call and None, or None and why it is not one. The API
    sends no JSON at all for a call without arguments: that is ``{}``."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, f"the tool input is not valid JSON ({reason})"
    if not isinstance(value, dict):
        return None, f"the tool input is a JSON {type(value).__name__}, not an object"
    return value, None


def partial_input(raw: str) -> dict[str, Any] | None:
    """As much of a tool input still arriving as parses (a string cut short keeps what it has),
    or None while that is not yet an object."""
    try:
        value = from_json(raw.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class _PendingCall:
    __slots__ = ("call_id", "name", "parts", "streamed")

    def __init__(self, call_id: str, name: str, streamed: bool) -> None:
        self.call_id = call_id
        self.name = name
        self.parts: list[str] = []
        self.streamed = streamed


class ToolCallAssembler:
    """The tool calls of one streamed message, by content block index, while their JSON arrives.
    ``streamed``: the tools whose input is told while it arrives."""

    __slots__ = ("_open", "_streamed")

    def __init__(self, streamed: Collection[str] = ()) -> None:
        self._open: dict[Any, _PendingCall] = {}
        self._streamed = frozenset(streamed)

    def start(self, event: dict[str, Any]) -> None:
        """A ``content_block_start``: remember it when it opens a tool call."""
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            name = str(block.get("name") or "")
            self._open[event.get("index")] = _PendingCall(
                str(block.get("id") or ""), name, name in self._streamed
            )

    def add(self, index: Any, partial_json: Any) -> ToolInputDelta | None:
        """An ``input_json_delta`` for the block at ``index``; for a streamed tool, its input so far."""
        pending = self._open.get(index)
        if pending is None or not isinstance(partial_json, str) or not partial_json:
            return None
        pending.parts.append(partial_json)
        if not pending.streamed:
            return None
        so_far = partial_input("".join(pending.parts))
        return ToolInputDelta(pending.call_id, pending.name, so_far) if so_far else None

    def stop(self, index: Any) -> ToolCallRequested | None:
        """A ``content_block_stop``: the finished call at ``index``, or None for a text block."""
        pending = self._open.pop(index, None)
        if pending is None:
            return None
        tool_input, error = parse_tool_input("".join(pending.parts))
        return ToolCallRequested(pending.call_id, pending.name, tool_input, error)
