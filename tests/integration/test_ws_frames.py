"""WebSocket frames the chat socket must survive (binary, not JSON, too large, too deep) and the
`resume` frame, against uvicorn on loopback with the `websockets` client, the real anthropic SDK
and the protocol-faithful fake Claude."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from local_run.app import create_local_app
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings

TERMINAL = ("complete", "error", "cancelled")
EVENT_TYPES = ("stage", "token", "usage", "complete", "error", "cancelled")
WAIT = 20.0  # seconds for any one step; a hang fails the test instead of stalling the run


class ErrorRecords(logging.Handler):
    """ERROR records from the server's loggers: an unhandled exception in the app lands here."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def server_errors(server: LoopbackServer) -> Iterator[ErrorRecords]:
    # After the server started: uvicorn configures its loggers (and drops their handlers) on start.
    handler = ErrorRecords()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "asyncio", "streaming_service")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def api(server: LoopbackServer, user_key: str) -> Iterator[httpx.Client]:
    with client_for(server.base_url, user_key) as c:
        yield c


@pytest.fixture
def sid(api: httpx.Client) -> str:
    return str(api.post("/v1/sessions", json={"title": "frames"}).json()["id"])


# ------------------------------------------------------------------ helpers


def ws_url(server: LoopbackServer, sid: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/sessions/{sid}/ws"


async def connect(server: LoopbackServer, sid: str, key: str) -> ClientConnection:
    ws = await websockets.connect(ws_url(server, sid), additional_headers={"X-API-Key": key})
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ready"
    return ws


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def until_terminal(ws: ClientConnection) -> list[dict[str, Any]]:
    """Frames up to and including the next terminal event (complete/error/cancelled)."""
    frames = [await next_frame(ws)]
    while frames[-1]["type"] not in TERMINAL:
        frames.append(await next_frame(ws))
    return frames


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None, str]:
    """Frames until the server closes the socket, then the close code and reason it sent."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""


async def chat(ws: ClientConnection, content: str) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"type": "message", "content": content}))
    return await until_terminal(ws)


def events(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream events among ``frames`` (not accepted/queued/ping/pong)."""
    return [f for f in frames if f["type"] in EVENT_TYPES and "id" in f]


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "token")


def still_serving(server: LoopbackServer, sid: str, key: str, fake_claude: FakeAnthropic) -> None:
    """The server answers /health and a new socket can chat."""
    assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    fake_claude.enqueue(Reply(text="still here"))

    async def go() -> list[dict[str, Any]]:
        async with await connect(server, sid, key) as ws:
            return await chat(ws, "are you there?")

    frames = asyncio.run(go())
    assert frames[-1]["type"] == "complete" and frames[-1]["text"] == "still here"


