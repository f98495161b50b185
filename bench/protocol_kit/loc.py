"""Lines of code per transport path, counted from the code: for each path, the functions, classes
and modules it runs through on the server and in the client (listed below by hand, read by
``ast``), in lines that are neither blank, comments nor docstrings. A line is counted once per
path even when two listed pieces hold it. ``shared`` is what every streaming path (or every path)
runs through and is not counted in the per-path figures."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SRV = "streaming_service/routes.py"
MGR = "streaming_service/chat_requests/manager.py"
READ = "streaming_service/chat_requests/readers.py"
EVENTS = "shared/ytresearch/events.py"
CHAT = "client/ytr/chat.py"
CLIENT = "client/ytr/client.py"
# The follow path: a stream's events from memory or the event log, live or replayed after an id.
FOLLOW = [
    f"{MGR}::ChatRequestManager.follow",
    f"{MGR}::ChatRequestManager.check_access",
    f"{READ}::Readers.follow",
    f"{READ}::Readers._live_batch",
    f"{READ}::Readers._poll",
    f"{READ}::Readers._read_log",
    f"{READ}::Readers.check_access",
    f"{READ}::stored_event",
]
SSE_SERVER = ["shared/ytresearch/web/sse.py", f"{EVENTS}::StreamEvent.sse", f"{EVENTS}::sse_comment"]
SSE_SERVER += [f"{EVENTS}::sse_retry", f"{SRV}::render_sse", f"{SRV}::ChatIn", *FOLLOW]
SSE_CLIENT = [f"{CHAT}::follow_sse", f"{CHAT}::reconnect_note", f"{CLIENT}::ApiClient.events"]
SSE_CLIENT += ["client/ytr/sse.py"]
START_CLIENT = [f"{CLIENT}::ApiClient.start_chat", f"{CLIENT}::chat_body"]

SERVER: dict[str, list[str]] = {
    "sync": [
        "functions/api/routes.py::send_message",
        "functions/api/routes.py::SendMessageIn",
        "shared/ytresearch/services/chat.py::chat_sync",
    ],
    "poll": [
        f"{SRV}::start_chat",
        f"{SRV}::ChatIn",
        f"{SRV}::ChatStarted",
        f"{SRV}::request_status",
        f"{MGR}::ChatRequestManager.status",
        f"{READ}::Readers.status",
        f"{READ}::Readers._stored_events",
        f"{READ}::Readers._owned_request",
        "shared/ytresearch/views.py::RequestStatusOut",
    ],
    "sse": [
        f"{SRV}::start_chat",
        f"{SRV}::ChatStarted",
        f"{SRV}::stream_chat",
        f"{SRV}::parse_last_event_id",
        f"{SRV}::sse_frames",
        *SSE_SERVER,
    ],
    "sse-1step": [f"{SRV}::stream_message", *SSE_SERVER],
    "ws": ["streaming_service/ws.py", f"{EVENTS}::StreamEvent.ws", *FOLLOW],
}
CLIENT_PATHS: dict[str, list[str]] = {
    "sync": [f"{CHAT}::chat_sync", f"{CLIENT}::ApiClient.send_message", f"{CLIENT}::chat_body"],
    "poll": [
        f"{CHAT}::chat_poll",
        f"{CLIENT}::ApiClient.request_status",
        "client/ytr/reply.py::ReplyFollower.from_status",
        *START_CLIENT,
    ],
    "sse": [f"{CHAT}::chat_sse", *START_CLIENT, *SSE_CLIENT],
    "sse-1step": [],  # no client of ours: curl, or a browser's fetch
    # The WebSocket client and, when its socket drops, the SSE path it finishes the reply on.
    "ws": [
        f"{CHAT}::chat_ws",
        f"{CHAT}::follow_socket",
        f"{CLIENT}::ApiClient.websocket",
        "client/ytr/chat_socket.py",
        *SSE_CLIENT,
    ],
}
SHARED: dict[str, list[str]] = {
    "server: request manager (every streaming path)": [
        "streaming_service/chat_requests/manager.py",
        "streaming_service/chat_requests/runner.py",
        "streaming_service/chat_requests/live.py",
        "streaming_service/chat_requests/event_log.py",
        "streaming_service/chat_requests/deps.py",
        "streaming_service/chat_requests/cleanup.py",
        "streaming_service/chat_requests/readers.py",
    ],
    "server: chat engine (every path)": ["shared/ytresearch/services/chat.py"],
    "client: reply rendering (every path)": ["client/ytr/reply.py", "client/ytr/render.py"],
}


def code_lines(source: str, first: int = 1, last: int | None = None) -> set[int]:
    """Line numbers in [first, last] holding code: not blank, not only a comment, not a docstring."""
    lines = source.splitlines()
    last = len(lines) if last is None else last
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            head = body[0]
            if (
                isinstance(head, ast.Expr)
                and isinstance(head.value, ast.Constant)
                and isinstance(head.value.value, str)
            ):
                docstrings.update(range(head.lineno, (head.end_lineno or head.lineno) + 1))
    with_code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        if token.type == tokenize.ENDMARKER:
            continue
        with_code.update(range(token.start[0], token.end[0] + 1))
    return {n for n in with_code - docstrings if first <= n <= last}


def find(tree: ast.Module, qualname: str) -> ast.AST:
    """The class or function ``A.b`` (at module level, or in a class) in a parsed module."""
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in scope
                if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and n.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{qualname}: no {part}")
        scope = getattr(node, "body", [])
    assert node is not None
    return node


def lines_of(spec: str, root: Path = REPO) -> set[tuple[str, int]]:
    """The code lines of ``path`` or ``path::Qualified.name``, as (path, line number) pairs."""
    path, _, qualname = spec.partition("::")
    source = (root / path).read_text()
    if not qualname:
        return {(path, n) for n in code_lines(source)}
    node = find(ast.parse(source), qualname)
    decorators = getattr(node, "decorator_list", [])
    first = min([getattr(node, "lineno", 1), *(d.lineno for d in decorators)])
    return {(path, n) for n in code_lines(source, first, getattr(node, "end_lineno", None))}


def count(specs: list[str], root: Path = REPO) -> int:
    found: set[tuple[str, int]] = set()
    for spec in specs:
        found |= lines_of(spec, root)
    return len(found)


def table_rows(root: Path = REPO) -> list[list[object]]:
    """[path, server lines, client lines] for each transport, then the shared parts."""
    rows: list[list[object]] = [
        [name, count(SERVER[name], root), count(CLIENT_PATHS[name], root) if CLIENT_PATHS[name] else "none"]
        for name in SERVER
    ]
    for label, specs in SHARED.items():
        server = label.startswith("server")
        rows.append(
            [f"shared, {label}", count(specs, root) if server else "", "" if server else count(specs, root)]
        )
    return rows
