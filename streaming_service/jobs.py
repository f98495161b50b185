"""Ingest progress as SSE (``GET /v1/jobs/{id}/events``), told whole to whoever comes late.

The job's record (``ytresearch.services.ingest_progress``) becomes events whose ids never change:
1 ``stage`` when the job was queued, 2 to 6 one ``stage`` per stage done (in order, each with its
time, message and findings, and what runs next), 7 the end (``complete`` or ``error``). A
subscriber gets every event the record holds so far, then the new ones as the job row changes
(polled), then the end; ``Last-Event-ID`` resumes after any of them (after the end: the end again).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ytresearch.events import StreamEvent, sse_comment, sse_retry
from ytresearch.repository import Store
from ytresearch.services.users import AuthUser
from ytresearch.services.videos import get_job
from ytresearch.views import INGEST_STAGES, JobOut

QUEUED_ID = 1
END_ID = len(INGEST_STAGES) + 2  # 7


def stage_id(stage: str) -> int:
    return INGEST_STAGES.index(stage) + 2


def progress_events(job: JobOut) -> list[StreamEvent]:
    """Everything the job's record can tell now, in id order."""
    base = {"id": str(job.id), "video_id": job.video_id, "session_id": str(job.session_id or "") or None}
    events = [
        StreamEvent(
            "stage",
            {
                **base,
                "status": "queued",
                "stage": None,
                "done": None,
                "stages": job.stages,
                "stages_done": [],
                "at": job.created_at.isoformat(),
                "message": f"{job.video_id}: queued for ingest",
                "details": {},
            },
            id=QUEUED_ID,
        )
    ]
    finished: list[str] = []
    for step in job.progress:
        finished.append(step.stage)
        later = [s for s in INGEST_STAGES if s not in finished]
        running = job.stage if step is job.progress[-1] else (later[0] if later else None)
        events.append(
            StreamEvent(
                "stage",
                {
                    **base,
                    "status": "running" if step is not job.progress[-1] else _live_status(job),
                    "stage": running,
                    "done": step.stage,
                    "stages": job.stages,
                    "stages_done": list(finished),
                    "at": step.at.isoformat() if step.at else None,
                    "message": step.message,
                    "details": step.details,
                },
                id=stage_id(step.stage),
            )
        )
    if job.status in ("done", "failed"):
        events.append(_end(job))
    return events


def _live_status(job: JobOut) -> str:
    return "running" if job.status in ("done", "failed") else job.status


def _end(job: JobOut) -> StreamEvent:
    data: dict[str, Any] = job.model_dump(mode="json")
    if job.status == "done":
        return StreamEvent("complete", data, id=END_ID)
    failure = {"code": job.error_code, "message": job.error_message, "retryable": False}
    return StreamEvent("error", {**data, **failure}, id=END_ID)


async def job_events(
    store: Store,
    user: AuthUser,
    job_id: uuid.UUID,
    *,
    after: int = 0,
    poll_interval: float = 0.25,
    ping_interval: float = 15.0,
) -> AsyncIterator[str]:
    yield sse_retry(1000)
    # A reconnect after the end gets the end again (as a reply's stream does).
    sent, last_sent = min(after, END_ID - 1), time.monotonic()
    while True:
        job = await asyncio.to_thread(get_job, store, user, job_id)
        for event in progress_events(job):
            if event.id is not None and event.id > sent:
                sent = event.id
                last_sent = time.monotonic()
                yield event.sse()
                if event.terminal:
                    return
        if time.monotonic() - last_sent >= ping_interval:
            last_sent = time.monotonic()
            yield sse_comment()
        await asyncio.sleep(poll_interval)