def wait_for(predicate: Any, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def no_tracebacks(server_errors: ErrorRecords) -> None:
    assert server_errors.messages() == []


DEEP_JSON = "[" * 100_000 + "]" * 100_000
TOO_LARGE = json.dumps({"type": "message", "content": "x" * 500_000})  # over MAX_FRAME_BYTES

BAD_FRAMES = [
    pytest.param(b"\x00\x01binary", "UNSUPPORTED_FRAME", 1003, id="binary"),
    pytest.param('{"type": "message", "content": ', "INVALID_FRAME", 1007, id="invalid-json"),
    pytest.param(DEEP_JSON, "FRAME_TOO_LARGE", 1009, id="100000-deep-json"),
    pytest.param("[" * 33 + "]" * 33, "FRAME_TOO_LARGE", 1009, id="33-deep-json"),
    pytest.param(TOO_LARGE, "FRAME_TOO_LARGE", 1009, id="too-large-text"),
]


# ------------------------------------------------------------------ frames that end the socket


@pytest.mark.parametrize(("payload", "code", "close_code"), BAD_FRAMES)
def test_bad_frame_after_auth_gets_an_error_frame_and_a_close_code(
    server: LoopbackServer,
    sid: str,
    user_key: str,
    fake_claude: FakeAnthropic,
    server_errors: ErrorRecords,
    payload: str | bytes,
    code: str,
    close_code: int,
) -> None:
    # Given an authenticated chat socket
    async def go() -> tuple[list[dict[str, Any]], int | None, str]:
        async with await connect(server, sid, user_key) as ws:
            # When the client sends a frame the server cannot read
            await ws.send(payload)
            return await until_closed(ws)

    frames, rcvd_code, reason = asyncio.run(go())
    # Then it is told why, the socket is closed with the matching code and a short reason
    assert [(f["type"], f["code"], f["retryable"]) for f in frames] == [("error", code, False)]
    assert frames[0]["message"]
    assert rcvd_code == close_code and 0 < len(reason.encode()) <= 123
    # and the server logged no traceback and carries on
    no_tracebacks(server_errors)
    still_serving(server, sid, user_key, fake_claude)


@pytest.mark.parametrize(("payload", "code", "close_code"), BAD_FRAMES)
def test_bad_first_frame_before_auth_gets_an_error_frame_and_a_close_code(
    server: LoopbackServer,
    sid: str,
    user_key: str,
    fake_claude: FakeAnthropic,
    server_errors: ErrorRecords,
    payload: str | bytes,
    code: str,
    close_code: int,
) -> None:
    # Given a browser-style socket that must authenticate with its first frame
    async def go() -> tuple[list[dict[str, Any]], int | None, str]:
        async with websockets.connect(ws_url(server, sid)) as ws:
            # When that first frame cannot be read
            await ws.send(payload)
            return await until_closed(ws)

    frames, rcvd_code, _ = asyncio.run(go())
    # Then the same error frame and close code as after authentication, and no traceback
    assert [(f["type"], f["code"]) for f in frames] == [("error", code)]
    assert rcvd_code == close_code
    no_tracebacks(server_errors)
    still_serving(server, sid, user_key, fake_claude)


def test_text_frame_that_is_not_utf8_closes_with_1007(
    server: LoopbackServer,
    sid: str,
    user_key: str,
    fake_claude: FakeAnthropic,
    server_errors: ErrorRecords,
) -> None:
    # Given an authenticated chat socket
    async def go() -> int | None:
        async with await connect(server, sid, user_key) as ws:
            # When a text frame carries bytes that are not UTF-8
            await ws.send(b'{"type": "ping", "x": "\xff\xfe"}', text=True)
            return (await until_closed(ws))[1]

    # Then the socket is closed with 1007 (invalid payload) and the server carries on
    assert asyncio.run(go()) == 1007
    # uvicorn decodes text frames before the app sees them, and logs this one itself.
    assert server_errors.messages() in ([], ["Invalid UTF-8 sequence received from client."])
    assert not [r for r in server_errors.records if "ASGI" in r.getMessage()]
    still_serving(server, sid, user_key, fake_claude)


def test_message_accepted_before_a_bad_frame_is_still_answered_and_saved(
    server: LoopbackServer, api: httpx.Client, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(Reply(text="answered anyway " * 10, chunk_size=8, delay_per_chunk=0.01))

    # Given a socket with a message in progress
    async def go() -> tuple[list[dict[str, Any]], int | None, str]:
        async with await connect(server, sid, user_key) as ws:
            await ws.send(json.dumps({"type": "message", "content": "question"}))
            assert (await next_frame(ws))["type"] == "accepted"
            # When the client then sends a binary frame
            await ws.send(b"\x00")
            return await until_closed(ws)

    frames, rcvd_code, _ = asyncio.run(go())
    assert rcvd_code == 1003 and frames[-1]["code"] == "UNSUPPORTED_FRAME"

    # Then closing stopped nothing: the reply is finished and saved
    def reply() -> dict[str, Any] | None:
        items = api.get(f"/v1/sessions/{sid}/messages").json()["items"]
        return next((m for m in items if m["role"] == "assistant" and m["status"] != "streaming"), None)

    wait_for(reply)
    saved = reply()
    assert saved is not None and saved["status"] == "complete"
    assert saved["content"] == "answered anyway " * 10


def test_largest_message_of_four_byte_characters_is_not_refused_as_too_large(
    settings: Settings, claude: Any, fake_claude: FakeAnthropic
) -> None:
    # Given a server whose message limit is the API's largest (100,000 characters; default 8,000)
    container = Container(
        settings.model_copy(update={"max_message_chars": 100_000}),
        queue=RecordingQueue(),
        chat_model=claude,
    )
    key = make_user(container)[1]
    fake_claude.enqueue(Reply(text="that is a lot of emoji"))
    with serve(create_local_app(container)) as big, client_for(big.base_url, key) as api:
        big_sid = str(api.post("/v1/sessions", json={"title": "big"}).json()["id"])

        async def go() -> list[dict[str, Any]]:
            async with await connect(big, big_sid, key) as ws:
                # When the client sends a message of 100,000 characters, 4 UTF-8 bytes each
                content = "\U0001f600" * 100_000
                await ws.send(json.dumps({"type": "message", "content": content}, ensure_ascii=False))
                return await until_terminal(ws)

        frames = asyncio.run(go())
    container.engine.dispose()
    # Then it is accepted and answered, not refused by the frame-size bound
    assert frames[0]["type"] == "accepted"
    assert frames[-1]["type"] == "complete" and frames[-1]["text"] == "that is a lot of emoji"


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"type": "shout"}, id="unknown-type"),
        pytest.param({"content": "no type"}, id="missing-type"),
        pytest.param([1, 2, 3], id="not-an-object"),
        pytest.param({"type": "message", "content": ""}, id="empty-message"),
        pytest.param(json.loads("[" * 32 + "]" * 32), id="32-deep-json"),
    ],
)
def test_readable_but_wrong_frame_gets_invalid_frame_and_the_socket_stays_open(
    server: LoopbackServer, sid: str, user_key: str, frame: Any
) -> None:
    # Given a chat socket
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with await connect(server, sid, user_key) as ws:
            # When the client sends JSON the server can read but not act on
            await ws.send(json.dumps(frame))
            error = await next_frame(ws)
            await ws.send(json.dumps({"type": "ping"}))
            return error, await next_frame(ws)

    error, after = asyncio.run(go())
    # Then it gets INVALID_FRAME and the socket still answers
    assert error["type"] == "error" and error["code"] == "INVALID_FRAME"
    assert after == {"type": "pong"}


