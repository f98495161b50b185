"""How the chat event log reaches the database: one statement per flush, never a round trip per
row, and no Nagle stall on PostgreSQL connections."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import event, func, select

from streaming_service.chat_requests import ChatRequestManager
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import ChatEvent, ChatRequest
from ytresearch.events import StreamEvent
from ytresearch.services.context import ChatQuestion


def started_request(container: Container) -> tuple[ChatRequestManager, ChatRequest]:
    """A manager and a request it recorded (not running: the tests write its events)."""
    user, _ = make_user(container)
    manager = ChatRequestManager(container.store, container.settings, container.chat_model)
    with container.store.transaction() as repo:
        session_id = repo.add_session(user.id, "s").id
    row, _turn = manager.runner.begin(ChatQuestion(user=user, session_id=session_id, text="hello"))
    return manager, row


def test_a_flush_of_many_events_is_one_insert_statement(container: Container):
    manager, row = started_request(container)
    seen: list[tuple[str, int]] = []  # (verb, rows written by the statement)

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement.split()[0], statement.count("::UUID, ") or 1))

    event.listen(container.engine, "before_cursor_execute", record)
    try:
        manager.event_log.persist([(row.id, [_event(i) for i in range(1, 151)])])
    finally:
        event.remove(container.engine, "before_cursor_execute", record)

    inserts = [s for s in seen if s[0] == "INSERT"]
    # each run of two tokens is one checkpoint row, each citation a row of its own: 100 rows
    if container.engine.dialect.name == "postgresql":
        assert inserts == [("INSERT", 100)]  # one INSERT ... VALUES (...), (...) for all rows
    else:
        assert len(inserts) == 1  # SQLite's executemany: one call, looped in C in process
    with container.store.transaction() as repo:
        stored = repo.chat_events_after(row.id, 0)
        rows = repo.session.scalar(select(func.count()).where(ChatEvent.request_id == row.id))
    assert rows == 100
    assert [(e.seq, e.type, e.data) for e in stored] == [
        (i, _event(i).type, _event(i).data) for i in range(1, 151)
    ]


def _event(i: int) -> StreamEvent:
    if i % 3 == 0:
        return StreamEvent("citation", {"n": i}, id=i)
    return StreamEvent("token", {"text": f"t{i}"}, id=i)


def test_a_checkpoint_of_a_streaming_reply_is_one_row_and_resumes_at_every_cursor(container: Container):
    manager, row = started_request(container)
    texts = ["Fold", " the 🍞", "", " dough\n", "é" * 3, "\u2028end"]
    tokens = [StreamEvent("token", {"text": t}, id=i) for i, t in enumerate(texts, start=1)]

    manager.event_log.persist([(row.id, tokens[:1])])  # the first token, at once
    manager.event_log.persist([(row.id, tokens[1:])])  # one checkpoint

    with container.store.transaction() as repo:
        rows = repo.session.scalars(
            select(ChatEvent).where(ChatEvent.request_id == row.id).order_by(ChatEvent.seq)
        ).all()
        assert [(r.seq, r.data) for r in rows] == [
            (1, {"text": "Fold"}),
            (6, {"text": "".join(texts[1:]), "parts": [len(t) for t in texts[1:]]}),
        ]
        for cursor in range(len(texts) + 1):
            got = repo.chat_events_after(row.id, cursor)
            assert [(e.seq, e.data) for e in got] == [(t.id, t.data) for t in tokens[cursor:]]
        assert repo.chat_event(row.id, 6) is not None and repo.chat_event(row.id, 6).data == {
            "text": texts[-1]
        }


def test_postgres_connections_send_without_nagle_delay(pg_url: str):
    from tests.support.settings import test_settings

    container = Container(test_settings(pg_url))
    try:
        with container.engine.connect() as conn:
            sock = conn.connection.dbapi_connection._usock  # pg8000's socket
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        container.engine.dispose()
