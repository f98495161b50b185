"""Telling other processes that the event log grew: ``notify_chat_log`` sends PostgreSQL
notifications on commit, each under the payload limit, naming every id once; on SQLite it does
nothing."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event

from streaming_service.chat_requests.log_listener import conninfo_for
from tests.support.settings import test_settings
from ytresearch.db.engine import make_engine, make_session_factory
from ytresearch.db.notify import CHANNEL, MAX_PAYLOAD_BYTES, notify_chat_log, payloads_for


@pytest.fixture
def listening(pg_url: str) -> Iterator[psycopg.Connection]:
    """A plain psycopg session listening on the channel, as the streaming service's listener does."""
    with psycopg.connect(conninfo_for(test_settings(pg_url)), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def received(conn: psycopg.Connection, until: set[uuid.UUID]) -> list[str]:
    """Payloads until every id in ``until`` was named (30 s at most: a hang guard, not a measure)."""
    payloads: list[str] = []
    named: set[uuid.UUID] = set()
    deadline = time.monotonic() + 30
    while not until <= named and time.monotonic() < deadline:
        for note in conn.notifies(timeout=1):
            payloads.append(note.payload)
            named.update(uuid.UUID(item) for item in note.payload.split(","))
    return payloads


@pytest.mark.postgres
def test_many_ids_are_split_into_notifications_under_the_limit_and_each_id_arrives_once(
    pg_url: str, listening: psycopg.Connection
) -> None:
    # Given more request ids than one payload can name, some of them twice
    ids = [uuid.uuid4() for _ in range(1000)]
    engine = make_engine(test_settings(pg_url))
    try:
        # When one transaction notifies them and commits
        with make_session_factory(engine)() as session, session.begin():
            notify_chat_log(session, ids + ids[:50])
    finally:
        engine.dispose()
    payloads = received(listening, set(ids))

    # Then they came in several notifications, each under the limit
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in payloads)
    # And every id was named exactly once
    named = Counter(uuid.UUID(item) for p in payloads for item in p.split(","))
    assert set(named) == set(ids) and set(named.values()) == {1}


@pytest.mark.postgres
def test_a_rolled_back_write_notifies_nobody(pg_url: str, listening: psycopg.Connection) -> None:
    # Given one transaction that notifies and rolls back, then one that notifies and commits
    rolled_back, committed = uuid.uuid4(), uuid.uuid4()
    engine = make_engine(test_settings(pg_url))
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            session.begin()
            notify_chat_log(session, [rolled_back])
            session.rollback()
        with sessions() as session, session.begin():
            notify_chat_log(session, [committed])
    finally:
        engine.dispose()

    # Then only the committed one is told (notifications arrive in commit order, so the rolled
    # back one would have come first)
    assert received(listening, {committed}) == [str(committed)]


def test_payloads_fill_up_to_the_limit_and_never_reach_it() -> None:
    ids = [uuid.UUID(int=i) for i in range(10)]
    # 36 characters an id, one comma between: three ids are 110 bytes
    assert [p.count(",") + 1 for p in payloads_for(ids, limit=111)] == [3, 3, 3, 1]
    assert [p.count(",") + 1 for p in payloads_for(ids, limit=110)] == [2, 2, 2, 2, 2]
    assert list(payloads_for([])) == []


def test_on_sqlite_nothing_is_sent(tmp_path: Path) -> None:
    # Given a SQLite database (the local run: one process, nobody to tell)
    engine = make_engine(test_settings(f"sqlite:///{tmp_path}/ytr.db"))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        # When a write notifies
        with make_session_factory(engine)() as session, session.begin():
            notify_chat_log(session, [uuid.uuid4()])
    finally:
        engine.dispose()
    # Then no statement ran (SQLite has no pg_notify: one would have failed)
    assert statements == []