# ------------------------------------------------------------------ resume


def test_resume_of_a_finished_reply_from_zero_replays_the_whole_sequence(
    server: LoopbackServer, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    answer = "The panels turn sunlight into current. " * 3
    fake_claude.enqueue(Reply(text=answer, chunk_size=5, delay_per_chunk=0.005))

    # Given a reply that was streamed to completion on one socket
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with await connect(server, sid, user_key) as first:
            original = await chat(first, "How do panels work?")
        # When another socket resumes it from the start
        async with await connect(server, sid, user_key) as second:
            rid = original[0]["request_id"]
            await second.send(json.dumps({"type": "resume", "request_id": rid, "last_event_id": 0}))
            return original, await until_terminal(second)

    original, replay = asyncio.run(go())
    # Then it gets the same events, ids 1..n, each with the request id, ending with the terminal one
    assert original[0]["type"] == "accepted"
    assert events(replay) == events(original)
    assert [f["id"] for f in events(replay)] == list(range(1, len(events(replay)) + 1))
    assert {f["request_id"] for f in replay} == {original[0]["request_id"]}
    assert replay[-1]["type"] == "complete" and text_of(replay) == answer


def test_resume_without_last_event_id_starts_from_zero(
    server: LoopbackServer, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(Reply(text="short answer"))

    # Given a finished reply
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with await connect(server, sid, user_key) as ws:
            original = await chat(ws, "q")
            # When it is resumed with no last_event_id
            await ws.send(json.dumps({"type": "resume", "request_id": original[0]["request_id"]}))
            return original, await until_terminal(ws)

    original, replay = asyncio.run(go())
    # Then the whole sequence comes back
    assert events(replay) == events(original)


def test_resume_mid_reply_continues_without_gap_or_duplicate(
    server: LoopbackServer, api: httpx.Client, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    answer = "slow and steady " * 20
    fake_claude.enqueue(Reply(text=answer, chunk_size=4, delay_per_chunk=0.02))

    # Given a reply still streaming, of which the client saw the first few events
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        first = await connect(server, sid, user_key)
        await first.send(json.dumps({"type": "message", "content": "q"}))
        seen = [await next_frame(first)]
        while len([f for f in seen if f["type"] == "token"]) < 2:
            seen.append(await next_frame(first))
        await first.close()  # the client drops; the reply goes on
        # When a new socket resumes after the last event it saw
        async with await connect(server, sid, user_key) as second:
            await second.send(
                json.dumps(
                    {"type": "resume", "request_id": seen[0]["request_id"], "last_event_id": seen[-1]["id"]}
                )
            )
            return seen, await until_terminal(second)

    seen, rest = asyncio.run(go())
    # Then the events continue at the next id and the text joins up exactly
    assert events(rest)[0]["id"] == seen[-1]["id"] + 1
    assert [f["id"] for f in events(rest)] == list(range(seen[-1]["id"] + 1, events(rest)[-1]["id"] + 1))
    assert text_of(seen) + text_of(rest) == answer
    assert rest[-1]["type"] == "complete" and rest[-1]["text"] == answer


@pytest.mark.parametrize("past_end", [0, 5], ids=["at-the-end", "after-the-end"])
def test_resume_from_the_end_gets_the_terminal_event_again(
    server: LoopbackServer, sid: str, user_key: str, fake_claude: FakeAnthropic, past_end: int
) -> None:
    # Needs ChatRequestManager.follow() to yield the terminal event again for a cursor at or
    # after the end of a finished reply (it used to wait there forever).
    fake_claude.enqueue(Reply(text="done already"))

    # Given a finished reply whose every event the client has seen
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with await connect(server, sid, user_key) as ws:
            original = await chat(ws, "q")
            last = original[-1]
            # When it resumes from the terminal event's id (or beyond)
            await ws.send(
                json.dumps(
                    {
                        "type": "resume",
                        "request_id": last["request_id"],
                        "last_event_id": last["id"] + past_end,
                    }
                )
            )
            return original, await asyncio.wait_for(until_terminal(ws), WAIT)

    original, replay = asyncio.run(go())
    # Then it gets the terminal event once more, with its own id, and nothing else
    assert events(replay) == [original[-1]]


@pytest.mark.parametrize("whose", ["another-users", "unknown"])
def test_resume_of_a_request_the_user_cannot_read_is_not_found_and_the_socket_stays_usable(
    server: LoopbackServer,
    app_container: Container,
    sid: str,
    user_key: str,
    fake_claude: FakeAnthropic,
    whose: str,
) -> None:
    # Given a request that is another user's (or none at all)
    if whose == "another-users":
        fake_claude.enqueue(Reply(text="their answer"))
        stranger = make_user(app_container)[1]
        with client_for(server.base_url, stranger) as other:
            their_sid = other.post("/v1/sessions", json={"title": "theirs"}).json()["id"]
            rid = other.post(f"/v1/sessions/{their_sid}/chat", json={"message": "secret"}).json()[
                "request_id"
            ]
            wait_for(lambda: other.get(f"/v1/requests/{rid}").json()["status"] == "complete")
    else:
        rid = str(uuid.uuid4())
    fake_claude.enqueue(Reply(text="mine"))

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with await connect(server, sid, user_key) as ws:
            # When this user resumes it
            await ws.send(json.dumps({"type": "resume", "request_id": rid}))
            refused = await until_terminal(ws)
            return refused, await chat(ws, "my own question")

    refused, mine = asyncio.run(go())
    # Then REQUEST_NOT_FOUND (nothing of theirs), and the same socket still chats
    assert [(f["type"], f.get("code")) for f in refused] == [("error", "REQUEST_NOT_FOUND")]
    assert "their answer" not in json.dumps(refused)
    assert mine[-1]["type"] == "complete" and mine[-1]["text"] == "mine"


SOME_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"type": "resume"}, id="no-request-id"),
        pytest.param({"type": "resume", "request_id": "not-a-uuid"}, id="bad-uuid"),
        pytest.param({"type": "resume", "request_id": 42}, id="numeric-request-id"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": -1}, id="negative"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": 1.5}, id="fraction"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": "3"}, id="string"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": True}, id="boolean"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": None}, id="null"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": 2**31}, id="over-2**31-1"),
        pytest.param({"type": "resume", "request_id": SOME_ID, "last_event_id": 10**30}, id="huge"),
    ],
)
def test_malformed_resume_frame_gets_invalid_frame_and_the_socket_stays_open(
    server: LoopbackServer, sid: str, user_key: str, frame: dict[str, Any]
) -> None:
    # Given a chat socket
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with await connect(server, sid, user_key) as ws:
            # When the client sends a resume frame that does not validate
            await ws.send(json.dumps(frame))
            error = await next_frame(ws)
            await ws.send(json.dumps({"type": "ping"}))
            return error, await next_frame(ws)

    error, after = asyncio.run(go())
    # Then INVALID_FRAME, naming the resume frame, and the socket still answers
    assert error["type"] == "error" and error["code"] == "INVALID_FRAME"
    assert error["message"].startswith("resume:")
    assert after == {"type": "pong"}


