"""The research agent's actions: the audit log of its tool calls, and what undoes them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import literal, select, tuple_, update

from ytresearch.db.models import AgentAction, utcnow
from ytresearch.pagination import Cursor
from ytresearch.repository.base import Queries, changed_rows, table_of

# The tools whose done actions added videos, listed in ``result["data"]["video_ids"]``.
ADDING_TOOLS = ("add_video", "add_playlist")


class ActionQueries(Queries):
    def add_action(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        tool: str,
        input: dict[str, Any],
        status: str,
        result: dict[str, Any],
        mutating: bool,
        undo: dict[str, Any] | None,
        duration_ms: int,
        request_id: uuid.UUID | None,
        message_id: uuid.UUID | None,
    ) -> AgentAction:
        """Record one tool call. ``status``: done / failed / refused. ``undo``: what reverses it
        (see ``AgentAction``), None when nothing can. For add_video and add_playlist,
        ``result["data"]["video_ids"]`` must list the videos the call newly linked (what
        ``count_agent_added_videos`` counts)."""
        action = AgentAction(
            id=uuid.uuid4(),
            user_id=user_id,
            session_id=session_id,
            tool=tool,
            input=input,
            result=result,
            status=status,
            mutating=mutating,
            undo=undo,
            duration_ms=duration_ms,
            request_id=request_id,
            message_id=message_id,
        )
        self.session.add(action)
        self.session.flush()
        return action

    def get_action(
        self, user_id: uuid.UUID, session_id: uuid.UUID, action_id: uuid.UUID
    ) -> AgentAction | None:
        """One of the user's actions in that session (None for anyone else's)."""
        return self.session.scalar(
            select(AgentAction).where(
                AgentAction.id == action_id,
                AgentAction.session_id == session_id,
                AgentAction.user_id == user_id,
            )
        )

    def list_actions(self, session_id: uuid.UUID, limit: int, cursor: Cursor | None) -> list[AgentAction]:
        """The session's actions, newest first, after ``cursor`` (ix_agent_actions_session_created)."""
        query = select(AgentAction).where(AgentAction.session_id == session_id)
        if cursor is not None:
            query = query.where(
                tuple_(AgentAction.created_at, AgentAction.id)
                < tuple_(literal(cursor.created_at), literal(cursor.id))
            )
        query = query.order_by(AgentAction.created_at.desc(), AgentAction.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def mark_action_undone(self, action_id: uuid.UUID, at: datetime | None = None) -> bool:
        """Set ``undone_at`` unless it is set already. The UPDATE decides: of concurrent undos of
        one action exactly one gets True (PostgreSQL re-checks the condition once the row lock of
        the first is released; SQLite runs writers one at a time)."""
        table = table_of(AgentAction)
        result = self.session.execute(
            update(table)
            .where(table.c.id == action_id, table.c.undone_at.is_(None))
            .values(undone_at=at or utcnow())
        )
        return changed_rows(result)

    def count_agent_added_videos(self, session_id: uuid.UUID) -> int:
        """How many videos the agent has added to the session: the ``result["data"]["video_ids"]``
        of its done add_video and add_playlist actions that were not undone. A video removed by
        hand since still counts (the bound is on what the agent did)."""
        results = self.session.scalars(
            select(AgentAction.result).where(
                AgentAction.session_id == session_id,
                AgentAction.tool.in_(ADDING_TOOLS),
                AgentAction.status == "done",
                AgentAction.undone_at.is_(None),
            )
        )
        return sum(len(_added_ids(result)) for result in results)


def _added_ids(result: Any) -> list[Any]:
    data = result.get("data") if isinstance(result, dict) else None
    ids = data.get("video_ids") if isinstance(data, dict) else None
    return ids if isinstance(ids, list) else []
