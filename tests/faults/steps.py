"""Given/When/Then steps for the fault suite: clients with a deadline on everything (a server that
hangs fails the test, it never stalls the run), the scripted fake Claude, and the checks every
fault test ends with."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fakes.anthropic_server import Behaviour, FakeAnthropic, Reply
from tests.support.processes import ServiceProcess
from tests.support.sse import text_of
from ytr.sse import SSEEvent, parse

TERMINAL = ("complete", "error", "cancelled")
STEP = 10.0  # seconds any one ordinary step (a request, a short stream) may take

# The limits the scenarios lean on, given to the server explicitly (conftest) so that a changed
# default cannot silently change what a test proves.
MAX_ACTIVE = 5  # active chat requests per user
CHAT_POSTS_PER_MINUTE = 60  # well above any test's chats, so only the active limit answers 429
STALE_AFTER = 3.0  # seconds without an owner heartbeat before a reply counts as orphaned
REPLY_SAVE_TIMEOUT = 30.0  # how long a finished reply's save is retried through an outage


# ------------------------------------------------------------------ the model


class ScriptedClaude:
    """Answers each chat by a tag in its prompt (the fake server is shared by every test, and a
    reply still winding down from an earlier test must not eat the next test's script)."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        self._script: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        fake.responder = self._respond

    def prompt(self, behaviour: Behaviour) -> str:
        """A new prompt that the fake answers with ``behaviour``."""
        tag = f"fault-{uuid.uuid4().hex}"
        with self._lock:
            self._script[tag] = behaviour
        return f"question {tag}"

    def _respond(self, body: dict[str, Any]) -> Behaviour:
        last = json.dumps(body.get("messages", [])[-1:])
        with self._lock:
            for tag, behaviour in self._script.items():
                if tag in last:
                    return behaviour
        return Reply(text="A summary or an answer nobody scripted.")


def paced(text: str, *, seconds: float, chunk_size: int = 8) -> Reply:
    """A reply streamed in ``chunk_size``-character deltas spread over about ``seconds``."""
    chunks = max(1, -(-len(text) // chunk_size))
    return Reply(text=text, chunk_size=chunk_size, delay_per_chunk=seconds / chunks)


# ------------------------------------------------------------------ SSE with a deadline


@dataclass
class Read:
    """What one GET of a stream gave: the events, whether the server ended the response, and,
    when it did not answer in time, why."""

    status: int
    events: list[SSEEvent] = field(default_factory=list)
    ended: bool = False
    problem: str | None = None
    body: Any = None
    seconds: float = 0.0

    @property
    def terminal(self) -> SSEEvent | None:
        return self.events[-1] if self.events and self.events[-1].event in TERMINAL else None

    @property
    def ids(self) -> list[int]:
        return [int(e.id) for e in self.events if e.id is not None]

    @property
    def text(self) -> str:
        return text_of(self.events)


def read_sse(
    client: httpx.Client,
    url: str,
    *,
    last_event_id: int | None = None,
    deadline: float = STEP,
    stop_when: Callable[[list[SSEEvent]], bool] | None = None,
    seen: list[SSEEvent] | None = None,
) -> Read:
    """GET an SSE stream until the server ends it (or ``stop_when`` says enough: then the client
    drops the connection), for at most ``deadline`` seconds. Never raises for a slow or silent
    server: the result says what happened. ``seen`` receives each event as it arrives (for a
    test that acts while another thread reads)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    began = time.monotonic()
    result = Read(status=0)
    events = seen if seen is not None else result.events
    timeout = httpx.Timeout(deadline, connect=min(deadline, 3.0))
    try:
        with client.stream("GET", url, headers=headers, timeout=timeout) as response:
            result.status = response.status_code
            if response.status_code != 200:
                response.read()
                result.body = response.json()
                result.ended = True
                return result
            for event in parse(_until(response.iter_bytes(), began + deadline)):
                events.append(event)
                if stop_when is not None and stop_when(events):
                    break
            else:
                result.ended = True
    except _Overdue:
        result.problem = f"the stream was still open after {deadline:.0f} s"
    except httpx.TimeoutException as exc:
        result.problem = f"no answer within {deadline:.0f} s ({type(exc).__name__})"
    except httpx.TransportError as exc:
        result.problem = f"the connection failed: {type(exc).__name__}: {exc}"
    finally:
        result.seconds = time.monotonic() - began
        if seen is not None:
            result.events = list(seen)
    if result.status == 200 and result.ended and result.terminal is None:
        result.problem = "the response ended without a terminal event"
    return result


class _Overdue(Exception):
    pass


def _until(chunks: Iterator[bytes], end: float) -> Iterator[bytes]:
    """The bytes of a response, checking the deadline at every chunk: a server that sends only
    comments (pings) must not keep a reader waiting past it."""
    for chunk in chunks:
        yield chunk
        if time.monotonic() > end:
            raise _Overdue


class Reader(threading.Thread):
    """Reads one stream in the background, so the test can act while the reply streams."""

    def __init__(self, client: httpx.Client, url: str, *, deadline: float, **kw: Any) -> None:
        super().__init__(daemon=True)
        self.client, self.url, self.deadline, self.kw = client, url, deadline, kw
        self.seen: list[SSEEvent] = []
        self.result: Read | None = None
        self.ended_at: float | None = None

    def run(self) -> None:
        self.result = read_sse(self.client, self.url, deadline=self.deadline, seen=self.seen, **self.kw)
        self.ended_at = time.monotonic()

    def wait_for(self, predicate: Callable[[list[SSEEvent]], bool], within: float = STEP) -> bool:
        end = time.monotonic() + within
        while time.monotonic() < end:
            if predicate(list(self.seen)):
                return True
            if not self.is_alive():
                return predicate(list(self.seen))
            time.sleep(0.01)
        return False

    def finish(self) -> Read:
        self.join(self.deadline + 5)
        assert self.result is not None, "the reader thread is stuck (its deadline did not hold)"
        return self.result


def tokens(events: list[SSEEvent]) -> int:
    return sum(1 for e in events if e.event == "token")


# ------------------------------------------------------------------ REST


def new_session(api: httpx.Client, title: str = "faults") -> str:
    r = api.post("/v1/sessions", json={"title": title})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def start_chat(api: httpx.Client, sid: str, prompt: str) -> dict[str, Any]:
    r = api.post(f"/v1/sessions/{sid}/chat", json={"message": prompt})
    assert r.status_code == 201, r.text
    started: dict[str, Any] = r.json()
    return started


def assistant_messages(api: httpx.Client, sid: str) -> list[dict[str, Any]]:
    """The session's assistant messages, oldest first."""
    r = api.get(f"/v1/sessions/{sid}/messages", params={"limit": 100})
    assert r.status_code == 200, r.text
    return [m for m in reversed(r.json()["items"]) if m["role"] == "assistant"]


def then_a_new_chat_completes(api: httpx.Client, claude: ScriptedClaude, sid: str | None = None) -> None:
    """After the fault: a new chat (POST, then GET its stream) ends with `complete` and the reply."""
    answer = f"Fresh answer {uuid.uuid4().hex[:8]} after the fault."
    session = sid or new_session(api, "after the fault")
    started = start_chat(api, session, claude.prompt(Reply(text=answer, chunk_size=6)))
    got = read_sse(api, started["stream_url"])
    assert got.problem is None, f"the new chat did not finish: {got.problem}"
    assert got.terminal is not None and got.terminal.event == "complete", got.events[-3:]
    assert got.terminal.json()["text"] == answer and got.text == answer


# ------------------------------------------------------------------ WebSocket


@contextlib.contextmanager
def ws_connect(base_url: str, sid: str, key: str) -> Iterator[ClientConnection]:
    """A chat socket authenticated with the X-API-Key header, past its `ready` frame."""
    url = base_url.replace("http://", "ws://") + f"/v1/sessions/{sid}/ws"
    with connect(url, additional_headers={"X-API-Key": key}, open_timeout=STEP, close_timeout=3) as ws:
        ready = json.loads(ws.recv(timeout=STEP))
        assert ready["type"] == "ready", ready
        yield ws


@dataclass
class WsRead:
    frames: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") not in ("ping", "pong")]


def ws_until_terminal(ws: ClientConnection, request_id: str, deadline: float = 5.0) -> WsRead:
    """Frames until a terminal event of ``request_id`` (pings dropped), for at most ``deadline``."""
    result = WsRead()
    end = time.monotonic() + deadline
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                result.problem = f"no terminal frame within {deadline:.0f} s"
                return result
            frame = json.loads(ws.recv(timeout=left))
            if frame.get("type") == "ping":
                continue
            result.frames.append(frame)
            if frame.get("type") in TERMINAL and frame.get("request_id") == request_id:
                return result
            if frame.get("type") == "error" and "request_id" not in frame:
                return result  # the socket refused the frame itself
    except TimeoutError:
        result.problem = f"no terminal frame within {deadline:.0f} s"
    except ConnectionClosed as closed:
        result.problem = f"the socket closed: {closed}"
    return result


def ws_until_closed(ws: ClientConnection, deadline: float = STEP) -> tuple[list[dict[str, Any]], int | None]:
    """Frames until the server closes the socket, then the close code it sent (None: it did not
    close within ``deadline``)."""
    frames: list[dict[str, Any]] = []
    end = time.monotonic() + deadline
    try:
        while (left := end - time.monotonic()) > 0:
            raw = ws.recv(timeout=left)
            frames.append(json.loads(raw) if isinstance(raw, str) else {"binary": raw})
    except TimeoutError:
        return frames, None
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd is not None else None
    return frames, None


def server_log_since(service: ServiceProcess, mark: int) -> str:
    """What the server wrote to its log after ``mark`` (its length when the test began)."""
    time.sleep(0.2)  # the server writes its log from a background thread
    return service.log()[mark:]


def sse_event_as_frame(event: SSEEvent, request_id: str) -> dict[str, Any]:
    """The WebSocket frame the README promises for an SSE event: the same object with a `type`."""
    return {
        "type": event.event,
        "id": int(event.id) if event.id else None,
        **event.json(),
        "request_id": request_id,
    }
