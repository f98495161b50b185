"""Approvals: people's decisions on tool calls that wait for them, written once by any process."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ytresearch.db.models import ChatEvent, ToolApproval, utcnow
from ytresearch.repository.base import Queries


class ApprovalQueries(Queries):
    def decide_approval(self, request_id: uuid.UUID, call_id: str, *, approved: bool, by: str) -> bool:
        """Record the decision unless one exists; True when this one was recorded (the first
        wins, so a late click and the timeout cannot both count)."""
        try:
            with self.session.begin_nested():
                self.session.add(
                    ToolApproval(
                        request_id=request_id,
                        call_id=call_id,
                        approved=approved,
                        decided_by=by,
                        decided_at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def approval(self, request_id: uuid.UUID, call_id: str) -> ToolApproval | None:
        return self.session.get(ToolApproval, (request_id, call_id))

    def approval_requested(self, request_id: uuid.UUID, call_id: str) -> bool:
        """Whether the reply asked for this call's approval (its event is in the log)."""
        found = self.session.scalars(
            select(ChatEvent.seq)
            .where(ChatEvent.request_id == request_id, ChatEvent.type == "approval_required")
            .where(ChatEvent.data["call_id"].as_string() == call_id)
            .limit(1)
        ).first()
        return found is not None
