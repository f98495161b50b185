"""Ingest progress as SSE: the job row is polled and each change becomes a `stage` event, ending
with `complete` (done) or `error` (failed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from ytresearch.events import StreamEvent, sse_comment, sse_retry
from ytresearch.repository import Store
from ytresearch.services.users import AuthUser
from ytresearch.services.videos import get_job


async def job_events(
    store: Store,
    user: AuthUser,
    job_id: uuid.UUID,
    *,
    poll_interval: float = 0.25,
    ping_interval: float = 15.0,
) -> AsyncIterator[str]:
    yield sse_retry(1000)
    seq, last, last_sent = 0, None, time.monotonic()
    while True:
        job = await asyncio.to_thread(get_job, store, user, job_id)
        state = (job.status, job.stage, tuple(job.stages_done), job.error_code)
        if state != last:
            last = state
            seq += 1
            data = job.model_dump(mode="json")
            if job.status == "done":
                yield StreamEvent("complete", data, id=seq).sse()
                return
            if job.status == "failed":
                yield StreamEvent(
                    "error",
                    {**data, "code": job.error_code, "message": job.error_message, "retryable": False},
                    id=seq,
                ).sse()
                return
            yield StreamEvent("stage", data, id=seq).sse()
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= ping_interval:
            last_sent = time.monotonic()
            yield sse_comment()
        await asyncio.sleep(poll_interval)
