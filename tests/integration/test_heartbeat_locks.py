"""The heartbeat never waits for a chat request row another transaction holds (the event log
ending several requests at once): it skips it, so the two can never deadlock, and the request
it skipped is still its own and running, not taken for lost. PostgreSQL (SQLite has one writer)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from streaming_service.chat_requests import ChatRequestManager
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import ChatRequest, utcnow
from ytresearch.llm import OfflineChatModel

pytestmark = pytest.mark.postgres

OWNER = "heartbeat-test-process"


def running_requests(db: Container, count: int) -> list[uuid.UUID]:
    user, _ = make_user(db)
    with db.store.transaction() as repo:
        session = repo.add_session(user.id, "locks")
        return [
            repo.add_chat_request(
                user_id=user.id,
                session_id=session.id,
                expires_at=utcnow() + timedelta(hours=1),
                status="streaming",
                owner=OWNER,
                heartbeat_at=utcnow() - timedelta(seconds=30),
            ).id
            for _ in range(count)
        ]


def test_a_locked_row_is_skipped_not_waited_for_and_not_lost(db: Container) -> None:
    free, held = running_requests(db, 2)
    manager = ChatRequestManager(db.store, db.settings, OfflineChatModel(), owner=OWNER)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # another transaction holding one request's row (as the event log does)
        with db.store.transaction() as repo:
            repo.session.execute(select(ChatRequest.id).where(ChatRequest.id == held).with_for_update())
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert locked.wait(10)
        outcome: dict[str, object] = {}
        beat = threading.Thread(
            target=lambda: outcome.update(result=manager.cleaner._heartbeat([free, held])), daemon=True
        )
        beat.start()
        beat.join(10)
        assert not beat.is_alive(), "the heartbeat waited for the locked row"
        alive, lost = outcome["result"]  # type: ignore[misc]
        assert set(alive) == {free} and lost == {}  # skipped, and not taken for deleted or taken over
    finally:
        release.set()
        holder.join(10)
    with db.store.transaction() as repo:
        beats = {row.id: row.heartbeat_at for row in repo.get_chat_requests([free, held])}
    assert beats[free] > beats[held]  # the free one was marked alive now; the held one next time
