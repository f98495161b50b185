"""How an ingest job records its progress, so a progress stream can tell it whole to a subscriber
that comes late: each stage done is kept on the job (``stages_done``) with its time, a human
message and what it found (transcript language and length, segment count, summary tokens ...).

``_stage`` moves a video's open jobs to their next stage, recording the one before it as done
with its note; ``finish_stages`` ends them. The progress stream (``streaming_service.jobs``) turns
the record into events with ids that never change: 1 when the job was queued, 2 to 6 for the
five stages done, 7 for the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ytresearch.db.models import IngestJob, utcnow
from ytresearch.repository import Repository, Store
from ytresearch.views import INGEST_STAGES

# What each stage done says when it has nothing more to tell.
DONE_MESSAGES = {
    "validating": "checked the video id",
    "fetching_transcript": "fetched the transcript",
    "fetching_metadata": "fetched the video's details",
    "summarising": "wrote the summary",
    "storing": "saved the video",
}


@dataclass(frozen=True)
class StageNote:
    """What a stage found, for the person following it: a message and the figures behind it."""

    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _entry(stage: str, note: StageNote | None, at: str) -> dict[str, Any]:
    note = note or StageNote(DONE_MESSAGES.get(stage, stage.replace("_", " ")))
    return {"stage": stage, "at": at, "message": note.message, "details": note.details}


def enter_stage(store: Store, video_id: str, stage: str, finished: StageNote | None = None) -> None:
    """Move every open job of the video to ``stage``, recording the stage it was in as done with
    ``finished``, committed at once so progress streams see it."""
    now = utcnow().isoformat()
    with store.transaction() as repo:
        for job in repo.open_jobs_for_video(video_id):
            done = [s for s in job.stages_done or [] if s["stage"] != stage]
            if job.stage and job.stage != stage and all(s["stage"] != job.stage for s in done):
                done.append(_entry(job.stage, finished, now))
            job.stages_done = done
            job.status, job.stage = "running", stage


def finish_stages(
    repo: Repository, video_id: str, jobs: list[IngestJob], *, done: bool, last: StageNote | None = None
) -> None:
    """End the jobs' progress: when ``done``, every stage not recorded yet is done now (the stage
    they were in with ``last``); a failed job keeps the stages it finished."""
    now = utcnow().isoformat()
    for job in jobs:
        recorded = list(job.stages_done or [])
        if done:
            seen = {s["stage"] for s in recorded}
            recorded += [
                _entry(s, last if s == job.stage else None, now) for s in INGEST_STAGES if s not in seen
            ]
            job.stage = None
        job.stages_done = recorded
