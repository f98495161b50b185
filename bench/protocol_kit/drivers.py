"""One reply over each transport, driven the way its real client drives it (client/ytr/chat.py,
client.py, chat_socket.py): the same requests and headers, a fresh connection per reply (one
``ytr chat`` is one process), the CLI's polling loop (a status GET, then the interval), and after
a dropped connection the same way back to the rest of the reply:

* POST-then-SSE: the stream again after the server's ``retry:`` delay, with ``Last-Event-ID``
  (``ApiClient.events``);
* one-step SSE (no client of ours; curl or a browser): the ``/v1/streams/{id}`` that its first
  event names, likewise;
* WebSocket: the CLI (and the browser page) follow the rest over SSE at once from the last frame's
  id; ``ws-resume`` is the protocol's own way, a ``resume`` frame on a new socket;
* polling: the next poll (the CLI's loop would stop on a poll cut in flight; here it polls on);
* sync: the request is lost; the reply is looked for in the history.

Times are asyncio's monotonic clock, from just before the first request of the reply. A reply
"shows text" when its first non-empty text is in hand, as ``ytr chat --timings`` counts it."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ytr.client import DEFAULT_RETRY_MS, MAX_STREAM_ATTEMPTS
from ytr.net import USER_AGENT
from ytr.sse import SSEParser

QUESTION = "What do these videos say about solar panels?"
TERMINAL = ("complete", "error", "cancelled")
FINAL_STATUSES = ("complete", "cancelled", "failed")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=60.0)
SYNC_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
_SSL = ssl.create_default_context()  # httpx would build one per client: a cost before any request


@dataclass
class Conversation:
    base: str  # where the client connects (the counting proxy, or the server itself)
    key: str
    session: str
    expect: str  # the whole reply (the fake's text)
    cut: Callable[[], object] | None = None  # drop the connection once half the reply is in hand
    cut_after: float | None = None  # sync: cut this many seconds in (nothing arrives before the end)
    started: asyncio.Event | None = None  # set when the first text is in hand
    history_wait: float = 30.0  # sync after a cut: how long to look for the saved reply


@dataclass
class Outcome:
    transport: str
    first_text: float | None = None  # seconds to the first text in hand
    total: float | None = None  # seconds to the whole reply in hand
    text: str = ""
    requests: int = 0  # HTTP requests made, a WebSocket handshake counting as one
    error: str | None = None
    cut_at: float | None = None  # monotonic time of the cut
    rest_after: float | None = None  # seconds from the cut to the whole reply in hand
    requests_at_cut: int = 0
    blind: float | None = None  # seconds from the cut to the first text that came on a new request
    t0: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.error is None and self.total is not None


class Tracker:
    """The text of one reply as it arrives; cuts the connection half-way when asked to."""

    def __init__(self, transport: str, c: Conversation) -> None:
        self.c = c
        self.o = Outcome(transport)

    def show(self, delta: str) -> None:
        if not delta:
            return
        self.o.text += delta
        if self.o.cut_at is not None and self.o.blind is None and self.o.requests > self.o.requests_at_cut:
            self.o.blind = time.monotonic() - self.o.cut_at  # not text received before the cut
        if self.o.first_text is None:
            self.o.first_text = time.monotonic() - self.o.t0
            if self.c.started is not None:
                self.c.started.set()
        if self.c.cut is not None and self.o.cut_at is None and len(self.o.text) * 2 >= len(self.c.expect):
            self.cut_now()

    def cut_now(self) -> None:
        assert self.c.cut is not None
        self.o.cut_at = time.monotonic()
        self.o.requests_at_cut = self.o.requests
        self.c.cut()

    def settle(self, full: str | None) -> None:
        if full and full.startswith(self.o.text):
            self.show(full[len(self.o.text) :])

    def end(self, full: str | None) -> Outcome:
        self.c.cut = None  # the reply is whole: nothing is left to cut in the middle of
        self.settle(full)
        now = time.monotonic()
        self.o.total = now - self.o.t0
        if self.o.cut_at is not None:
            self.o.rest_after = now - self.o.cut_at
        if self.o.text != self.c.expect and self.o.error is None:
            self.o.error = f"wrong text ({len(self.o.text)} of {len(self.c.expect)} characters)"
        return self.o

    def apply(self, kind: str, data: dict[str, Any]) -> bool:
        """An SSE event or WebSocket frame; True at the reply's terminal one."""
        if kind == "token":
            self.show(str(data.get("text") or ""))
        elif kind == "complete":
            self.end(data.get("text"))
        elif kind in TERMINAL:
            self.o.error = f"{kind} {data.get('code') or ''}".strip()
        return kind in TERMINAL


