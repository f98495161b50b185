"""The ingest use case: transcript -> metadata -> summary for one queued job.

Idempotent under redelivery: a ready video finishes its jobs without work, and a lease on the
video row keeps two deliveries of the same video from working at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from ytresearch.config import Settings
from ytresearch.db.models import IngestJob, Video, utcnow
from ytresearch.errors import AppError
from ytresearch.observability.metrics import INGEST_DURATION, INGEST_FAILURES, Metrics, NullMetrics
from ytresearch.ports import (
    ChatModel,
    Completion,
    IngestMessage,
    MetadataSource,
    ModelError,
    Transcript,
    TranscriptError,
    TranscriptSource,
    VideoMetadata,
)
from ytresearch.repository import Repository, Store
from ytresearch.services.ingest_progress import StageNote, enter_stage, finish_stages
from ytresearch.summaries import summarize_transcript
from ytresearch.windows import transcript_windows

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)

_T = TypeVar("_T")

# Worst cases behind StageBudget. youtube-transcript-api makes up to four requests per attempt
# (watch page, its consent-cookie retry, innertube, captions), each bounded by the HTTP timeout;
# metadata is oEmbed plus the Data API when a key is set.
TRANSCRIPT_REQUESTS_PER_ATTEMPT = 4
TRANSCRIPT_BACKOFF_BASE, TRANSCRIPT_BACKOFF_MAX = 0.5, 4.0  # youtube.retry's defaults
# Writing the outcome (the video row, or releasing the lease): one connection (10 s timeout) and
# a short transaction.
STORE_RESERVE_SECONDS = 10.0


class IngestRetryError(AppError):
    """A transient failure: the message must be delivered again (SQS retries, then the DLQ)."""

    code = "INGEST_RETRY"
    retryable = True


class IngestDeferredError(IngestRetryError):
    """Not started: the invocation has too little time left to finish the message. The queue
    delivers it again (to an invocation with its whole timeout ahead)."""

    code = "INGEST_DEFERRED"


class IngestDeadlineError(AppError):
    """Stopped between stages, or the summary cut short: the invocation ran out of time. Nothing
    is kept; the lease is released and the message is retried like any transient failure."""

    code = "INGEST_DEADLINE"
    retryable = True


class PoisonMessageError(AppError):
    """The message body is not an ingest message; it can never succeed."""

    code = "INVALID_INGEST_MESSAGE"


@dataclass(frozen=True)
class IngestDeps:
    store: Store
    settings: Settings
    transcripts: TranscriptSource
    metadata: MetadataSource
    model: ChatModel
    metrics: Metrics = field(default_factory=NullMetrics)


@dataclass(frozen=True)
class Deadline:
    """The time the current invocation has left (a Lambda's remaining time), read when asked."""

    remaining_seconds: Callable[[], float]

    def remaining(self) -> float:
        return self.remaining_seconds()


@dataclass(frozen=True)
class StageBudget:
    """Worst-case seconds of each ingest stage under the given settings: a stage starts only when
    it and every stage after it can still finish. The summary counts one model attempt: its
    retries run only while time is left (ingest_video cuts it off with ``store`` seconds left)."""

    transcript: float
    metadata: float
    model_attempt: float
    store: float = STORE_RESERVE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> StageBudget:
        attempts = settings.youtube_fetch_attempts
        backoff = sum(
            min(TRANSCRIPT_BACKOFF_MAX, TRANSCRIPT_BACKOFF_BASE * 2**retry) for retry in range(attempts - 1)
        )
        metadata_requests = 2 if settings.youtube_data_api_key is not None else 1
        return cls(
            transcript=attempts * TRANSCRIPT_REQUESTS_PER_ATTEMPT * settings.http_timeout_seconds + backoff,
            metadata=metadata_requests * settings.http_timeout_seconds,
            model_attempt=settings.llm_timeout_seconds,
        )

    @property
    def message(self) -> float:
        """To start a message: every stage."""
        return self.transcript + self.metadata + self.model_attempt + self.store

    @property
    def from_metadata(self) -> float:
        return self.metadata + self.model_attempt + self.store

    @property
    def from_summary(self) -> float:
        return self.model_attempt + self.store


def parse_message(body: object) -> IngestMessage:
    if not isinstance(body, dict):
        raise PoisonMessageError("ingest message must be a JSON object")
    try:
        uuid.UUID(str(body["job_id"]))
        video_id = str(body["video_id"])
    except (KeyError, ValueError) as exc:
        raise PoisonMessageError(f"ingest message is missing or has a bad field: {exc}") from None
    if len(video_id) != 11:
        raise PoisonMessageError("ingest message has a malformed video_id")
    language = body.get("language")
    return IngestMessage(
        job_id=str(body["job_id"]), video_id=video_id, language=str(language) if language else None
    )


def ingest_video(
    deps: IngestDeps,
    message: IngestMessage,
    *,
    receive_count: int = 1,
    deadline: Deadline | None = None,
    may_defer_start: bool = True,
) -> str:
    """Run one ingest job. Returns the job's final status ("done" or "failed"); raises
    IngestRetryError for transient failures so the queue delivers the message again.

    With a ``deadline``, work that cannot finish in time is not started: the message is not
    begun (IngestDeferredError) when the whole of it may not fit, a stage is not begun when it and
    the stages after it may not fit, and the summary is cut off where only the time to store is
    left (both IngestDeadlineError, handled as a transient failure: the lease is released).
    ``may_defer_start=False`` for an invocation's first message, which handing back could not
    give more time."""
    store, settings = deps.store, deps.settings
    budget = StageBudget.from_settings(settings)
    job_id = uuid.UUID(message.job_id)
    with store.transaction() as repo:
        job = repo.get_job(job_id)
        if job is None:  # the user (and so the job) was deleted meanwhile: nothing to do
            log.info("ingest job %s no longer exists; dropping message", job_id)
            return "gone"
        video = repo.get_or_add_video(message.video_id)
        if video.status == "ready":
            _finish_jobs(repo, message.video_id, "done", extra_job=job)
            return "done"
        if deadline is not None and may_defer_start and deadline.remaining() < budget.message:
            deps.metrics.count(INGEST_FAILURES, code=IngestDeferredError.code)
            raise IngestDeferredError(
                f"{deadline.remaining():.0f} s left, an ingest may need {budget.message:.0f} s: "
                "left for the next delivery"
            )
        if not repo.claim_video(message.video_id, utcnow() + LEASE):
            raise IngestRetryError(f"video {message.video_id} is being ingested by another worker")
        job.attempts += 1
    started = time.monotonic()
    languages = _languages(message.language, settings.transcript_languages)
    try:
        enter_stage(store, message.video_id, "validating")
        enter_stage(
            store, message.video_id, "fetching_transcript", StageNote(f"{message.video_id} is a video id")
        )
        transcript = deps.transcripts.fetch(message.video_id, languages)
        if len(transcript.text) > settings.max_transcript_chars:
            raise TranscriptError(
                f"the transcript is longer than {settings.max_transcript_chars} characters",
                code="TRANSCRIPT_TOO_LARGE",
                retryable=False,
            )
        _ensure_time(deadline, budget.from_metadata, "fetching_metadata")
        enter_stage(store, message.video_id, "fetching_metadata", transcript_note(transcript))
        meta = deps.metadata.fetch(message.video_id)
        _ensure_time(deadline, budget.from_summary, "summarising")
        enter_stage(store, message.video_id, "summarising", metadata_note(meta))
        completion = asyncio.run(
            _within(
                None if deadline is None else deadline.remaining() - budget.store,
                summarize_transcript(
                    deps.model,
                    title=meta.title,
                    transcript_text=transcript.text,
                    context_budget_tokens=settings.context_budget_tokens,
                    max_tokens=settings.summary_max_tokens,
                ),
            )
        )
        # No check before storing: the summary stopped with budget.store left for exactly this.
        enter_stage(store, message.video_id, "storing", summary_note(completion))
        with store.transaction() as repo:
            video = _video(repo, message.video_id)
            video.title, video.channel, video.channel_url = (
                meta.title,
                meta.channel,
                meta.channel_url,
            )
            video.thumbnail_url = meta.thumbnail_url
            video.duration_seconds, video.published_at = meta.duration_seconds, meta.published_at
            video.transcript_language = transcript.language
            video.transcript_is_generated = transcript.is_generated
            video.transcript_segments = [s.to_json() for s in transcript.segments]
            video.transcript_text = transcript.text
            windows = transcript_windows(video.transcript_segments)  # the transcript index
            repo.replace_windows(message.video_id, transcript.language, windows)
            video.summary, video.summary_model = completion.text, completion.model
            video.summary_input_tokens = completion.usage.input_tokens
            video.summary_output_tokens = completion.usage.output_tokens
            video.status, video.error_code, video.error_message = "ready", None, None
            video.claimed_until = None
            stored = StageNote(
                f"saved; {len(windows)} passages indexed for search", {"windows": len(windows)}
            )
            _finish_jobs(repo, message.video_id, "done", last=stored)
        # Counts only: transcript text never goes to the logs.
        log.info("ingested video %s (%d segments)", message.video_id, len(transcript.segments))
        _measure(deps, started, "done")
        return "done"
    except (TranscriptError, ModelError, IngestDeadlineError) as exc:
        final = not exc.retryable or receive_count >= settings.ingest_max_receives
        _record_failure(store, message.video_id, exc, final=final)
        _measure(deps, started, "failed" if final else "retry", failure=exc.code)
        if not final:
            raise IngestRetryError(f"{exc.code}: {exc.message}") from exc
        if exc.retryable:  # out of attempts: let the queue move it to the DLQ for operators
            raise IngestRetryError(f"{exc.code}: giving up after {receive_count} attempts") from exc
        return "failed"
    except Exception as exc:
        final = receive_count >= settings.ingest_max_receives
        log.exception("ingest of %s failed unexpectedly", message.video_id)
        unexpected = AppError("ingest failed unexpectedly", code="INGEST_FAILED")
        _record_failure(store, message.video_id, unexpected, final=final)
        _measure(deps, started, "failed" if final else "retry", failure=unexpected.code)
        raise IngestRetryError(f"unexpected ingest error: {type(exc).__name__}") from exc


def _ensure_time(deadline: Deadline | None, needed: float, stage: str) -> None:
    if deadline is not None and (left := deadline.remaining()) < needed:
        raise IngestDeadlineError(f"{left:.0f} s left before {stage}, which may need {needed:.0f} s")


async def _within(seconds: float | None, work: Awaitable[_T]) -> _T:
    """``work``, cancelled (IngestDeadlineError) after ``seconds``: bounds the model's own
    timeouts and retries by the time the invocation has left."""
    if seconds is None:
        return await work
    limit = asyncio.timeout(max(0.0, seconds))
    try:
        async with limit:
            return await work
    except TimeoutError:
        if limit.expired():
            raise IngestDeadlineError(f"the summary did not finish in the {seconds:.0f} s left") from None
        raise


def _measure(deps: IngestDeps, started: float, outcome: str, *, failure: str | None = None) -> None:
    """IngestDuration of one attempt that did work (by outcome), and IngestFailures by code."""
    elapsed_ms = (time.monotonic() - started) * 1000
    deps.metrics.milliseconds(INGEST_DURATION, elapsed_ms, outcome=outcome)
    if failure is not None:
        deps.metrics.count(INGEST_FAILURES, code=failure)


def _languages(requested: str | None, defaults: Sequence[str]) -> list[str]:
    ordered = [requested, *defaults] if requested else list(defaults)
    return list(dict.fromkeys(lang for lang in ordered if lang))


def _video(repo: Repository, video_id: str) -> Video:
    video = repo.get_video(video_id)
    assert video is not None
    return video


def transcript_note(transcript: Transcript) -> StageNote:
    kind = "auto-generated" if transcript.is_generated else "by a person"
    lines, chars = len(transcript.segments), len(transcript.text)
    return StageNote(
        f"transcript in {transcript.language} ({kind}): {lines:,} lines, {chars:,} characters",
        {
            "language": transcript.language,
            "is_generated": transcript.is_generated,
            "segments": lines,
            "characters": chars,
            "last_second": round(transcript.segments[-1].start) if transcript.segments else 0,
        },
    )


def metadata_note(meta: VideoMetadata) -> StageNote:
    about = f'"{meta.title}"' if meta.title else "no title found"
    if meta.channel:
        about += f" by {meta.channel}"
    if meta.duration_seconds:
        about += f", {meta.duration_seconds // 60}:{meta.duration_seconds % 60:02d}"
    return StageNote(
        f"details: {about}",
        {"title": meta.title, "channel": meta.channel, "duration_seconds": meta.duration_seconds},
    )


def summary_note(completion: Completion) -> StageNote:
    usage = completion.usage
    return StageNote(
        f"summary written: {usage.output_tokens:,} tokens from {usage.input_tokens:,}",
        {
            "model": completion.model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "characters": len(completion.text),
        },
    )


def _finish_jobs(
    repo: Repository,
    video_id: str,
    status: str,
    *,
    extra_job: IngestJob | None = None,
    error: AppError | None = None,
    last: StageNote | None = None,
) -> None:
    now = utcnow()
    jobs = repo.open_jobs_for_video(video_id)
    if extra_job is not None and extra_job not in jobs and extra_job.status in ("queued", "running"):
        jobs.append(extra_job)
    finish_stages(repo, video_id, jobs, done=status == "done", last=last)
    for job in jobs:
        job.status, job.finished_at = status, now
        if error is not None:
            job.error_code, job.error_message = error.code, error.message
    # Every session holding the video is told (its WebSockets and session event streams).
    repo.add_video_ready_changes(video_id, "ready" if status == "done" else "failed")


def _record_failure(store: Store, video_id: str, exc: AppError, *, final: bool) -> None:
    with store.transaction() as repo:
        video = _video(repo, video_id)
        video.claimed_until = None  # release the lease so a retry can start at once
        if final:
            video.status, video.error_code, video.error_message = "failed", exc.code, exc.message
            _finish_jobs(repo, video_id, "failed", error=exc)
        else:
            video.status = "pending"
            for job in repo.open_jobs_for_video(video_id):
                job.error_code, job.error_message = exc.code, f"retrying: {exc.message}"
    log.warning("ingest of %s failed (%s, final=%s): %s", video_id, exc.code, final, exc.message)
