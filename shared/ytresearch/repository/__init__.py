"""Data access: the only place that builds queries, one module per aggregate. Services use a
``Repository`` inside a ``Store`` transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from ytresearch.repository.actions import ActionQueries
from ytresearch.repository.approvals import ApprovalQueries
from ytresearch.repository.artifacts import ArtifactQueries
from ytresearch.repository.base import ACTIVE_REQUEST_STATUSES
from ytresearch.repository.chat_requests import ChatRequestQueries
from ytresearch.repository.messages import MessageQueries
from ytresearch.repository.session_changes import SessionChangeQueries
from ytresearch.repository.sessions import SessionQueries
from ytresearch.repository.users import UserQueries
from ytresearch.repository.videos import VideoQueries
from ytresearch.repository.windows import WindowQueries

__all__ = ["ACTIVE_REQUEST_STATUSES", "Repository", "Store"]


class Repository(
    UserQueries,
    SessionQueries,
    VideoQueries,
    MessageQueries,
    ChatRequestQueries,
    ActionQueries,
    ApprovalQueries,
    SessionChangeQueries,
    WindowQueries,
    ArtifactQueries,
):
    """Every aggregate's queries on one transaction's session."""


class Store:
    """Hands out repositories bound to one transaction each."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        with self.session_factory() as session, session.begin():
            yield Repository(session)
