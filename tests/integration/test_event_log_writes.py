"""How the chat event log reaches the database: one statement per flush, never a round trip per
row, and no Nagle stall on PostgreSQL connections."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import event

from streaming_service.chat_requests import ChatRequestManager
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.events import StreamEvent
from ytresearch.services.context import ChatQuestion


def test_a_flush_of_many_events_is_one_insert_statement(container: Container):
    user, _ = make_user(container)
    manager = ChatRequestManager(container.store, container.settings, container.chat_model)
    with container.store.transaction() as repo:
        session_id = repo.add_session(user.id, "s").id
    row, _turn = manager.runner.begin(ChatQuestion(user=user, session_id=session_id, text="hello"))
    seen: list[tuple[str, int]] = []  # (verb, rows written by the statement)

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement.split()[0], statement.count("::UUID, ") or 1))

    event.listen(container.engine, "before_cursor_execute", record)
    try:
        manager.event_log.persist(
            [(row.id, [StreamEvent("token", {"text": f"t{i}"}, id=i) for i in range(1, 151)])]
        )
    finally:
        event.remove(container.engine, "before_cursor_execute", record)

    inserts = [s for s in seen if s[0] == "INSERT"]
    if container.engine.dialect.name == "postgresql":
        assert inserts == [("INSERT", 150)]  # one INSERT ... VALUES (...), (...) for all rows
    else:
        assert len(inserts) == 1  # SQLite's executemany: one call, looped in C in process
    with container.store.transaction() as repo:
        stored = repo.chat_events_after(row.id, 0)
    assert [e.seq for e in stored] == list(range(1, 151))
    assert stored[-1].data == {"text": "t150"}


def test_postgres_connections_send_without_nagle_delay(pg_url: str):
    from tests.support.settings import test_settings

    container = Container(test_settings(pg_url))
    try:
        with container.engine.connect() as conn:
            sock = conn.connection.dbapi_connection._usock  # pg8000's socket
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        container.engine.dispose()
