"""Heartbeats, orphans and expiry: no request is left running after its process died, and finished
ones are deleted after their time to live (a tombstone keeps answering 410).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from streaming_service.chat_requests.deps import ChatRequestDeps
from streaming_service.chat_requests.event_log import tell_followers
from ytresearch.db.models import utcnow
from ytresearch.observability.metrics import ERRORS
from ytresearch.repository import ACTIVE_REQUEST_STATUSES
from ytresearch.services.endings import SESSION_DELETED, TAKEN_OVER, close_orphaned_request

log = logging.getLogger(__name__)

SESSION_CHANGES_KEPT = timedelta(hours=1)


def close_orphan(deps: ChatRequestDeps, request_id: uuid.UUID) -> bool:
    """Close a request whose process died (see ``endings.close_orphaned_request``); False when it
    is not orphaned after all."""
    with deps.store.transaction() as repo:
        closed = close_orphaned_request(
            repo, request_id, stale_after=deps.stale_after, model_name=deps.model.name, keep_for=deps.keep_for
        )
    if closed:
        tell_followers(deps.store, [request_id])
        log.warning("closed orphaned chat request %s", request_id)
        deps.metrics.count(ERRORS, code="REQUEST_INTERRUPTED")
    return closed


class Cleanup:
    """The owner's heartbeat of its running requests, and the periodic close and expiry."""

    def __init__(self, deps: ChatRequestDeps, heartbeat_interval: float) -> None:
        self.deps = deps
        self.heartbeat_interval = heartbeat_interval

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.deps.gauge.send_if_due()  # a gauge with no gaps, even when nothing changes
            if not self.deps.live.active_count:
                continue
            try:
                await self.heartbeat()
            except Exception:
                log.warning("heartbeat failed (database unavailable?)", exc_info=True)

    async def heartbeat(self) -> None:
        """Keep this process's running requests fresh, stop those a client cancelled through
        another process, and end those whose rows are gone (their session was deleted) or that
        another process closed as orphaned while this one could not reach the database."""
        live_requests = self.deps.live
        running = [live for live in live_requests.values() if not live.finished and not live.detached]
        alive, missing = await asyncio.to_thread(self._heartbeat, [live.id for live in running])
        for live in running:
            if live.id in missing:
                live_requests.end_detached(live, SESSION_DELETED if missing[live.id] else TAKEN_OVER)
            elif alive.get(live.id) and live.task and not live.task.done():
                live.task.cancel()

    def _heartbeat(self, running: list[uuid.UUID]) -> tuple[dict[uuid.UUID, bool], dict[uuid.UUID, bool]]:
        """(running rows with their cancel flag, the given running requests without a running row,
        each with True when its row is gone)."""
        with self.deps.store.transaction() as repo:
            alive = repo.heartbeat(self.deps.owner, utcnow())
            lost = [rid for rid in running if rid not in alive]
            if not lost:
                return alive, {}
            rows = {row.id: row for row in repo.get_chat_requests(lost)}
            # A row still running here was only locked by another transaction (skipped, not lost).
            held = {
                rid
                for rid, row in rows.items()
                if row.owner == self.deps.owner and row.status in ACTIVE_REQUEST_STATUSES
            }
            return alive, {rid: rid not in rows for rid in lost if rid not in held}

    async def cleanup_loop(self, interval: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.cleanup()
            except Exception:
                log.warning("cleanup failed (database unavailable?)", exc_info=True)

    async def cleanup(self) -> dict[str, int]:
        """Close abandoned requests (owner gone) and expire finished ones: their event rows are
        deleted and a tombstone keeps answering 410. Session changes older than an hour go too."""
        orphans = await asyncio.to_thread(self._stale_requests)
        closed = 0
        for rid in orphans:
            if rid in self.deps.live:
                continue  # ours: its heartbeat was only late (the database was away)
            closed += int(await asyncio.to_thread(close_orphan, self.deps, rid))
        expired = await asyncio.to_thread(self._expire)
        for rid in expired:
            self.deps.live.pop(rid, None)
        return {"orphans_closed": closed, "expired": len(expired)}

    def _stale_requests(self) -> list[uuid.UUID]:
        with self.deps.store.transaction() as repo:
            return repo.stale_chat_requests(utcnow() - self.deps.stale_after)

    def _expire(self) -> list[uuid.UUID]:
        with self.deps.store.transaction() as repo:
            # Session changes are only followed live (or resumed within minutes): an hour is ample.
            repo.delete_session_changes_before(utcnow() - SESSION_CHANGES_KEPT)
            return repo.expire_chat_requests(utcnow())