def http_client(key: str) -> httpx.AsyncClient:
    """What ``ApiClient`` builds: its headers, its timeouts."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "X-API-Key": key}
    return httpx.AsyncClient(headers=headers, timeout=TIMEOUT, verify=_SSL)


async def start_chat(http: httpx.AsyncClient, t: Tracker) -> dict[str, Any]:
    t.o.requests += 1
    r = await http.post(f"{t.c.base}/v1/sessions/{t.c.session}/chat", json={"message": QUESTION})
    if r.status_code != 201:
        raise RuntimeError(f"POST /chat answered {r.status_code}")
    started: dict[str, Any] = r.json()
    return started


async def follow_sse(http: httpx.AsyncClient, t: Tracker, url: str, parser: SSEParser) -> Outcome:
    """``ApiClient.events``: read to the terminal event, reconnecting with ``Last-Event-ID`` after
    the server's ``retry:`` delay (doubling while reconnects bring nothing)."""
    failures = 0
    while True:
        progressed = False
        headers = dict(SSE_HEADERS)
        if parser.last_event_id:
            headers["Last-Event-ID"] = parser.last_event_id
        try:
            t.o.requests += 1
            async with http.stream("GET", url, headers=headers, timeout=STREAM_TIMEOUT) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"GET stream answered {r.status_code}")
                async for chunk in r.aiter_raw():
                    for event in parser.feed(chunk):
                        progressed = True
                        if t.apply(event.event, event.json()):
                            return t.o
        except httpx.TransportError:
            pass
        failures = 0 if progressed else failures + 1
        if failures >= MAX_STREAM_ATTEMPTS:
            raise RuntimeError("stream lost")
        delay = (parser.retry if parser.retry is not None else DEFAULT_RETRY_MS) / 1000
        await asyncio.sleep(delay * min(2 ** max(failures - 1, 0), 8))
        parser.reset_connection()


async def sse_reply(c: Conversation) -> Outcome:
    """``ytr chat`` (the default): POST /chat, then GET its stream_url."""
    t = Tracker("sse", c)
    async with http_client(c.key) as http:
        started = await start_chat(http, t)
        return await follow_sse(http, t, c.base + str(started["stream_url"]), SSEParser())


async def one_step_reply(c: Conversation) -> Outcome:
    """``POST /v1/sessions/{id}/messages/stream`` read as SSE; after a drop, the stream its first
    event names, from the last event id, after the ``retry:`` delay (as EventSource would)."""
    t = Tracker("sse-1step", c)
    parser, request_id = SSEParser(), None
    async with http_client(c.key) as http:
        try:
            t.o.requests += 1
            url = f"{c.base}/v1/sessions/{c.session}/messages/stream"
            async with http.stream(
                "POST", url, json={"message": QUESTION}, headers=SSE_HEADERS, timeout=STREAM_TIMEOUT
            ) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"POST /messages/stream answered {r.status_code}")
                async for chunk in r.aiter_raw():
                    for event in parser.feed(chunk):
                        data = event.json()
                        request_id = request_id or data.get("request_id")
                        if t.apply(event.event, data):
                            return t.o
        except httpx.TransportError:
            if request_id is None:
                raise
        await asyncio.sleep((parser.retry or DEFAULT_RETRY_MS) / 1000)
        parser.reset_connection()
        return await follow_sse(http, t, f"{c.base}/v1/streams/{request_id}", parser)


async def poll_reply(c: Conversation, interval: float) -> Outcome:
    """``ytr chat --transport poll``: POST /chat, then GET /v1/requests/{id}, sleeping ``interval``
    after each answer, until the status is final."""
    t = Tracker(f"poll {interval * 1000:.0f} ms", c)
    async with http_client(c.key) as http:
        request_id = (await start_chat(http, t))["request_id"]
        while True:
            try:
                t.o.requests += 1
                r = await http.get(f"{c.base}/v1/requests/{request_id}")
            except httpx.TransportError:
                if t.o.cut_at is None:
                    raise
                continue  # a poll in flight was cut: poll again
            if r.status_code != 200:
                raise RuntimeError(f"GET /v1/requests answered {r.status_code}")
            state = r.json()
            if state["status"] in FINAL_STATUSES:
                if state["status"] != "complete":
                    t.o.error = str(state["status"])
                return t.end(state.get("text"))
            t.settle(state.get("text"))
            await asyncio.sleep(interval)


