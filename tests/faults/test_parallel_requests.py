"""Requests that race: parallel chat starts against the active-request limit, and parallel
deletes of one session or one video link. Threads are released together by a barrier."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.fakes.anthropic_server import Reply
from tests.faults.steps import (
    CHAT_POSTS_PER_MINUTE,
    MAX_ACTIVE,
    STEP,
    ScriptedClaude,
    new_session,
    then_a_new_chat_completes,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess

pytestmark = pytest.mark.slow

PARALLEL_CHATS = 12
PARALLEL_DELETES = 10
FINAL = ("complete", "cancelled", "failed")


def all_at_once(
    base_url: str, key: str, count: int, call: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """``count`` threads, each with its own connection, make ``call`` at the same moment."""
    barrier = threading.Barrier(count, timeout=STEP)
    results: list[httpx.Response] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=STEP) as client:
                client.get("/health")  # connected before the barrier, so the calls really overlap
                barrier.wait()
                results.append(call(client))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STEP * 2)
    assert not errors, errors
    assert len(results) == count, "some requests never got an answer"
    return results


def test_parallel_chat_starts_admit_exactly_the_active_request_limit(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a user with a session, a model so slow that no reply finishes during the test, and a
    # per-minute chat limit well above the number of starts (so only the active limit can refuse)
    assert CHAT_POSTS_PER_MINUTE > PARALLEL_CHATS > MAX_ACTIVE
    sid = new_session(api, "race")
    prompt = model.prompt(Reply(text="slow " * 300, chunk_size=5, delay_per_chunk=0.1))

    # When twelve chat starts arrive at once
    results = all_at_once(
        service.base_url,
        user_key,
        PARALLEL_CHATS,
        lambda c: c.post(f"/v1/sessions/{sid}/chat", json={"message": prompt}),
    )

    # Then exactly the limit is accepted and every other start is refused as too many active
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * MAX_ACTIVE + [429] * (PARALLEL_CHATS - MAX_ACTIVE), [r.text for r in results]
    refused = [r for r in results if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"TOO_MANY_ACTIVE_REQUESTS"}
    assert all(r.headers.get("Retry-After") for r in refused)
    health.assert_always_answered()
    # (and once the accepted ones are cancelled and have ended, a new chat goes through)
    for r in results:
        if r.status_code == 201:
            cancel_and_wait_for_the_end(api, r.json()["request_id"])
    then_a_new_chat_completes(api, model, sid)


def cancel_and_wait_for_the_end(api: httpx.Client, request_id: str) -> None:
    api.post(f"/v1/requests/{request_id}/cancel")
    deadline = time.monotonic() + STEP
    while api.get(f"/v1/requests/{request_id}").json()["status"] not in FINAL:
        assert time.monotonic() < deadline, f"request {request_id} never ended after its cancel"
        time.sleep(0.05)


def test_parallel_deletes_of_one_session_succeed_exactly_once(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a session
    sid = new_session(api, "deleted ten times")
    # When ten deletes of it arrive at once
    results = all_at_once(
        service.base_url, user_key, PARALLEL_DELETES, lambda c: c.delete(f"/v1/sessions/{sid}")
    )
    # Then exactly one succeeds and the others find nothing to delete
    codes = sorted(r.status_code for r in results)
    assert codes == [204] + [404] * (PARALLEL_DELETES - 1), [r.text for r in results]
    assert api.get(f"/v1/sessions/{sid}").status_code == 404
    health.assert_always_answered()
    then_a_new_chat_completes(api, model)


def test_parallel_removals_of_one_video_from_a_session_succeed_exactly_once(
    service: LocalServiceProcess,
    health: HealthPoller,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
) -> None:
    # Given a session with a (sample) video added
    sid = new_session(api, "video removed ten times")
    added = api.post(
        f"/v1/sessions/{sid}/videos", json={"url": "https://www.youtube.com/watch?v=PrintPr3ss1"}
    )
    assert added.status_code in (200, 202), added.text
    path = f"/v1/sessions/{sid}/videos/PrintPr3ss1"
    # When ten removals of that video arrive at once
    results = all_at_once(service.base_url, user_key, PARALLEL_DELETES, lambda c: c.delete(path))
    # Then exactly one succeeds and the others find nothing to remove
    codes = sorted(r.status_code for r in results)
    assert codes == [204] + [404] * (PARALLEL_DELETES - 1), [r.text for r in results]
    assert [v["id"] for v in api.get(f"/v1/sessions/{sid}/videos").json()] == []
    health.assert_always_answered()
    then_a_new_chat_completes(api, model, sid)
