"""A cancel can land at any moment of a reply, including while the finished reply is being saved:
whatever the moment, the request ends with exactly one final status, its readers stop, it stops
counting as active, and the manager shuts down."""

from __future__ import annotations

import asyncio
import uuid

from streaming_service.chat_requests import ChatRequestManager
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.llm import OfflineChatModel


def test_cancel_at_any_moment_leaves_a_final_status(container: Container) -> None:
    user, _ = make_user(container)
    with container.store.transaction() as repo:
        sid = repo.add_session(user.id, "race").id

    async def one(delay: float) -> tuple[str, str, int, list[str]]:
        manager = ChatRequestManager(container.store, container.settings, OfflineChatModel(token_delay=0.002))
        await manager.start()
        try:
            row = await manager.start_request(user, sid, "How do solar panels work?", None)
            await asyncio.sleep(delay)
            answered = await manager.cancel(user, row.id)
            seen = [e.type async for e in manager.follow(row.id, 0) if e is not None]
            await asyncio.sleep(0.2)  # the write-behind of the last events
            with container.store.transaction() as repo:
                stored = repo.get_chat_request(uuid.UUID(str(row.id)))
                assert stored is not None
                return answered, stored.status, repo.count_active_requests(user.id), seen
        finally:
            await asyncio.wait_for(manager.stop(), 10)

    for delay in [i * 0.004 for i in range(15)]:
        answered, stored, active, seen = asyncio.run(one(delay))
        assert stored in ("complete", "cancelled"), delay
        assert answered == stored, delay  # the cancel reports what really happened
        assert active == 0, delay
        assert sum(kind in ("complete", "cancelled", "error") for kind in seen) == 1, delay
