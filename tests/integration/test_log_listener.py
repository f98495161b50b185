"""The event log listener: one LISTEN connection per process wakes the readers following other
processes' requests; when it is down they poll, and it comes back by itself. It connects with the
engine's TLS."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from streaming_service.chat_requests import ChatRequestManager, log_listener
from streaming_service.chat_requests.log_listener import LogListener
from tests.support.postgres import PostgresServer, free_port
from tests.support.settings import test_settings
from tests.support.tls import CertificateSet
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.db.engine import make_engine, make_session_factory
from ytresearch.db.notify import notify_chat_log
from ytresearch.events import StreamEvent
from ytresearch.llm.offline import OfflineChatModel
from ytresearch.services.sessions import create_session

HANG_GUARD = 30.0  # seconds: a test that waits longer fails instead of stalling the run (not a measure)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + HANG_GUARD
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


def query(settings: Settings, sql: str, **params: Any) -> Any:
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def write_notify(settings: Settings, ids: list[uuid.UUID], *, commit: bool = True) -> None:
    """What every write of log events does, from another connection than the listener's."""
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            session.begin()
            notify_chat_log(session, ids)
            if commit:
                session.commit()
            else:
                session.rollback()
    finally:
        engine.dispose()


async def read_all(manager: ChatRequestManager, request_id: uuid.UUID) -> list[StreamEvent]:
    return [e async for e in manager.follow(request_id) if e is not None]


@pytest.mark.postgres
def test_a_watcher_is_woken_by_a_notification_another_connection_commits(pg_url: str) -> None:
    settings = test_settings(pg_url)

    async def scenario() -> tuple[bool, bool, bool, int | None]:
        # Given a listener that is up, two readers watching one request and one another
        listener = LogListener(settings)
        task = asyncio.create_task(listener.run())
        try:
            await until(lambda: listener.up, "the listener is up")
            pid = listener.backend_pid
            followed, other = uuid.uuid4(), uuid.uuid4()
            first, second, elsewhere = (
                listener.watch(followed),
                listener.watch(followed),
                listener.watch(other),
            )
            # When another connection notifies the other request and rolls back, then notifies
            # the followed one and commits
            await asyncio.to_thread(write_notify, settings, [other], commit=False)
            await asyncio.to_thread(write_notify, settings, [followed])
            woken = await first.wait(HANG_GUARD)
            return woken, second.is_set(), elsewhere.is_set(), pid
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert not listener.up  # stopped: down, so no reader waits on it

    woken, second_woken, elsewhere_woken, pid = asyncio.run(scenario())
    # Then both watchers of the committed request are woken, and nobody else
    assert woken and second_woken
    assert not elsewhere_woken
    # And cancelling it closed its connection
    gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"
    asyncio.run(until(lambda: bool(query(settings, gone, pid=pid)), "the listening session ends"))


@pytest.mark.postgres
def test_a_killed_listener_goes_down_readers_poll_and_it_comes_back_by_itself(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two processes' request managers on one database (the owner runs the replies, the
    # follower reads them from the event log), the follower's listener up
    db = Container(test_settings(pg_url))
    user, _ = make_user(db)
    sid = create_session(db.store, db.settings, user, "t").id

    async def scenario() -> tuple[list[StreamEvent], list[StreamEvent], bool, bool]:
        owner = ChatRequestManager(db.store, db.settings, OfflineChatModel(token_delay=0.002))
        follower = ChatRequestManager(db.store, db.settings, OfflineChatModel())
        listener = follower.deps.listener
        assert listener is not None
        await owner.start()
        await follower.start()
        try:
            await until(lambda: listener.up, "the listener is up")
            # When its session is killed and the database refuses it for a while
            refused = f"host=127.0.0.1 port={free_port()} connect_timeout=2"
            monkeypatch.setattr(log_listener, "conninfo_for", lambda _settings: refused)
            kill = "SELECT pg_terminate_backend(:pid)"
            await asyncio.to_thread(query, db.settings, kill, pid=listener.backend_pid)
            # Then it says it is down
            await until(lambda: not listener.up, "the listener reports down")
            # And a reader on that process still gets a whole reply, by polling the log
            row = await owner.start_request(user, sid, "while it is down", None)
            polled = await asyncio.wait_for(read_all(follower, row.id), HANG_GUARD)
            was_down_throughout = not listener.up
            # And once the database takes it again, it is back up by itself and wakes watchers
            monkeypatch.undo()
            await until(lambda: listener.up, "the listener is up again")
            watch = listener.watch(row.id)
            await asyncio.to_thread(write_notify, db.settings, [row.id])
            woken = await watch.wait(HANG_GUARD)
            row = await owner.start_request(user, sid, "once it is back", None)
            followed = await asyncio.wait_for(read_all(follower, row.id), HANG_GUARD)
            return polled, followed, was_down_throughout, woken
        finally:
            await follower.stop()
            await owner.stop()

    try:
        polled, followed, was_down_throughout, woken = asyncio.run(scenario())
    finally:
        db.engine.dispose()
    assert was_down_throughout
    for events in (polled, followed):
        assert events[-1].type == "complete" and events[-1].data["text"]
        assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert woken


def tls_settings(server: PostgresServer, **overrides: Any) -> Settings:
    return test_settings(f"postgresql+pg8000://postgres@localhost:{server.port}/postgres", **overrides)


@pytest.mark.postgres
def test_the_listener_verifies_the_database_certificate_as_the_engine_does(
    tls_server: PostgresServer, certificates: CertificateSet
) -> None:
    # Given verify-full with the CA that signed the server's certificate
    settings = tls_settings(tls_server, db_tls="verify-full", db_ca_bundle=certificates.ca)

    async def scenario() -> bool:
        listener = LogListener(settings)
        task = asyncio.create_task(listener.run())
        try:
            await until(lambda: listener.up, "the listener is up")
            ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = :pid"
            return bool(await asyncio.to_thread(query, settings, ssl, pid=listener.backend_pid))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # When it listens, then it is up over an encrypted connection
    assert asyncio.run(scenario())


@pytest.mark.postgres
def test_a_listener_refused_by_certificate_checks_stays_down_and_warns_once(
    tls_server: PostgresServer,
    certificates: CertificateSet,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given verify-full with a CA that signed nothing the server presents
    settings = tls_settings(tls_server, db_tls="verify-full", db_ca_bundle=certificates.other_ca)
    attempts: list[str] = []
    real = log_listener.conninfo_for
    monkeypatch.setattr(log_listener, "conninfo_for", lambda s: attempts.append("connect") or real(s))
    caplog.set_level(logging.DEBUG, logger=log_listener.__name__)

    async def scenario() -> bool:
        listener = LogListener(settings)
        task = asyncio.create_task(listener.run())
        try:
            await until(lambda: len(attempts) >= 4, "several connection attempts")
            return listener.up
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # When it tries, and tries again
    up = asyncio.run(scenario())
    # Then it never counts as up (readers poll), and says so once, with the reason
    assert not up
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "certificate verify failed" in warnings[0]
