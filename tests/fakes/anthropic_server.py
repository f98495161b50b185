"""A local server that speaks Anthropic's Messages API, for driving the real ``anthropic`` SDK.

``FakeAnthropic`` runs uvicorn on 127.0.0.1 (a free port) in a background thread and serves
``POST /v1/messages`` the way api.anthropic.com does:

* non-streaming: one JSON ``Message`` object;
* streaming (``"stream": true``): ``text/event-stream`` with ``message_start``,
  ``content_block_start``, ``ping``, one ``content_block_delta`` (``text_delta``) per chunk,
  ``content_block_stop``, ``message_delta``, ``message_stop``, each framed as
  ``event: NAME\\ndata: JSON\\n\\n``;
* tool use: a ``Reply`` with ``tool_calls`` answers with the text block (if any text) and then one
  ``tool_use`` block per call, each at its own index: ``content_block_start`` with
  ``{"type": "tool_use", "id": "toolu_...", "name": ..., "input": {}}``, the input JSON in
  ``input_json_delta`` pieces (``partial_json``), ``content_block_stop``; the stop reason is
  ``tool_use`` and the output usage counts the JSON. ``ToolCall.raw_json`` sends any text as the
  JSON (malformed input, as a model can write it). Non-streaming replies carry the same
  ``tool_use`` blocks in ``content``;
* citations: a ``Reply`` with ``cited`` pieces (``Cited``) answers with one text block per piece;
  a cited piece's block starts with one ``citations_delta`` (``content_block_location`` for a
  custom-content document: ``cited_text`` the cited parts joined exactly as the request sent them,
  ``document_title`` the request's title; ``char_location`` over the sentences of a plain-text
  document) before its ``text_delta`` events. Non-streaming replies carry the same text blocks,
  each cited one with its ``citations`` list. Scripted citations are *not* checked against the
  request: one outside its documents is sent as written, so tests can see how a client copes;
* errors as ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``
  with the API's statuses (429 with ``retry-after``, 529 overloaded, 500 ...), and mid-stream
  ``event: error`` frames;
* the API key (``x-api-key``, or ``Authorization: Bearer`` as anthropic 2.x sends it) and the
  ``anthropic-version`` header are checked (401 / 400 like the real API),
  and so are the request rules that the real API enforces and an adapter can get wrong, with
  400 ``invalid_request_error`` messages close to the API's: at most 4 ``cache_control`` blocks,
  no empty text blocks, required fields; ``document`` blocks only in user messages, with a
  ``content`` source (a non-empty string or list of non-blank text blocks) or a plain-text one
  (``text``, ``text/plain``; chunked into sentences as the API does), an optional string
  ``title`` and ``context``, and ``citations.enabled`` the same on every document; ``tools``
  (names matching ``^[a-zA-Z0-9_-]{1,64}$`` and unique, an object ``input_schema``, a string
  description); ``tool_use`` blocks only in assistant messages and ``tool_result`` blocks only in
  user messages; every ``tool_use`` answered by a ``tool_result`` at the start of the very next
  (user) message, and every ``tool_result`` answering a ``tool_use`` of the message just before;
* prompt caching is accounted for: the first request with a ``cache_control``-marked prefix
  reports ``cache_creation_input_tokens``, a later request with the same prefix reports
  ``cache_read_input_tokens``. The prefix is tools, then system, then messages, as on the API;
  tokens are estimated as ``ceil(len(text) / 4)`` of each block's text (a tool: its JSON
  definition; a ``tool_use``: its name and input JSON; a ``tool_result``: its content; a
  ``document``: its title, context and text).

Tests script what happens next with a FIFO of behaviours, consumed one per accepted request::

    fake.enqueue(ErrorReply(status=429, retry_after=0), Reply(text="Hello", chunk_size=2))
    fake.enqueue(Reply(text="Let me look.", tool_calls=(ToolCall("search", {"q": "solar"}),)))
    fake.enqueue(Reply(cited=(Cited("The speaker says "), Cited("panels pay off", 0, start=2, end=4))))
    fake.enqueue(DropConnection(text="", tool_calls=(ToolCall("search", {"q": "x"}),),
                                after_tool_chunks=1))  # fails in the middle of the tool's JSON

and read what the client did from ``fake.requests`` (headers and parsed JSON body of every
request), ``fake.disconnects`` (streams the *client* closed before the end, with the monotonic
time the server noticed) and ``fake.completed_streams``.

Everything runs on one asyncio loop (no thread per request), so hundreds of concurrent streams
are fine; ``chunks_per_second`` paces the stream for benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from ytresearch.config import DEFAULT_MODEL

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODEL",
    "Behaviour",
    "Cited",
    "DropConnection",
    "ErrorReply",
    "FakeAnthropic",
    "MidStreamError",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "estimate_tokens",
]

DEFAULT_API_KEY = "sk-ant-test-key"
MAX_CACHE_BREAKPOINTS = 4  # the real API rejects a request with more
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # how the fake chunks a plain-text document

# The error ``type`` the real API uses for each status.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out.",
    "overloaded_error": "Overloaded",
}


def estimate_tokens(text: str) -> int:
    """The fake's token count for a piece of text: ``ceil(len / 4)``."""
    return math.ceil(len(text) / 4)


def _request_id() -> str:
    return "req_fake_" + uuid.uuid4().hex[:24]


def _tool_use_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------- scripted behaviours


