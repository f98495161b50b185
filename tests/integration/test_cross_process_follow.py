"""A reader on another process than the one running the reply: woken by PostgreSQL notifications
when events are written, and still served by polling with the listener off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.processes import ServiceProcess, service_env
from tests.support.sse import read_stream, text_of
from ytr.sse import SSEEvent
from ytresearch.bootstrap import Container
from ytresearch.services.sessions import create_session
from ytresearch.services.users import authenticate

pytestmark = pytest.mark.postgres

ANSWER = "".join(f"sentence {i} of an answer about heat pumps. " for i in range(40))
# The notified follower polls once a minute: a stream that stalls this long between events has
# not been woken by a notification, and the read fails instead of the run waiting for the poll.
NOTIFIED_POLL_SECONDS = 60
READ_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def processes(
    pg_database: str, fake_anthropic_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """The owner runs the replies; ``notified`` follows them with its listener on and polling all
    but off; ``polling`` follows them with its listener off and the usual poll interval."""
    logs = tmp_path_factory.mktemp("logs")

    def env(**extra: object) -> dict[str, str]:
        return service_env(pg_database, fake_anthropic_server.base_url, DEFAULT_API_KEY, **extra)

    procs = {
        "owner": ServiceProcess(env(), log_dir=logs),
        "notified": ServiceProcess(env(YTR_STREAM_POLL_SECONDS=NOTIFIED_POLL_SECONDS), log_dir=logs),
        "polling": ServiceProcess(env(YTR_STREAM_LISTEN="false", YTR_STREAM_POLL_SECONDS=0.1), log_dir=logs),
    }
    for p in procs.values():
        p.start(wait=False)
    try:
        for p in procs.values():
            p.wait_healthy(60)
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def follow_from(
    processes: dict[str, ServiceProcess], follower: str, key: str, db: Container, fake: FakeAnthropic
) -> list[SSEEvent]:
    """Start a reply on the owner and read its whole stream from ``follower`` as it is written."""
    # The model waits before its first word, so the follower is reading before the reply is
    # written and must be told about each new event to keep up.
    fake.enqueue(Reply(text=ANSWER, chunk_size=8, delay_first=1.0, delay_per_chunk=0.005))
    sid = create_session(db.store, db.settings, authenticate(db.store, key), "t").id
    owner = client_for(processes["owner"].base_url, key)
    started = owner.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()
    reader = client_for(processes[follower].base_url, key)
    status, events, _ = read_stream(reader, "GET", started["stream_url"], timeout=READ_TIMEOUT)
    assert status == 200
    return events


def test_a_follower_on_another_process_is_woken_by_notifications_and_gets_every_event(
    processes: dict[str, ServiceProcess], key: str, db: Container, fake_claude: FakeAnthropic
) -> None:
    # Given a follower that would poll the log only once a minute
    # When it streams a reply running on another process
    events = follow_from(processes, "notified", key, db, fake_claude)
    # Then it gets every event, in order and whole, within the read timeout: notifications woke it
    assert events[-1].event == "complete"
    assert [int(e.id) for e in events if e.id] == list(range(1, len(events) + 1))
    assert text_of(events) == ANSWER


def test_with_the_listener_off_a_follower_on_another_process_completes_by_polling(
    processes: dict[str, ServiceProcess], key: str, db: Container, fake_claude: FakeAnthropic
) -> None:
    # Given a follower with YTR_STREAM_LISTEN=false
    # When it streams a reply running on another process
    events = follow_from(processes, "polling", key, db, fake_claude)
    # Then polling alone brings it every event, in order and whole
    assert events[-1].event == "complete"
    assert [int(e.id) for e in events if e.id] == list(range(1, len(events) + 1))
    assert text_of(events) == ANSWER
