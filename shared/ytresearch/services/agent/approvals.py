"""Approvals: in "confirm" mode a mutating tool call waits for the person's decision, given on any
process (``decide``), or for the timeout, which counts as a refusal. The wait holds no thread and
no model connection: the model's response has ended, and the decision is read from the database.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from ytresearch.errors import ConflictError, NotFoundError
from ytresearch.repository import ACTIVE_REQUEST_STATUSES, Store
from ytresearch.services.users import AuthUser


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str  # "user" or "timeout"


def decide(store: Store, user: AuthUser, request_id: uuid.UUID, call_id: str, approve: bool) -> Decision:
    """The person's decision on a call that waits for it. 404 for a request that is not theirs
    or a call that asked for no approval; 409 once decided or when the reply has ended."""
    with store.transaction() as repo:
        request = repo.get_chat_request(request_id)
        if request is None or request.user_id != user.id:
            raise NotFoundError(f"chat request {request_id} not found", code="REQUEST_NOT_FOUND")
        if not repo.approval_requested(request_id, call_id):
            raise NotFoundError(f"no approval was asked for call {call_id}", code="APPROVAL_NOT_FOUND")
        if request.status not in ACTIVE_REQUEST_STATUSES:
            raise ConflictError(
                "the reply has ended; nothing waits for this decision", code="REQUEST_FINISHED"
            )
        if not repo.decide_approval(request_id, call_id, approved=approve, by="user"):
            raise ConflictError(f"call {call_id} was already decided", code="APPROVAL_ALREADY_DECIDED")
    return Decision(approve, "user")


def _read(store: Store, request_id: uuid.UUID, call_id: str) -> Decision | None:
    with store.transaction() as repo:
        found = repo.approval(request_id, call_id)
        return Decision(found.approved, found.decided_by) if found is not None else None


def _time_out(store: Store, request_id: uuid.UUID, call_id: str) -> Decision:
    with store.transaction() as repo:
        repo.decide_approval(request_id, call_id, approved=False, by="timeout")
    decided = _read(store, request_id, call_id)  # a click that landed first still wins
    return decided or Decision(False, "timeout")


async def wait_for_decision(
    store: Store, request_id: uuid.UUID, call_id: str, *, timeout: float, poll: float = 0.25
) -> Decision:
    """The decision on ``call_id``, or a refusal by the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        decided = await asyncio.to_thread(_read, store, request_id, call_id)
        if decided is not None:
            return decided
        await asyncio.sleep(min(poll, max(0.0, deadline - loop.time())))
    return await asyncio.to_thread(_time_out, store, request_id, call_id)