def test_resume_sent_while_a_reply_streams_is_queued_and_answered_next(
    server: LoopbackServer, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(
        Reply(text="first answer"),
        Reply(text="second, slower answer " * 5, chunk_size=6, delay_per_chunk=0.02),
    )

    # Given a finished reply, and a second one streaming on the same socket
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with await connect(server, sid, user_key) as ws:
            first = await chat(ws, "one")
            await ws.send(json.dumps({"type": "message", "content": "two"}))
            assert (await next_frame(ws))["type"] == "accepted"
            # When the client resumes the first reply meanwhile
            await ws.send(json.dumps({"type": "resume", "request_id": first[0]["request_id"]}))
            frames = await until_terminal(ws)  # the rest of "two"
            return first, frames + await until_terminal(ws)  # then the resumed "one"

    first, frames = asyncio.run(go())
    # Then it is queued behind the reply in progress, and replayed once that has finished
    assert {"type": "queued", "position": 1} in frames
    ends = [i for i, f in enumerate(frames) if f["type"] in TERMINAL]
    second_reply, resumed = frames[: ends[0] + 1], frames[ends[0] + 1 :]
    assert second_reply[-1]["text"] == "second, slower answer " * 5
    assert events(resumed) == events(first)


def test_cancel_applies_to_a_resumed_reply(
    server: LoopbackServer, api: httpx.Client, sid: str, user_key: str, fake_claude: FakeAnthropic
) -> None:
    fake_claude.enqueue(Reply(text="slow " * 400, chunk_size=5, delay_per_chunk=0.02))
    # Given a reply started over HTTP, still streaming
    rid = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]

    async def go() -> list[dict[str, Any]]:
        async with await connect(server, sid, user_key) as ws:
            await ws.send(json.dumps({"type": "resume", "request_id": rid}))
            frames = [await next_frame(ws)]
            while frames[-1]["type"] != "token":
                frames.append(await next_frame(ws))
            # When the socket that resumed it sends cancel
            await ws.send(json.dumps({"type": "cancel"}))
            return frames + await until_terminal(ws)

    frames = asyncio.run(go())
    # Then that reply is cancelled, upstream too, and its status says so
    assert frames[-1]["type"] == "cancelled" and frames[-1]["request_id"] == rid
    assert fake_claude.wait_for_disconnect(10)
    assert api.get(f"/v1/requests/{rid}").json()["status"] == "cancelled"
