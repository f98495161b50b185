"""A session deleted (DELETE /v1/sessions/{id}) while its reply streams: the reply's reader is told
SESSION_DELETED within seconds, and nothing stays stuck as active for the user on that server."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.steps import (
    MAX_ACTIVE,
    Reader,
    ScriptedClaude,
    new_session,
    paced,
    read_sse,
    start_chat,
    tokens,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess

pytestmark = pytest.mark.slow

SLOW_ANSWER = "A long and slowly written answer about sourdough starters. " * 12  # ~15 s at this pace
ENDED_WITHIN = 5.0  # seconds from the 204 to the reader's terminal event


def test_deleting_a_session_mid_stream_ends_its_reply_and_every_later_chat_completes(
    service: LocalServiceProcess, health: HealthPoller, api: httpx.Client, model: ScriptedClaude
) -> None:
    # Given a reply streaming slowly in a session, with a reader that has seen part of it
    doomed = new_session(api, "doomed")
    started = start_chat(api, doomed, model.prompt(paced(SLOW_ANSWER, seconds=15, chunk_size=6)))
    reader = Reader(api, started["stream_url"], deadline=20)
    reader.start()
    assert reader.wait_for(lambda seen: tokens(seen) >= 2), "the reply never started streaming"

    # When the session is deleted
    deleted = api.delete(f"/v1/sessions/{doomed}")
    deleted_at = time.monotonic()

    # Then the delete succeeds, and the reader receives a terminal SESSION_DELETED error promptly
    assert deleted.status_code == 204, deleted.text
    got = reader.finish()
    assert got.terminal is not None, f"no terminal event: {got.problem}; last {got.events[-2:]}"
    assert (got.terminal.event, got.terminal.json().get("code")) == ("error", "SESSION_DELETED"), got.terminal
    waited = (reader.ended_at or time.monotonic()) - deleted_at
    assert waited <= ENDED_WITHIN, f"the reader waited {waited:.1f} s for the end"

    # And chats in another session of the same user complete, more in a row than the active limit
    other = new_session(api, "unharmed")
    outcomes = []
    for i in range(MAX_ACTIVE + 1):
        answer = f"Answer number {i}, complete."
        post = api.post(
            f"/v1/sessions/{other}/chat", json={"message": model.prompt(paced(answer, seconds=0.2))}
        )
        if post.status_code != 201:
            outcomes.append((i, post.status_code, post.json()["error"]["code"]))
            continue
        events = read_sse(api, post.json()["stream_url"])
        end = events.terminal
        outcomes.append((i, end.event if end else events.problem, end.json().get("text") if end else None))
    assert outcomes == [(i, "complete", f"Answer number {i}, complete.") for i in range(MAX_ACTIVE + 1)]
    health.assert_always_answered()
