"""`ytr chat`, `ytr shell` and `ytr history`: asking about a session's videos and reading its
messages. The transports themselves are `ytr.chat` (imported when a chat runs: it needs httpx)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ytr.errors import EXIT_OK, EXIT_USAGE, CliError
from ytr.render import Output

if TYPE_CHECKING:
    from ytr.client import ApiClient


def cmd_chat(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    if args.interactive:
        if args.question:
            raise CliError(
                "USAGE", "--interactive reads questions from the prompt; drop the question", EXIT_USAGE
            )
        if args.transport not in (None, "ws"):
            raise CliError(
                "USAGE", "the interactive chat runs over the WebSocket (--transport ws)", EXIT_USAGE
            )
        if args.timings:
            raise CliError("USAGE", "--timings times one reply: drop --interactive", EXIT_USAGE)
        return cmd_shell(args, client, out)
    question = args.question
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise CliError(
                "USAGE", "give a question, '-' to read it from stdin, or --interactive", EXIT_USAGE
            )
        question = sys.stdin.read()
    if not question.strip():
        raise CliError("USAGE", "the question is empty", EXIT_USAGE)

    from ytr.chat import ReplyFollower, run_chat
    from ytr.timings import TimedText, Timings, timings_line
    from ytr.tool_view import Approvals

    transport = args.transport or "sse"
    text = TimedText(out, show=not out.json_mode)
    approvals = Approvals(assume_yes=args.yes)
    follower = ReplyFollower(transport, text, out, approvals=approvals, session_id=args.session_id)
    timings = Timings(transport, text)  # the clock starts before the first request
    result = run_chat(
        transport, client, args.session_id, question, args.video_ids, follower, tools=args.tools
    )
    timings.stop()
    figures = timings.figures(result.text, result.usage) if args.timings else None
    if out.json_mode:
        document = result.as_json()
        if figures is not None:
            document["timings"] = figures
        out.json(document)
        problem = result.error_line()
        if problem is not None:
            out.note(problem.line())
    else:
        text.end_line()
        if result.status == "cancelled":
            out.line("[cancelled]")
        problem = result.error_line()
        if problem is not None:
            out.error(problem)
    if figures is not None:
        encoding = (getattr(out.stderr, "encoding", None) or "").lower().replace("-", "")
        out.note(timings_line(figures, unicode=encoding == "utf8"))
    return result.exit_code


def cmd_shell(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.chat import shell

    return shell(
        client,
        args.session_id,
        args.video_ids,
        out,
        sys.stdin,
        tools=args.tools,
        assume_yes=args.yes,
    )


def cmd_history(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_messages

    if args.all:
        items: list[dict[str, Any]] = []
        cursor = args.cursor
        while True:
            page = client.list_messages(args.session_id, args.limit or 100, cursor)
            items.extend(page.get("items") or [])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        page = {"items": items, "next_cursor": None, "has_more": False}
    else:
        page = client.list_messages(args.session_id, args.limit, args.cursor)
    if out.json_mode:
        out.json(page)  # the API's order: newest first
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line(
            "no messages"
            + (" on this page" if args.cursor else " yet: ask with `ytr chat SESSION_ID QUESTION`")
        )
    else:
        render_messages(out, list(reversed(items)))
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"older messages: ytr history {args.session_id} --cursor {page['next_cursor']}")
    return EXIT_OK
