"""Session updates: what changed in a session's video list (``session_update`` events), followed
from the database so a change made on any process, by the agent, a route or an ingest, reaches
every open WebSocket and ``GET /v1/sessions/{id}/events`` stream of that session."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ytresearch.db.models import SessionChange
from ytresearch.repository import Store


def _changes_after(store: Store, session_id: uuid.UUID, after: int) -> list[SessionChange]:
    with store.transaction() as repo:
        return repo.session_changes_after(session_id, after)


def latest_change(store: Store, session_id: uuid.UUID) -> int:
    with store.transaction() as repo:
        return repo.last_session_change(session_id)


def update_frame(change: SessionChange) -> dict[str, Any]:
    """One change as the ``session_update`` event's data."""
    return {"id": change.id, "session_id": str(change.session_id), "change": change.change, **change.data}


async def follow_session(
    store: Store, session_id: uuid.UUID, after: int, *, poll_interval: float, ping_interval: float
) -> AsyncIterator[dict[str, Any] | None]:
    """Each change after ``after``, in order, as it lands; None after ``ping_interval`` seconds
    without one (for keep-alives). Runs until the caller stops iterating."""
    last_sent = time.monotonic()
    while True:
        changes = await asyncio.to_thread(_changes_after, store, session_id, after)
        for change in changes:
            after = change.id
            last_sent = time.monotonic()
            yield update_frame(change)
        if not changes:
            if time.monotonic() - last_sent >= ping_interval:
                last_sent = time.monotonic()
                yield None
            await asyncio.sleep(poll_interval)
