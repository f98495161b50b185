"""PostgreSQL stopped for 10 s while a reply reaches its end: the reply is neither lost nor changed,
and the server answers /health (503 while the database is down) within 1 s throughout."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.steps import (
    Reader,
    ScriptedClaude,
    assistant_messages,
    new_session,
    paced,
    start_chat,
    then_a_new_chat_completes,
    tokens,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.slow

ANSWER = "Vaccines teach the immune system to recognise a pathogen before it meets the real one. " * 4
OUTAGE = 10.0  # seconds the database stays down (well inside the server's save deadline)


def test_a_reply_that_ends_during_a_database_outage_completes_whole_and_is_saved(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    model: ScriptedClaude,
    fault_pg: PostgresServer,
) -> None:
    # Given a reply the model streams over about 2 s, and a client that has seen part of it
    sid = new_session(api, "outage")
    started = start_chat(api, sid, model.prompt(paced(ANSWER, seconds=2.0, chunk_size=8)))
    reader = Reader(api, started["stream_url"], deadline=OUTAGE + 25)
    reader.start()
    assert reader.wait_for(lambda seen: tokens(seen) >= 1), "the reply never started streaming"

    # When the database stops, stays down while the model finishes, and comes back
    fault_pg.kill()
    try:
        time.sleep(OUTAGE)
        statuses_while_down = sorted({p.status for p in health.polls[-20:] if p.status is not None})
    finally:
        fault_pg.start_again()
    got = reader.finish()

    # Then /health answered within 1 s all along (503 while the database was down)
    health.assert_always_answered()
    assert statuses_while_down == [503], statuses_while_down
    # and the stream ended with `complete` carrying the whole reply, what it showed being a prefix
    assert got.problem is None, f"{got.problem}; last events {got.events[-2:]}"
    assert got.terminal is not None and got.terminal.event == "complete", got.terminal
    assert got.terminal.json()["text"] == ANSWER
    assert ANSWER.startswith(got.text), "the client was shown text that is not the reply's"
    # and the saved assistant message is that whole reply, complete
    saved = assistant_messages(api, sid)
    assert [(m["content"], m["status"]) for m in saved] == [(ANSWER, "complete")]
    then_a_new_chat_completes(api, model, sid)