def _split(text: str, chunk_size: int) -> list[str]:
    size = max(1, chunk_size)
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(frozen=True)
class Cited:
    """One piece of a reply's text, streamed as a text block of its own. With ``document_index``
    set, the block's citation of parts ``start`` to ``end`` (exclusive; None: ``start + 1``) of
    the request's ``document_index``-th document (counted over all messages) goes out before its
    text; with None the piece is plain, uncited text.

    The fake does not check the citation against the request: one that points outside its
    documents is sent as scripted, with the ``cited_text`` of whatever of those parts exist
    (usually ``""``) and no ``document_title``, so tests can check that a client drops it."""

    text: str
    document_index: int | None = None
    start: int = 0
    end: int | None = None

    @property
    def end_part(self) -> int:
        return self.end if self.end is not None else self.start + 1


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model makes: a ``tool_use`` block after the reply's text. ``input`` is
    sent as JSON (``None``: ``{}``) in ``chunk_size``-character ``input_json_delta`` pieces;
    ``raw_json`` sends that exact text instead (e.g. malformed JSON, or ``""`` for no deltas).
    ``id`` defaults to a fresh ``toolu_<24 hex>``. In a non-streaming reply the block's ``input``
    is the parsed JSON, or the raw text when it does not parse."""

    name: str
    input: dict[str, Any] | None = None
    id: str | None = None
    raw_json: str | None = None
    chunk_size: int = 12

    @property
    def json_text(self) -> str:
        return self.raw_json if self.raw_json is not None else json.dumps(self.input or {})

    def json_chunks(self) -> list[str]:
        return _split(self.json_text, self.chunk_size)


@dataclass(frozen=True)
class Reply:
    """A successful answer. ``text`` is streamed in ``chunk_size``-character deltas (or exactly
    ``chunks`` when given), then each of ``tool_calls`` as a ``tool_use`` block. ``cited``, when
    given, replaces ``text`` (and ``chunks``): each piece is a text block of its own, streamed in
    ``chunk_size``-character deltas after its citation (see ``Cited``).
    ``delay_headers`` waits before the response headers, ``delay_first`` before the first delta
    (after ``message_start``), ``delay_per_chunk`` before each later delta, text or tool JSON
    (``None``: the server's ``chunks_per_second`` pace, else none). ``usage`` overrides any of
    the computed usage fields (``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``). ``stop_reason`` None: ``"tool_use"`` when there are tool
    calls, else ``"end_turn"`` (``"max_tokens"`` whenever ``max_tokens`` cut the reply short)."""

    text: str = "Hello from the fake Claude."
    chunk_size: int = 8
    chunks: tuple[str, ...] | None = None
    delay_headers: float = 0.0
    delay_first: float = 0.0
    delay_per_chunk: float | None = None
    usage: Mapping[str, int] | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None
    model: str | None = None  # None: echo the requested model
    tool_calls: tuple[ToolCall, ...] = ()
    cited: tuple[Cited, ...] = ()

    def text_chunks(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else _split(self.text, self.chunk_size)

    def pieces(self) -> list[tuple[list[str], Cited | None]]:
        """The reply's text blocks: each one's chunks and what it cites."""
        if self.cited:
            return _cited_pieces(self.cited, self.chunk_size)
        return [(self.text_chunks(), None)]

    @property
    def resolved_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error response in the API's shape. ``error_type`` defaults from the status."""

    status: int = 500
    error_type: str | None = None
    message: str | None = None
    retry_after: float | None = None  # sent as the ``retry-after`` header (seconds)
    should_retry: bool | None = None  # ``x-should-retry``; None: true for 408/409/429/5xx
    delay_headers: float = 0.0

    @property
    def resolved_type(self) -> str:
        if self.error_type:
            return self.error_type
        if self.status >= 500 and self.status not in ERROR_TYPES:
            return "api_error"
        return ERROR_TYPES.get(self.status, "invalid_request_error")


@dataclass(frozen=True)
class DropConnection:
    """Start a normal stream, send ``after_chunks`` text deltas, then abruptly close the TCP
    connection (no terminating chunk, no ``message_stop``). ``cited`` replaces ``text`` as for
    ``Reply``; ``after_chunks`` counts text deltas across its pieces, and the failure comes just
    before the next text delta, so a block that starts right at the limit still sends its
    citation first (0 with a cited first piece: the citation, then the failure). With
    ``after_tool_chunks`` set, the
    whole text goes out and the drop comes after that many ``input_json_delta`` deltas, counted
    across ``tool_calls`` in order (a finished call's ``content_block_stop`` goes out before the
    next call starts; 0: right after the first call's ``content_block_start``). On a
    non-streaming request the connection is dropped after the headers and part of the body."""

    after_chunks: int = 0
    text: str = "This answer is going to be cut off somewhere in the middle, sorry."
    chunk_size: int = 8
    delay_per_chunk: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    after_tool_chunks: int | None = None
    cited: tuple[Cited, ...] = ()

    def pieces(self) -> list[tuple[list[str], Cited | None]]:
        if self.cited:
            return _cited_pieces(self.cited, self.chunk_size)
        return [(_split(self.text, self.chunk_size), None)]


@dataclass(frozen=True)
class MidStreamError:
    """Start a normal stream (HTTP 200), send ``after_chunks`` text deltas, then an
    ``event: error`` frame (``overloaded_error`` by default) and end the response, as the real
    API does when it fails after the headers went out. ``cited``, ``tool_calls`` and
    ``after_tool_chunks`` work as for ``DropConnection``."""

    after_chunks: int = 0
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    text: str = "This answer is going to fail somewhere in the middle, sorry."
    chunk_size: int = 8
    delay_per_chunk: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    after_tool_chunks: int | None = None
    cited: tuple[Cited, ...] = ()

    def pieces(self) -> list[tuple[list[str], Cited | None]]:
        if self.cited:
            return _cited_pieces(self.cited, self.chunk_size)
        return [(_split(self.text, self.chunk_size), None)]


def _cited_pieces(cited: tuple[Cited, ...], chunk_size: int) -> list[tuple[list[str], Cited | None]]:
    return [(_split(c.text, chunk_size), c if c.document_index is not None else None) for c in cited]


Behaviour = Reply | ErrorReply | DropConnection | MidStreamError
Responder = Callable[[dict[str, Any]], Behaviour]


@dataclass
class RecordedRequest:
    """One request the server received. ``headers`` has lower-cased names; ``body`` is the
    parsed JSON (``None`` when the body was not JSON)."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float  # time.monotonic()
    behaviour: Behaviour | None = None  # what the server answered with (None: rejected early)

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


class _AbortConnection(Exception):
    """Raised inside the ASGI app to make uvicorn close the transport mid-response."""


class _QuietAbortFilter(logging.Filter):
    """uvicorn logs every exception that escapes the app; our deliberate aborts are not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _AbortConnection)