async def sync_reply(c: Conversation) -> Outcome:
    """``ytr chat --transport sync``: one POST /v1/sessions/{id}/messages for the whole reply.
    After a cut the request is lost; the history is read (every 250 ms) until the reply is saved."""
    t = Tracker("sync", c)
    async with http_client(c.key) as http:
        cutter = None
        if c.cut is not None and c.cut_after is not None:
            cutter = asyncio.get_running_loop().call_later(c.cut_after, t.cut_now)
        try:
            t.o.requests += 1
            r = await http.post(
                f"{c.base}/v1/sessions/{c.session}/messages", json={"message": QUESTION}, timeout=SYNC_TIMEOUT
            )
            if r.status_code != 201:
                raise RuntimeError(f"POST /messages answered {r.status_code}")
            return t.end(str(r.json()["content"]))
        except httpx.TransportError:
            if t.o.cut_at is None:
                raise
        finally:
            if cutter is not None:
                cutter.cancel()
        deadline = time.monotonic() + c.history_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            t.o.requests += 1
            page = (await http.get(f"{c.base}/v1/sessions/{c.session}/messages", params={"limit": 2})).json()
            latest = (page.get("items") or [{}])[0]
            if latest.get("role") == "assistant" and latest.get("status") == "complete":
                return t.end(str(latest["content"]))
        t.o.error = "reply not saved"
        return t.o


def ws_url(base: str, session: str) -> str:
    return base.replace("http://", "ws://", 1) + f"/v1/sessions/{session}/ws"


async def open_socket(t: Tracker) -> Any:
    """``ChatSocket.open``: the key in a header, no compression, then wait for ``ready``."""
    t.o.requests += 1
    sock = await connect(
        ws_url(t.c.base, t.c.session),
        additional_headers={"X-API-Key": t.c.key},
        user_agent_header=USER_AGENT,
        compression=None,
        open_timeout=15,
        proxy=None,
    )
    ready = json.loads(await sock.recv())
    if ready.get("type") != "ready":
        raise RuntimeError(f"socket answered {ready}")
    return sock


async def read_frames(sock: Any, t: Tracker, seen: dict[str, Any]) -> bool:
    """Frames up to the reply's terminal one (True), or until the socket drops (False)."""
    try:
        async for raw in sock:
            frame = json.loads(raw)
            kind = str(frame.get("type"))
            if kind == "accepted":
                seen["request_id"] = frame["request_id"]
            elif kind == "error" and "request_id" not in frame:
                raise RuntimeError(f"socket error frame {frame.get('code')}")
            if frame.get("id") is not None:
                seen["last_id"] = frame["id"]
            if kind in ("token", *TERMINAL) and t.apply(kind, frame):
                return True
    except ConnectionClosed:
        pass
    return False


async def ws_reply(c: Conversation, resume: str = "sse") -> Outcome:
    """``ytr chat --transport ws``: a socket per reply, one message frame, frames to the terminal
    one. After a drop: the rest over SSE from the last id (``resume="sse"``, the CLI's way) or a
    ``resume`` frame on a new socket (``resume="ws"``)."""
    t = Tracker("ws" if resume == "sse" else "ws-resume", c)
    seen: dict[str, Any] = {}
    sock = await open_socket(t)
    try:
        await sock.send(json.dumps({"type": "message", "content": QUESTION}))
        if await read_frames(sock, t, seen):
            return t.o
    finally:
        await sock.close()
    if "request_id" not in seen:
        raise RuntimeError("the socket closed before the message was accepted")
    if resume == "sse":
        parser = SSEParser()
        parser.last_event_id = str(seen.get("last_id") or "")
        parser.reset_connection()
        async with http_client(c.key) as http:
            return await follow_sse(http, t, f"{c.base}/v1/streams/{seen['request_id']}", parser)
    sock = await open_socket(t)
    try:
        frame = {"type": "resume", "request_id": seen["request_id"], "last_event_id": seen.get("last_id", 0)}
        await sock.send(json.dumps(frame))
        if not await read_frames(sock, t, seen):
            raise RuntimeError("the resumed socket closed before the reply ended")
        return t.o
    finally:
        await sock.close()


async def guarded(run: Callable[[Conversation], Awaitable[Outcome]], c: Conversation, name: str) -> Outcome:
    """A reply whose failure is an outcome (counted as an error), not an exception."""
    t0 = time.monotonic()
    try:
        return await run(c)
    except Exception as exc:
        o = Outcome(name, error=f"{type(exc).__name__}: {exc}"[:120])
        o.t0 = t0
        return o
