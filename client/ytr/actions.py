"""`ytr actions` and `ytr undo`: what the research agent did in a session (its tool calls), newest
first, and taking one of them back."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ytr.errors import EXIT_OK
from ytr.render import Output, fmt_time

if TYPE_CHECKING:
    from ytr.client import ApiClient

SUMMARY_CHARS = 80


def cmd_actions(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    page = client.list_actions(args.session_id, args.limit, args.cursor)
    if out.json_mode:
        out.json(page)  # the API's order: newest first
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line("no agent actions" + (" on this page" if args.cursor else " in this session yet"))
    width = max((len(one_line(a.get("tool"))) for a in items), default=0)
    for action in items:
        out.line(action_line(action, width))
        if action.get("undoable"):
            out.line(f"    undo: ytr undo {args.session_id} {action.get('id')}")
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"older actions: ytr actions {args.session_id} --cursor {page['next_cursor']}")
    return EXIT_OK


def cmd_undo(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    action = client.undo_action(args.session_id, args.action_id)
    return out.result(
        action, f"undid {one_line(action.get('tool'))} ({action.get('id')}): {reversed_what(action)}"
    )


def action_line(action: dict[str, Any], tool_width: int) -> str:
    """When, which tool, how it ended, and what it was asked (one line)."""
    tool = one_line(action.get("tool")).ljust(tool_width)
    status = one_line(action.get("status")).ljust(7)
    line = f"{fmt_time(action.get('created_at'))}  {tool}  {status}  {input_summary(action.get('input'))}"
    result = action.get("result")
    error = result.get("error") if isinstance(result, dict) else None
    if isinstance(error, dict) and error.get("code"):
        line += f"  ({one_line(error['code'])})"
    if action.get("undone_at"):
        line += f"  [undone {fmt_time(action['undone_at'])}]"
    return line


def input_summary(tool_input: Any) -> str:
    """``key: value, ...`` of the tool's input, shortened to one line."""
    if not isinstance(tool_input, dict) or not tool_input:
        return "-"
    parts = [f"{one_line(key)}: {_value(value)}" for key, value in tool_input.items()]
    return shorten(", ".join(parts), SUMMARY_CHARS)


def _value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return one_line("[" + ", ".join(str(v) for v in value) + "]")
    if isinstance(value, list | dict):
        return one_line(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return one_line(value)


def reversed_what(action: dict[str, Any]) -> str:
    """What undoing the action put back, said from the tool and what it had done."""
    tool = action.get("tool")
    data = (action.get("result") or {}).get("data") if isinstance(action.get("result"), dict) else None
    data = data if isinstance(data, dict) else {}
    ids = [one_line(v) for v in data.get("video_ids") or [] if isinstance(v, str)]
    if tool == "add_video":
        return f"{ids[0] if ids else 'the video'} is no longer in the session"
    if tool == "add_playlist":
        listed = shorten(", ".join(ids), SUMMARY_CHARS)
        return f"{len(ids)} video{'' if len(ids) == 1 else 's'} no longer in the session" + (
            f": {listed}" if ids else ""
        )
    if tool == "remove_video":
        video = data.get("video_id") or (action.get("input") or {}).get("video") or "the video"
        return f"{one_line(video)} is back in the session"
    if tool == "organize_videos":
        return "the videos are back in their previous order"
    return "undone"


def one_line(value: Any) -> str:
    """Text from the server as one printable line: tool inputs come from the model, which read
    titles and transcripts strangers wrote, so control characters (terminal escapes) go."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
