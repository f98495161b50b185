"""Reconnecting to a finished reply at every cursor, over SSE and over the WebSocket.

For a reply whose terminal event has id `last`, a reconnect with cursor c in 0..last+1 gets the
events after c ending with the terminal event (c >= last: the terminal event again) and the
response ends, promptly. Twice: on the server that ran the reply, at once (the reply is still in
its memory), and on a second server process sharing the database, which has never held the reply
in memory (what the first server also answers once the reply left its memory, 30 s later, or after
a restart). All the while /health answers within 1 s: a reader that spins the event loop fails
the test through the health poller, and a client deadline keeps it from stalling the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.faults.steps import (
    Read,
    ScriptedClaude,
    new_session,
    paced,
    read_sse,
    sse_event_as_frame,
    start_chat,
    then_a_new_chat_completes,
    ws_connect,
    ws_until_terminal,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess
from ytr.sse import SSEEvent

pytestmark = pytest.mark.slow

ANSWER = "Solar panels turn light into current; inverters make it usable at home. " * 3
RECONNECT_DEADLINE = 5.0  # "promptly": seconds a reconnect may take to give its events and end


@pytest.fixture(scope="module")
def peer(server_env: dict[str, str], server: LocalServiceProcess) -> Iterator[LocalServiceProcess]:
    """A second server process on the same database (the replies never run on it)."""
    with LocalServiceProcess(server_env, log_dir=server.log_path.parent).running() as proc:
        yield proc


def _answers(proc: LocalServiceProcess) -> bool:
    try:
        httpx.get(proc.base_url + "/health", timeout=2)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture
def peer_health(peer: LocalServiceProcess) -> Iterator[HealthPoller]:
    if not _answers(peer):  # an earlier test wedged it
        peer.kill()
        peer.start()
    poller = HealthPoller(peer.base_url).start()
    yield poller
    poller.stop()


def a_finished_reply(api: httpx.Client, model: ScriptedClaude) -> tuple[str, dict[str, str], list[SSEEvent]]:
    """A chat read to its end: (session id, the POST's answer, every event in order)."""
    sid = new_session(api)
    # ~25 token events (each delta its own event at this pace): a few dozen cursors to try.
    started = start_chat(api, sid, model.prompt(paced(ANSWER, seconds=1.2, chunk_size=9)))
    first = read_sse(api, started["stream_url"])
    assert first.problem is None, first.problem
    assert first.terminal is not None and first.terminal.event == "complete"
    assert first.ids == list(range(1, len(first.events) + 1))
    return sid, started, first.events


def expected_after(events: list[SSEEvent], cursor: int) -> list[tuple[str, str | None, object]]:
    last = int(events[-1].id or 0)
    if cursor >= last:
        return [(events[-1].event, events[-1].id, events[-1].json())]
    return [(e.event, e.id, e.json()) for e in events if int(e.id or 0) > cursor]


def sse_at_every_cursor(
    base_url: str, key: str, stream_url: str, events: list[SSEEvent]
) -> dict[int, Read | str]:
    """GET the stream with Last-Event-ID = each cursor 0..last+1; stops at the first that fails
    (a wedged server would make every later one wait out its deadline too)."""
    last = int(events[-1].id or 0)
    answers: dict[int, Read | str] = {}
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client:
        for cursor in range(last + 2):
            got = read_sse(client, stream_url, last_event_id=cursor, deadline=RECONNECT_DEADLINE)
            answers[cursor] = got
            if got.problem is not None or not got.ended:
                break
    return answers


def then_every_cursor_got_the_rest_and_the_end(
    answers: dict[int, Read | str], events: list[SSEEvent]
) -> None:
    last = int(events[-1].id or 0)
    assert sorted(answers) == list(range(last + 2)), (
        f"stopped at cursor {max(answers)} of 0..{last + 1}: {answers[max(answers)]}"
    )
    for cursor, got in answers.items():
        assert isinstance(got, Read)
        assert got.status == 200, (cursor, got.body)
        assert got.problem is None and got.ended, f"cursor {cursor}: {got.problem}"
        assert [(e.event, e.id, e.json()) for e in got.events] == expected_after(events, cursor), cursor


# ------------------------------------------------------------------ SSE


def test_sse_reconnect_at_every_cursor_of_a_reply_just_finished_gets_the_rest_and_the_end(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a reply that just finished on this server (still in its memory)
    sid, started, events = a_finished_reply(api, model)
    # When the client reconnects with every cursor from 0 to one past the terminal event's id
    answers = sse_at_every_cursor(service.base_url, user_key, started["stream_url"], events)
    # Then the server kept answering /health, and each reconnect promptly got the events after
    # its cursor ending with the terminal event (the terminal event again at or past the end)
    health.assert_always_answered()
    then_every_cursor_got_the_rest_and_the_end(answers, events)
    then_a_new_chat_completes(api, model, sid)


def test_sse_reconnect_at_every_cursor_from_the_event_log_gets_the_rest_and_the_end(
    service: LocalServiceProcess,
    peer: LocalServiceProcess,
    health: HealthPoller,
    peer_health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a reply that finished on one server
    sid, started, events = a_finished_reply(api, model)
    # When the client reconnects, at every cursor, to a server that knows it only from the log
    answers = sse_at_every_cursor(peer.base_url, user_key, started["stream_url"], events)
    # Then that server kept answering, and each reconnect got the rest and the end, promptly
    peer_health.assert_always_answered()
    health.assert_always_answered()
    then_every_cursor_got_the_rest_and_the_end(answers, events)
    then_a_new_chat_completes(api, model, sid)


# ------------------------------------------------------------------ WebSocket


def ws_resume_at_every_cursor(
    base_url: str, key: str, sid: str, request_id: str, events: list[SSEEvent]
) -> dict[int, list[dict[str, object]] | str]:
    """One socket; a resume frame for each cursor 0..last+1, each read to its terminal frame."""
    last = int(events[-1].id or 0)
    answers: dict[int, list[dict[str, object]] | str] = {}
    with ws_connect(base_url, sid, key) as ws:
        for cursor in range(last + 2):
            ws.send(f'{{"type":"resume","request_id":"{request_id}","last_event_id":{cursor}}}')
            got = ws_until_terminal(ws, request_id, deadline=RECONNECT_DEADLINE)
            if got.problem is not None:
                answers[cursor] = f"{got.problem}; frames: {got.events[-3:]}"
                break
            answers[cursor] = got.events
    return answers


def then_every_resume_got_the_rest_and_the_end(
    answers: dict[int, list[dict[str, object]] | str], events: list[SSEEvent], request_id: str
) -> None:
    last = int(events[-1].id or 0)
    assert sorted(answers) == list(range(last + 2)), (
        f"stopped at cursor {max(answers)} of 0..{last + 1}: {answers[max(answers)]}"
    )
    frames_of = {int(e.id or 0): sse_event_as_frame(e, request_id) for e in events}
    for cursor, frames in answers.items():
        assert isinstance(frames, list), f"cursor {cursor}: {frames}"
        wanted = [frames_of[last]] if cursor >= last else [frames_of[i] for i in range(cursor + 1, last + 1)]
        assert frames == wanted, f"cursor {cursor}"


def test_ws_resume_at_every_cursor_of_a_reply_just_finished_gets_the_rest_and_the_end(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a reply that just finished on this server
    sid, started, events = a_finished_reply(api, model)
    # When a WebSocket client sends a resume frame for every cursor from 0 to last + 1
    answers = ws_resume_at_every_cursor(service.base_url, user_key, sid, started["request_id"], events)
    # Then the server kept answering, and each resume got the events after its cursor as JSON
    # frames (the SSE events with a type and the request id), ending with the terminal one
    health.assert_always_answered()
    then_every_resume_got_the_rest_and_the_end(answers, events, started["request_id"])
    then_a_new_chat_completes(api, model, sid)


def test_ws_resume_at_every_cursor_from_the_event_log_gets_the_rest_and_the_end(
    service: LocalServiceProcess,
    peer: LocalServiceProcess,
    health: HealthPoller,
    peer_health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a reply that finished on one server
    sid, started, events = a_finished_reply(api, model)
    # When the client resumes it at every cursor on a socket to a server that knows it from the log
    answers = ws_resume_at_every_cursor(peer.base_url, user_key, sid, started["request_id"], events)
    # Then that server kept answering, and each resume got the rest and the end
    peer_health.assert_always_answered()
    health.assert_always_answered()
    then_every_resume_got_the_rest_and_the_end(answers, events, started["request_id"])
    then_a_new_chat_completes(api, model, sid)