_quiet_filter = _QuietAbortFilter()
logging.getLogger("uvicorn.error").addFilter(_quiet_filter)


class _RequestRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Block:
    text: str
    cached: bool
    identity: str  # canonical JSON of the block without its cache_control mark


def _cut(chunks: list[str], budget: int) -> tuple[list[str], bool]:
    """The chunks that fit in ``budget`` characters (the last one shortened), and whether any
    were cut."""
    if sum(len(c) for c in chunks) <= budget:
        return chunks, False
    kept: list[str] = []
    used = 0
    for chunk in chunks:
        if used + len(chunk) > budget:
            if budget - used > 0:
                kept.append(chunk[: budget - used])
            break
        kept.append(chunk)
        used += len(chunk)
    return kept, True


@dataclass
class _ToolUse:
    """One tool_use block of a reply, as sent."""

    id: str
    name: str
    json_chunks: list[str]

    def parsed_input(self) -> Any:
        """The block's ``input`` in a non-streaming reply: the JSON, or the raw text when it does
        not parse (the real API parses it server-side; a fake can only pass it on)."""
        raw = "".join(self.json_chunks)
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw


@dataclass
class _Text:
    """One text block of a reply, as sent: its chunks and the citations that go out first."""

    chunks: list[str]
    citations: list[dict[str, Any]]

    def content(self) -> dict[str, Any]:
        """The block in a non-streaming reply."""
        block: dict[str, Any] = {"type": "text", "text": "".join(self.chunks)}
        if self.citations:
            block["citations"] = self.citations
        return block


@dataclass
class _Output:
    """What a reply writes: its text blocks, its tool calls and why it stopped."""

    texts: list[_Text]
    tool_uses: list[_ToolUse]
    stop_reason: str

    @property
    def written(self) -> str:
        """Everything the model wrote (for the output token count; a ``cited_text`` is not
        counted, as on the API)."""
        text = "".join(c for t in self.texts for c in t.chunks)
        return text + "".join(c for use in self.tool_uses for c in use.json_chunks)


@dataclass
class _Document:
    """A document of the request, as a citation sees it. ``spans`` are a plain-text document's
    sentences as character ranges of its text (None: a custom-content document)."""

    title: str | None
    parts: list[str]
    spans: list[tuple[int, int]] | None = None

    def citation(self, cited: Cited) -> dict[str, Any]:
        start, end = cited.start, cited.end_part
        if self.spans is None:
            return _block_location(cited, "".join(self.parts[max(0, start) : max(0, end)]), self.title)
        text = "".join(self.parts)
        inside = 0 <= start < end <= len(self.spans)
        first, last = (self.spans[start][0], self.spans[end - 1][1]) if inside else (0, 0)
        return {
            "type": "char_location",
            "cited_text": text[first:last],
            "document_index": cited.document_index,
            "document_title": self.title,
            "start_char_index": first,
            "end_char_index": last,
        }


def _block_location(cited: Cited, cited_text: str, title: str | None) -> dict[str, Any]:
    return {
        "type": "content_block_location",
        "cited_text": cited_text,
        "document_index": cited.document_index,
        "document_title": title,
        "start_block_index": cited.start,
        "end_block_index": cited.end_part,
    }


def _sentences(data: str) -> list[tuple[int, int]]:
    """A plain-text document's citable chunks, as the API makes them: sentences, each with the
    whitespace after it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in SENTENCE_END.finditer(data):
        spans.append((start, match.end()))
        start = match.end()
    if start < len(data):
        spans.append((start, len(data)))
    return spans


def _documents(body: dict[str, Any]) -> list[_Document]:
    """The request's documents in the order citations count them (over all messages)."""
    documents: list[_Document] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") != "document":
                continue
            source, title = block["source"], block.get("title")
            if source["type"] == "text":
                data = source["data"]
                spans = _sentences(data)
                documents.append(_Document(title, [data[a:b] for a, b in spans], spans))
            elif isinstance(source["content"], str):
                documents.append(_Document(title, [source["content"]]))
            else:
                documents.append(_Document(title, [part["text"] for part in source["content"]]))
    return documents


def _citation(documents: list[_Document], cited: Cited) -> dict[str, Any]:
    """A scripted citation as the API would send it; unchecked (see ``Cited``)."""
    index = cited.document_index
    if index is not None and 0 <= index < len(documents):
        return documents[index].citation(cited)
    return _block_location(cited, "", None)


# ---------------------------------------------------------------- the server


