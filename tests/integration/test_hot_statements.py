"""The statements every chat runs (authentication, the chat start, the reply's save) are built once
and executed again, not rebuilt per call: SQLAlchemy then skips building them and their cache keys,
which cost more CPU than running them (docs/benchmarks.md, issue 19)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import ResearchSession
from ytresearch.services.context import ChatQuestion, ContextDeps, prepare_turn_in
from ytresearch.services.endings import Generation, SessionGoneError, save_reply
from ytresearch.services.users import authenticate


def one_chat(container: Container, key: str, session_id: uuid.UUID) -> list[Any]:
    """The statements one chat's database work executes through the ORM session, in order."""
    executed: list[Any] = []

    def record(state: Any) -> None:
        executed.append(state.statement)

    factory = container.store.session_factory
    event.listen(factory, "do_orm_execute", record)
    try:
        user = authenticate(container.store, key)  # no key cache: the database lookup
        deps = ContextDeps(settings=container.settings, model=container.chat_model, max_tokens=100)
        with container.store.transaction() as repo:
            turn = prepare_turn_in(
                repo, deps, ChatQuestion(user=user, session_id=session_id, text="hi"), limit_active=True
            )
        save_reply(container.store, turn, Generation(parts=["hello"]), "complete", model_name="m")
    finally:
        event.remove(factory, "do_orm_execute", record)
    return executed


def test_a_chat_executes_the_same_statement_objects_every_time(container: Container) -> None:
    user, key = make_user(container)
    with container.store.transaction() as repo:
        sessions = [repo.add_session(user.id, f"s{i}").id for i in range(2)]

    first, second = (one_chat(container, key, sid) for sid in sessions)

    assert len(first) >= 7  # key, lock, session and limits, videos, history, message, touch, ...
    assert len(second) == len(first)
    rebuilt = [str(b) for a, b in zip(first, second, strict=True) if a is not b]
    assert rebuilt == []


def test_saving_a_reply_touches_its_session_and_refuses_a_deleted_one(container: Container) -> None:
    user, key = make_user(container)
    with container.store.transaction() as repo:
        sid = repo.add_session(user.id, "s").id
        before = repo.session.get(ResearchSession, sid)
        assert before is not None
        created = before.updated_at
    one_chat(container, key, sid)
    with container.store.transaction() as repo:
        after = repo.session.get(ResearchSession, sid)
        assert after is not None and after.updated_at > created
        messages = repo.recent_messages(sid, 10)
    assert [(m.role, m.content) for m in messages] == [("user", "hi"), ("assistant", "hello")]

    deps = ContextDeps(settings=container.settings, model=container.chat_model, max_tokens=100)
    with container.store.transaction() as repo:
        question = ChatQuestion(user=authenticate(container.store, key), session_id=sid, text="again")
        turn = prepare_turn_in(repo, deps, question)
    with container.store.transaction() as repo:
        assert repo.delete_session(user.id, sid)
    with pytest.raises(SessionGoneError):
        save_reply(container.store, turn, Generation(parts=["late"]), "complete", model_name="m")
