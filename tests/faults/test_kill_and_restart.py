"""kill -9 of the server at a random token, then a new server process on the same database: the
client's reconnect gets the rest of what was written and an interrupted ending, never an id it
already had, and what it was shown is what is saved.

The token is drawn from a seeded random generator; the seed is printed (run with -s, or see the
captured output of a failure) and YTR_FAULT_SEED=<seed> replays the same point."""

from __future__ import annotations

import itertools
import os
import random
import time

import httpx
import pytest

from tests.faults.steps import (
    STALE_AFTER,
    Reader,
    ScriptedClaude,
    assistant_messages,
    new_session,
    paced,
    read_sse,
    start_chat,
    then_a_new_chat_completes,
    tokens,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess

pytestmark = pytest.mark.slow

ANSWER = "".join(f"Step {i}: fold the dough, wait, and fold it again. " for i in range(12))


def test_a_reply_killed_at_a_random_token_resumes_after_restart_with_an_interrupted_ending(
    service: LocalServiceProcess, health: HealthPoller, api: httpx.Client, model: ScriptedClaude
) -> None:
    seed = int(os.environ.get("YTR_FAULT_SEED") or time.time_ns() % 1_000_000)
    print(f"kill -9 fault seed: {seed} (YTR_FAULT_SEED={seed} replays it)")
    kill_after = random.Random(seed).randint(1, 12)  # token events seen before the kill

    # Given a reply streaming over about 3 s, and a client that has read `kill_after` token events
    sid = new_session(api, "killed")
    started = start_chat(api, sid, model.prompt(paced(ANSWER, seconds=3.0, chunk_size=8)))
    reader = Reader(
        api, started["stream_url"], deadline=15, stop_when=lambda seen: tokens(seen) >= kill_after
    )
    reader.start()
    before = reader.finish()
    assert before.events and tokens(before.events) == kill_after, (kill_after, before.problem)
    assert before.terminal is None, "the reply ended before the kill; the scenario proves nothing"
    last_seen = before.ids[-1]

    # When the server is killed with SIGKILL and a new process starts on the same database
    with health.paused():  # nothing answers while it is gone: that is the fault, not a finding
        service.kill()
        service.start()
    # and the client reconnects with the last id it had
    after = read_sse(api, started["stream_url"], last_event_id=last_seen, deadline=STALE_AFTER + 15)

    # Then the stream delivers the remaining events, ending in REQUEST_INTERRUPTED
    assert after.problem is None, f"{after.problem}; last events {after.events[-2:]}"
    end = after.terminal
    assert end is not None and (end.event, end.json()["code"]) == ("error", "REQUEST_INTERRUPTED"), end
    # with ids strictly increasing from past the last one the client had (none comes back)
    ids = before.ids + after.ids
    assert all(a < b for a, b in itertools.pairwise(ids)), ids
    # and what the client was shown begins the saved reply (failed) and the error's text
    saved = assistant_messages(api, sid)
    assert [m["status"] for m in saved] == ["failed"], saved
    assert saved[0]["content"].startswith(before.text)
    assert end.json()["text"].startswith(before.text)
    # in fact everything the client received is exactly what was saved
    assert before.text + after.text == saved[0]["content"] == end.json()["text"]
    health.assert_always_answered()
    then_a_new_chat_completes(api, model)