class FakeAnthropic:
    """A real HTTP server on loopback that speaks the Messages API. Use as a context manager
    (or ``start()``/``stop()``); point the SDK at ``base_url`` with ``api_key``."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        responder: Responder | None = None,
        chunks_per_second: float | None = None,
        min_cacheable_tokens: int = 0,
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.responder = responder
        # Pace of text deltas when a behaviour does not say (None: as fast as possible).
        self.chunks_per_second = chunks_per_second
        # The real API only caches prefixes of at least 1024 tokens (model-dependent); 0 keeps
        # small test prompts cacheable.
        self.min_cacheable_tokens = min_cacheable_tokens
        self._port = port

        self.requests: list[RecordedRequest] = []
        self.disconnects: list[tuple[int, float]] = []  # (request index, monotonic time)
        self.completed_streams: list[int] = []
        self.disconnected = threading.Event()  # set when any stream is closed by the client
        self.max_active_streams = 0  # the most streams open at once since the last reset

        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._cache: set[str] = set()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._generation = 0
        self._active: Counter[int] = Counter()  # open streams per reset generation
        self.port: int | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropic:
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections, as a real API
        # server would; without it small SSE frames wait for the client's delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            loop="asyncio",
            backlog=4096,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"fake-anthropic-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("FakeAnthropic did not start")
            time.sleep(0.005)
        return self

    def _run(self, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        finally:
            sock.close()

    def stop(self) -> None:
        if self._thread is None or self._server is None:
            return
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may be closing already
                loop.call_soon_threadsafe(self._cancel_tasks)
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._thread = None
        self._server = None
        self._loop = None

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------ scripting and inspection

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Append behaviours to the FIFO; each accepted request consumes one."""
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget scripted behaviours, recorded requests, disconnects and the prompt cache."""
        with self._lock:
            self._queue.clear()
            self._cache.clear()
            self.requests.clear()
            self.disconnects.clear()
            self.completed_streams.clear()
            self.disconnected.clear()
            self.max_active_streams = 0
            # Streams still winding down from before the reset must not record into the new
            # lists (their request indexes would be confused with new ones).
            self._generation += 1

    @property
    def active_streams(self) -> int:
        """Streams open right now (counting only those started since the last reset)."""
        with self._lock:
            return self._active[self._generation]

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def wait_for_disconnect(self, timeout: float = 10.0) -> bool:
        """Block until the server saw a client close a stream early (True) or time out."""
        return self.disconnected.wait(timeout)

    async def wait_for_disconnect_async(self, within: float = 10.0) -> bool:
        """``wait_for_disconnect`` without blocking the caller's event loop."""
        deadline = time.monotonic() + within
        while not self.disconnected.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # ------------------------------------------------------------ the ASGI app

    async def _app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(scope, receive, send)
        except asyncio.CancelledError:
            if self._stopping:
                raise _AbortConnection("server stopping") from None
            raise
        finally:
            self._tasks.discard(task)

    async def _handle(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw.extend(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method, path = scope["method"], scope["path"]
        with self._lock:
            generation = self._generation
            record = RecordedRequest(
                index=len(self.requests),
                method=method,
                path=path,
                headers=headers,
                body=body,
                received_at=time.monotonic(),
            )
            self.requests.append(record)

        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            await self._send_error(send, ErrorReply(404, message=f"Not found: {path}"))
            return
        if method != "POST":
            await self._send_error(send, ErrorReply(405, "invalid_request_error", "Use POST."))
            return
        if self._presented_key(headers) != self.api_key:
            await self._send_error(send, ErrorReply(401, should_retry=False))
            return
        if not headers.get("anthropic-version"):
            await self._send_error(send, ErrorReply(400, message="anthropic-version: header is required"))
            return
        if not isinstance(body, dict):
            await self._send_error(send, ErrorReply(400, message="The request body is not valid JSON."))
            return
        try:
            blocks = self._validate(body, count_only=path.endswith("count_tokens"))
        except _RequestRejected as exc:
            await self._send_error(send, ErrorReply(exc.status, message=exc.message))
            return

        if path.endswith("count_tokens"):
            total = sum(estimate_tokens(b.text) for b in blocks)
            await self._send_json(send, 200, {"input_tokens": total})
            return

        with self._lock:
            behaviour = self._queue.popleft() if self._queue else None
        if behaviour is None:
            behaviour = self.responder(body) if self.responder else self._default_reply(body)
        record.behaviour = behaviour

        if isinstance(behaviour, ErrorReply):
            await asyncio.sleep(behaviour.delay_headers)
            await self._send_error(send, behaviour)
        elif body.get("stream") is True:
            await self._stream(record.index, generation, body, blocks, behaviour, receive, send)
        else:
            await self._respond_json(body, blocks, behaviour, send)

    @staticmethod
    def _presented_key(headers: Mapping[str, str]) -> str | None:
        """The API key the client sent. Older SDKs use ``x-api-key``; anthropic 2.x sends the
        same key as ``Authorization: Bearer <key>``. The API accepts both."""
        if "x-api-key" in headers:
            return headers["x-api-key"]
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    # ------------------------------------------------------------ request rules

    def _validate(self, body: dict[str, Any], *, count_only: bool) -> list[_Block]:
        """The request's blocks in prefix order (tools, system, messages), or _RequestRejected
        for what the real API answers with 400."""
        if not count_only and not isinstance(body.get("max_tokens"), int):
            raise _RequestRejected(400, "max_tokens: Field required")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _RequestRejected(400, "model: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _RequestRejected(400, "messages: at least one message is required")

        blocks = self._tools(body.get("tools"))
        system = body.get("system")
        if isinstance(system, str):
            blocks.append(_Block(system, False, json.dumps(["system", system])))
        elif isinstance(system, list):
            for i, block in enumerate(system):
                blocks.append(self._block(block, f"system.{i}", "system"))
        for m, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                raise _RequestRejected(400, f"messages.{m}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            final_assistant = role == "assistant" and m == len(messages) - 1
            if isinstance(content, str):
                if not content.strip() and not final_assistant:
                    raise _RequestRejected(
                        400,
                        f"messages.{m}: all messages must have non-empty content except for "
                        "the optional final assistant message",
                    )
                blocks.append(_Block(content, False, json.dumps([role, content])))
            elif isinstance(content, list):
                if not content and not final_assistant:
                    raise _RequestRejected(
                        400,
                        f"messages.{m}: all messages must have non-empty content except for "
                        "the optional final assistant message",
                    )
                for i, block in enumerate(content):
                    blocks.append(self._block(block, f"messages.{m}.content.{i}", role))
            else:
                raise _RequestRejected(400, f"messages.{m}.content: Field required")
        self._check_citation_settings(messages)
        uses_tools = self._check_tool_pairing(messages)
        if uses_tools and not body.get("tools"):
            raise _RequestRejected(
                400, "Requests which include `tool_use` or `tool_result` blocks must define tools."
            )

        marked = sum(1 for b in blocks if b.cached)
        if marked > MAX_CACHE_BREAKPOINTS:
            raise _RequestRejected(
                400,
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                f"provided. Found {marked}.",
            )
        return blocks

    @staticmethod
    def _cache_mark(block: dict[str, Any], where: str) -> bool:
        cache_control = block.get("cache_control")
        if cache_control is not None and (
            not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral"
        ):
            raise _RequestRejected(400, f"{where}.cache_control: Input tag must be 'ephemeral'")
        return cache_control is not None

    def _tools(self, tools: Any) -> list[_Block]:
        """The tool definitions as prefix blocks (they come first in the cached prefix)."""
        if tools is None:
            return []
        if not isinstance(tools, list):
            raise _RequestRejected(400, "tools: Input should be a valid list")
        blocks: list[_Block] = []
        names: list[str] = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _RequestRejected(400, f"tools.{i}: Input should be a valid dictionary")
            if tool.get("type") not in (None, "custom"):
                raise _RequestRejected(400, f"tools.{i}.type: the fake supports only custom (client) tools")
            where = f"tools.{i}.custom"
            name = tool.get("name")
            if name is None:
                raise _RequestRejected(400, f"{where}.name: Field required")
            if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
                raise _RequestRejected(
                    400, f"{where}.name: String should match pattern '{TOOL_NAME.pattern}'"
                )
            if "description" in tool and not isinstance(tool["description"], str):
                raise _RequestRejected(400, f"{where}.description: Input should be a valid string")
            schema = tool.get("input_schema")
            if schema is None:
                raise _RequestRejected(400, f"{where}.input_schema: Field required")
            if not isinstance(schema, dict):
                raise _RequestRejected(400, f"{where}.input_schema: Input should be a valid dictionary")
            if schema.get("type") != "object":
                raise _RequestRejected(400, f"{where}.input_schema.type: Input should be 'object'")
            names.append(name)
            cached = self._cache_mark(tool, where)
            definition = json.dumps({k: v for k, v in tool.items() if k != "cache_control"}, sort_keys=True)
            blocks.append(_Block(definition, cached, json.dumps(["tool", definition])))
        if len(set(names)) != len(names):
            raise _RequestRejected(400, "tools: Tool names must be unique.")
        return blocks

    @classmethod
    def _block(cls, block: Any, where: str, role: str) -> _Block:
        if not isinstance(block, dict):
            raise _RequestRejected(400, f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind == "text":
            text = cls._text(block, where)
        elif kind == "tool_use":
            text = cls._tool_use(block, where, role)
        elif kind == "tool_result":
            text = cls._tool_result(block, where, role)
        elif kind == "document":
            text = cls._document(block, where, role)
        else:
            raise _RequestRejected(
                400,
                f"{where}: only text, document, tool_use and tool_result blocks are supported by the fake",
            )
        cached = cls._cache_mark(block, where)
        identity = {k: v for k, v in block.items() if k != "cache_control"}
        return _Block(text, cached, json.dumps([role, identity], sort_keys=True))

    @staticmethod
    def _text(block: dict[str, Any], where: str) -> str:
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _RequestRejected(400, f"{where}: text content blocks must contain non-whitespace text")
        return text

    @staticmethod
    def _tool_use(block: dict[str, Any], where: str, role: str) -> str:
        if role != "assistant":
            raise _RequestRejected(400, f"{where}: `tool_use` blocks can only be in `assistant` messages")
        call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(call_id, str) or not TOOL_USE_ID.fullmatch(call_id):
            raise _RequestRejected(
                400, f"{where}.tool_use.id: String should match pattern '{TOOL_USE_ID.pattern}'"
            )
        if not isinstance(name, str) or not name:
            raise _RequestRejected(400, f"{where}.tool_use.name: Field required")
        if not isinstance(tool_input, dict):
            raise _RequestRejected(400, f"{where}.tool_use.input: Input should be a valid dictionary")
        return name + json.dumps(tool_input)

    @classmethod
    def _tool_result(cls, block: dict[str, Any], where: str, role: str) -> str:
        if role != "user":
            raise _RequestRejected(400, f"{where}: `tool_result` blocks can only be in `user` messages")
        if not isinstance(block.get("tool_use_id"), str):
            raise _RequestRejected(400, f"{where}.tool_result.tool_use_id: Field required")
        content = block.get("content", "")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            parts = []
            for j, item in enumerate(content):
                if not isinstance(item, dict) or item.get("type") != "text":
                    raise _RequestRejected(
                        400,
                        f"{where}.tool_result.content.{j}: only text blocks are supported by the fake",
                    )
                parts.append(cls._text(item, f"{where}.tool_result.content.{j}"))
            text = "\n".join(parts)
        else:
            raise _RequestRejected(
                400, f"{where}.tool_result.content: Input should be a valid string or a valid list"
            )
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise _RequestRejected(400, f"{where}.tool_result.is_error: Input should be a valid boolean")
        if is_error and not text.strip():
            raise _RequestRejected(400, f"{where}.tool_result: content cannot be empty if `is_error` is true")
        return text

    @classmethod
    def _document(cls, block: dict[str, Any], where: str, role: str) -> str:
        """A document block's text for the token count (its title, context and content)."""
        if role != "user":
            raise _RequestRejected(400, f"{where}: `document` blocks can only be in `user` messages")
        source = block.get("source")
        if not isinstance(source, dict):
            raise _RequestRejected(400, f"{where}.document.source: Field required")
        kind = source.get("type")
        if kind == "content":
            content = source.get("content")
            if isinstance(content, str):
                if not content.strip():
                    raise _RequestRejected(
                        400, f"{where}.document.source.content: text content must be non-empty"
                    )
                parts = [content]
            elif isinstance(content, list) and content:
                parts = []
                for j, item in enumerate(content):
                    at = f"{where}.document.source.content.{j}"
                    if not isinstance(item, dict) or item.get("type") != "text":
                        raise _RequestRejected(400, f"{at}: only text blocks are supported by the fake")
                    if "cache_control" in item:
                        raise _RequestRejected(
                            400, f"{at}: the fake supports cache_control on the document block only"
                        )
                    parts.append(cls._text(item, at))
            else:
                raise _RequestRejected(
                    400,
                    f"{where}.document.source.content: Input should be a non-empty string or a "
                    "non-empty list of content blocks",
                )
        elif kind == "text":
            if source.get("media_type") != "text/plain":
                raise _RequestRejected(
                    400, f"{where}.document.source.media_type: Input should be 'text/plain'"
                )
            data = source.get("data")
            if not isinstance(data, str) or not data.strip():
                raise _RequestRejected(400, f"{where}.document.source.data: text must be non-empty")
            parts = [data]
        else:
            raise _RequestRejected(
                400,
                f"{where}.document.source.type: the fake supports content and text (plain-text) "
                "documents only",
            )
        for field_name in ("title", "context"):
            value = block.get(field_name)
            if value is not None and not isinstance(value, str):
                raise _RequestRejected(400, f"{where}.document.{field_name}: Input should be a valid string")
        citations = block.get("citations")
        if citations is not None and (
            not isinstance(citations, dict) or not isinstance(citations.get("enabled", False), bool)
        ):
            raise _RequestRejected(
                400, f"{where}.document.citations.enabled: Input should be a valid boolean"
            )
        said = [block.get("title"), block.get("context"), *parts]
        return "\n".join(p for p in said if p)

    @staticmethod
    def _check_citation_settings(messages: list[dict[str, Any]]) -> None:
        """The API takes citations on every document of a request or on none (blocks already
        validated)."""
        enabled = {
            bool((block.get("citations") or {}).get("enabled", False))
            for message in messages
            if isinstance(message["content"], list)
            for block in message["content"]
            if block["type"] == "document"
        }
        if len(enabled) > 1:
            raise _RequestRejected(
                400,
                "citations: either all or none of the documents in a request must have citations "
                "enabled; this request mixes documents with and without them.",
            )

    @staticmethod
    def _check_tool_pairing(messages: list[dict[str, Any]]) -> bool:
        """The API's rules for pairing calls with results (blocks already validated): every
        tool_use id of an assistant message is answered by a tool_result at the start of the very
        next message, and every tool_result answers a tool_use of the message just before. True
        when the request has any tool block."""
        seen_ids: set[str] = set()
        calls: list[str] = []  # tool_use ids of the previous message
        any_tool_blocks = False
        for m, message in enumerate(messages):
            content = message["content"] if isinstance(message["content"], list) else []
            leading: set[str] = set()  # answered by the tool_result blocks the message starts with
            for block in content:
                if block["type"] != "tool_result":
                    break
                leading.add(block["tool_use_id"])
            answered: set[str] = set()
            for i, block in enumerate(content):
                if block["type"] != "tool_result":
                    continue
                any_tool_blocks = True
                call_id = block["tool_use_id"]
                if call_id not in calls:
                    raise _RequestRejected(
                        400,
                        f"messages.{m}.content.{i}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {call_id}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.",
                    )
                if call_id in answered:
                    raise _RequestRejected(
                        400,
                        f"messages.{m}.content.{i}: each tool_use must have a single result. "
                        f"Found multiple `tool_result` blocks with id: {call_id}",
                    )
                answered.add(call_id)
            missing = [call_id for call_id in calls if call_id not in leading]
            if missing:
                raise _RequestRejected(
                    400,
                    f"messages.{m - 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message.",
                )
            calls = []
            for i, block in enumerate(content):
                if block["type"] != "tool_use":
                    continue
                any_tool_blocks = True
                if block["id"] in seen_ids:
                    raise _RequestRejected(400, f"messages.{m}.content.{i}: `tool_use` ids must be unique")
                seen_ids.add(block["id"])
                calls.append(block["id"])
        if calls:
            raise _RequestRejected(
                400,
                f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` "
                f"blocks immediately after: {', '.join(calls)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message.",
            )
        return any_tool_blocks

    # ------------------------------------------------------------ usage and prompt caching

    def _input_usage(self, model: str, blocks: list[_Block]) -> dict[str, int]:
        total = 0
        prefix_tokens: list[int] = []
        digest = hashlib.sha256(model.encode())
        prefix_keys: list[str] = []
        for block in blocks:
            total += estimate_tokens(block.text)
            prefix_tokens.append(total)
            digest.update(block.identity.encode())
            prefix_keys.append(digest.copy().hexdigest())

        breakpoints = [
            i
            for i, b in enumerate(blocks)
            if b.cached and prefix_tokens[i] >= max(1, self.min_cacheable_tokens)
        ]
        read = creation = 0
        with self._lock:
            hit = next((bp for bp in reversed(breakpoints) if prefix_keys[bp] in self._cache), -1)
            if hit >= 0:
                read = prefix_tokens[hit]
            if breakpoints and breakpoints[-1] > hit:
                creation = prefix_tokens[breakpoints[-1]] - read
            for bp in breakpoints:
                self._cache.add(prefix_keys[bp])
        return {
            "input_tokens": total - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
        }

    def _usage(
        self, body: dict[str, Any], blocks: list[_Block], reply: Reply, output: _Output
    ) -> dict[str, Any]:
        usage: dict[str, Any] = self._input_usage(body["model"], blocks)
        usage["output_tokens"] = max(1, estimate_tokens(output.written))
        if reply.usage:
            usage.update(reply.usage)
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
            "ephemeral_1h_input_tokens": 0,
        }
        usage["service_tier"] = "standard"
        return usage

    # ------------------------------------------------------------ answers

    @staticmethod
    def _default_reply(body: dict[str, Any]) -> Reply:
        question = ""
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    question = content
                elif isinstance(content, list):
                    texts = [b.get("text", "") for b in content if b.get("type") == "text"]
                    question = str(texts[-1]) if texts else ""
                break
        snippet = " ".join(question.split())[:120]
        return Reply(text=f"This is the fake Claude answering: {snippet}")

    @staticmethod
    def _output(body: dict[str, Any], behaviour: Reply | DropConnection | MidStreamError) -> _Output:
        """What the reply writes. A Reply honours max_tokens like the real API: it stops early
        (within the text, or within a tool call's JSON) with stop_reason "max_tokens"."""
        documents = _documents(body)

        def text(chunks: list[str], cited: Cited | None) -> _Text:
            return _Text(chunks, [_citation(documents, cited)] if cited is not None else [])

        if not isinstance(behaviour, Reply):
            calls = [_ToolUse(c.id or _tool_use_id(), c.name, c.json_chunks()) for c in behaviour.tool_calls]
            stop_reason = "tool_use" if calls else "end_turn"
            return _Output([text(c, cited) for c, cited in behaviour.pieces() if c], calls, stop_reason)
        budget = int(body["max_tokens"]) * 4
        cut = False
        texts: list[_Text] = []
        for chunks, cited in behaviour.pieces():
            if cut:
                break
            chunks, cut = _cut(chunks, budget)
            budget -= sum(len(c) for c in chunks)
            if chunks:
                texts.append(text(chunks, cited))
        tool_uses: list[_ToolUse] = []
        for call in behaviour.tool_calls:
            if cut or budget <= 0:
                cut = True
                break
            json_chunks, cut = _cut(call.json_chunks(), budget)
            budget -= sum(len(c) for c in json_chunks)
            tool_uses.append(_ToolUse(call.id or _tool_use_id(), call.name, json_chunks))
        return _Output(texts, tool_uses, "max_tokens" if cut else behaviour.resolved_stop_reason)

    def _message_id(self) -> str:
        return "msg_fake_" + uuid.uuid4().hex[:24]

    async def _respond_json(
        self, body: dict[str, Any], blocks: list[_Block], behaviour: Behaviour, send: Any
    ) -> None:
        if isinstance(behaviour, DropConnection):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"id": "msg_', "more_body": True})
            raise _AbortConnection("scripted drop")
        if isinstance(behaviour, MidStreamError):
            # Without a stream the API reports the failure as a plain error response.
            status = 529 if behaviour.error_type == "overloaded_error" else 500
            await self._send_error(send, ErrorReply(status, behaviour.error_type, behaviour.message))
            return
        assert isinstance(behaviour, Reply)
        await asyncio.sleep(behaviour.delay_headers + behaviour.delay_first)
        output = self._output(body, behaviour)
        content = [text.content() for text in output.texts]
        content += [
            {"type": "tool_use", "id": use.id, "name": use.name, "input": use.parsed_input()}
            for use in output.tool_uses
        ]
        message = {
            "id": self._message_id(),
            "type": "message",
            "role": "assistant",
            "model": behaviour.model or body["model"],
            "content": content,
            "stop_reason": output.stop_reason,
            "stop_sequence": behaviour.stop_sequence,
            "usage": self._usage(body, blocks, behaviour, output),
        }
        await self._send_json(send, 200, message)

    async def _stream(
        self,
        index: int,
        generation: int,
        body: dict[str, Any],
        blocks: list[_Block],
        behaviour: Reply | DropConnection | MidStreamError,
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        async def client_gone() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        completed = False

        def mark_complete() -> None:
            # Called just before message_stop goes out, so a client that has seen the end of
            # the stream always finds it recorded.
            nonlocal completed
            completed = True
            with self._lock:
                if generation == self._generation:
                    self.completed_streams.append(index)

        producer = asyncio.ensure_future(self._produce(body, blocks, behaviour, send, mark_complete))
        watcher = asyncio.ensure_future(client_gone())
        with self._lock:
            self._active[generation] += 1
            if generation == self._generation:
                self.max_active_streams = max(self.max_active_streams, self._active[generation])
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not producer.done():
                # The client closed the connection before the stream finished.
                noticed = time.monotonic()
                with self._lock:
                    if generation == self._generation and not completed:
                        self.disconnects.append((index, noticed))
                        self.disconnected.set()
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
                return
            producer.result()  # re-raises a scripted _AbortConnection
        finally:
            with self._lock:
                self._active[generation] -= 1
                if not self._active[generation]:
                    del self._active[generation]
            for task in (producer, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    def _pace(self, explicit: float | None) -> float:
        if explicit is not None:
            return explicit
        if self.chunks_per_second:
            return 1.0 / self.chunks_per_second
        return 0.0

    async def _produce(
        self,
        body: dict[str, Any],
        blocks: list[_Block],
        behaviour: Reply | DropConnection | MidStreamError,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        mark_complete: Callable[[], None],
    ) -> None:
        output = self._output(body, behaviour)
        text_limit: int | None = None  # text deltas before a scripted failure
        json_limit: int | None = None  # input_json_delta deltas before a scripted failure
        if isinstance(behaviour, Reply):
            reply = behaviour
        else:
            reply = Reply(
                text=behaviour.text,
                chunk_size=behaviour.chunk_size,
                delay_per_chunk=behaviour.delay_per_chunk,
            )
            if behaviour.after_tool_chunks is None:
                text_limit = behaviour.after_chunks
            else:
                json_limit = behaviour.after_tool_chunks
        usage = self._usage(body, blocks, reply, output)

        await asyncio.sleep(reply.delay_headers)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"request-id", _request_id().encode()),
                ],
            }
        )

        async def event(name: str, data: dict[str, Any]) -> None:
            frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        async def fail() -> None:
            if isinstance(behaviour, DropConnection):
                await asyncio.sleep(0)
                raise _AbortConnection("scripted drop")
            assert isinstance(behaviour, MidStreamError)
            await event(
                "error",
                {
                    "type": "error",
                    "error": {"type": behaviour.error_type, "message": behaviour.message},
                    "request_id": _request_id(),
                },
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        pace = self._pace(reply.delay_per_chunk)
        deltas_sent = 0

        async def delta(index: int, payload: dict[str, Any]) -> None:
            nonlocal deltas_sent
            # sleep(0) still yields, keeping many streams fair
            await asyncio.sleep(reply.delay_first if deltas_sent == 0 else pace)
            deltas_sent += 1
            await event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": payload}
            )

        async def block_start(index: int, block: dict[str, Any]) -> None:
            await event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            )
            if index == 0:
                await event("ping", {"type": "ping"})

        start_usage = {**usage, "output_tokens": 1}
        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": self._message_id(),
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model or body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        # An empty reply still has its (empty) text block.
        texts = output.texts or ([] if output.tool_uses else [_Text([], [])])
        text_sent = 0
        for index, text in enumerate(texts):
            if index:
                await event("content_block_stop", {"type": "content_block_stop", "index": index - 1})
            await block_start(index, {"type": "text", "text": ""})
            for citation in text.citations:  # a citation goes out before the text it supports
                await delta(index, {"type": "citations_delta", "citation": citation})
            for chunk in text.chunks:
                if text_limit is not None and text_sent >= text_limit:
                    await fail()
                    return
                await delta(index, {"type": "text_delta", "text": chunk})
                text_sent += 1
        if not isinstance(behaviour, Reply) and json_limit is None:
            await fail()
            return
        if texts:
            await event("content_block_stop", {"type": "content_block_stop", "index": len(texts) - 1})

        json_sent = 0
        for index, use in enumerate(output.tool_uses, start=len(texts)):
            await block_start(index, {"type": "tool_use", "id": use.id, "name": use.name, "input": {}})
            for chunk in use.json_chunks:
                if json_limit is not None and json_sent >= json_limit:
                    await fail()
                    return
                await delta(index, {"type": "input_json_delta", "partial_json": chunk})
                json_sent += 1
            await event("content_block_stop", {"type": "content_block_stop", "index": index})
        if json_limit is not None:
            await fail()  # the script asked for more JSON than the calls have: fail at their end
            return

        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": output.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        mark_complete()
        await event("message_stop", {"type": "message_stop"})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # ------------------------------------------------------------ plumbing

    @staticmethod
    async def _send_json(
        send: Callable[[dict[str, Any]], Awaitable[None]],
        status: int,
        payload: Any,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        data = json.dumps(payload).encode()
        request_id = payload.get("request_id") if isinstance(payload, dict) else None
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"request-id", (request_id or _request_id()).encode()),
            *extra_headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def _send_error(self, send: Callable[[dict[str, Any]], Awaitable[None]], error: ErrorReply) -> None:
        error_type = error.resolved_type
        payload = {
            "type": "error",
            "error": {
                "type": error_type,
                "message": error.message or ERROR_MESSAGES.get(error_type, "Error"),
            },
            "request_id": _request_id(),
        }
        should_retry = error.should_retry
        if should_retry is None:
            should_retry = error.status in (408, 409, 429) or error.status >= 500
        headers = [(b"x-should-retry", b"true" if should_retry else b"false")]
        if error.retry_after is not None:
            value = error.retry_after
            text = str(int(value)) if float(value).is_integer() else str(value)
            headers.append((b"retry-after", text.encode()))
        await self._send_json(send, error.status, payload, headers)
