"""Named prepared statements on PostgreSQL (ytresearch.db.prepared): prepared once per
connection, errors mapped like pg8000's own cursor, stale statements prepared again, and off when
the setting says so (RDS Proxy)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.db.models import ResearchSession
from ytresearch.services.context import ChatQuestion
from ytresearch.services.users import create_user

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_pg(pg_server: PostgresServer) -> str:
    """A database of its own: one test here changes the schema."""
    url = pg_server.create_database(f"prep_{uuid.uuid4().hex[:10]}")
    upgrade_to_head(test_settings(url))
    return url


@pytest.fixture
def container(fresh_pg: str) -> Iterator[Container]:
    c = Container(test_settings(fresh_pg, db_pool_size=1))
    yield c
    c.engine.dispose()


def prepared_on_this_connection(container: Container) -> list[str]:
    with container.engine.connect() as conn:
        return list(conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())


def sessions_of(container: Container, user_id: uuid.UUID) -> list[str]:
    with container.store.transaction() as repo:
        return list(
            repo.session.scalars(select(ResearchSession.title).where(ResearchSession.user_id == user_id))
        )


def test_a_statement_is_prepared_once_per_connection_and_reused(container: Container):
    user, _ = create_user(container.store, "a@example.com")
    with container.store.transaction() as repo:
        repo.add_session(user.id, "one")

    for _ in range(3):
        assert sessions_of(container, user.id) == ["one"]

    statements = prepared_on_this_connection(container)  # pool of one: the same connection
    matching = [s for s in statements if s.startswith("SELECT sessions.title")]
    assert len(matching) == 1


def test_a_unique_violation_is_still_an_integrity_error(container: Container):
    create_user(container.store, "same@example.com")
    with pytest.raises(IntegrityError), container.store.transaction() as repo:
        repo.add_user("same@example.com")


def test_a_statement_made_stale_by_a_schema_change_is_prepared_again(container: Container):
    user, _ = create_user(container.store, "b@example.com")
    with container.store.transaction() as repo:
        repo.add_session(user.id, "before")
    assert sessions_of(container, user.id) == ["before"]
    with container.engine.begin() as conn:  # the result type of the prepared SELECT changes
        conn.execute(text("ALTER TABLE sessions ALTER COLUMN title TYPE text"))

    with pytest.raises(Exception, match="cached plan must not change result type"):
        sessions_of(container, user.id)
    assert sessions_of(container, user.id) == ["before"]  # prepared again, not stuck


def test_the_setting_turns_prepared_statements_off(fresh_pg: str):
    container = Container(test_settings(fresh_pg, db_pool_size=1, db_prepared_statements=False))
    try:
        user, _ = create_user(container.store, "c@example.com")
        assert sessions_of(container, user.id) == []
        assert prepared_on_this_connection(container) == []
    finally:
        container.engine.dispose()


def test_placeholders_and_literal_percent_signs_convert_like_pg8000s_own(container: Container):
    with container.engine.connect() as conn:
        for _ in range(2):  # converted once, then from the cache
            value = conn.execute(
                text("SELECT CAST(:a AS text) || '%' || CAST(:b AS text)"), {"a": "x", "b": 7}
            )
            assert value.scalar() == "x%7"


def test_very_long_statements_run_unnamed_and_are_not_kept(container: Container):
    from streaming_service.chat_requests import ChatRequestManager
    from ytresearch.db.prepared import MAX_CACHED_CHARS
    from ytresearch.events import StreamEvent

    user, _ = create_user(container.store, "d@example.com")
    with container.store.transaction() as repo:
        session_id = repo.add_session(user.id, "s").id
    manager = ChatRequestManager(container.store, container.settings, container.chat_model)
    row, _turn = manager.runner.begin(ChatQuestion(user=user, session_id=session_id, text="hello"))
    events = [StreamEvent("token", {"text": f"t{i}"}, id=i) for i in range(1, 601)]  # one long INSERT

    manager.event_log.persist([(row.id, events)])

    with container.store.transaction() as repo:
        assert [e.seq for e in repo.chat_events_after(row.id, 0)] == list(range(1, 601))
    assert all(len(s) <= MAX_CACHED_CHARS for s in prepared_on_this_connection(container))
