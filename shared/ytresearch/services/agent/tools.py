"""The research agent's tools: their inputs (whose JSON Schemas the model is given) and what each
does to the caller's session, through the same services the HTTP routes use.

A tool never raises to the loop: a bad input or a failure becomes an error result the model reads
(``ToolOutcome.failed``). Everything the model reads back is data (``ToolOutcome.content``), never
an instruction: titles and transcripts come from strangers.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from typing import Any

from ytresearch.db.models import SessionVideo, Video
from ytresearch.errors import AppError, InvalidInputError, NotFoundError
from ytresearch.ports import DiscoveryError, VideoCandidate
from ytresearch.services import videos as video_service
from ytresearch.services.agent import artifacts
from ytresearch.services.agent.calls import AgentDeps, ToolCall, ToolOutcome, VideoBudget, limit_message
from ytresearch.services.agent.inputs import (
    AddPlaylistIn,
    AddVideoIn,
    OrganizeVideosIn,
    ReadTranscriptIn,
    RemoveVideoIn,
    SearchTranscriptsIn,
    SearchYouTubeIn,
)
from ytresearch.services.sessions import owned_session
from ytresearch.windows import timestamp
from ytresearch.youtube.urls import is_video_id, parse_video_id


def _session_videos(deps: AgentDeps, call: ToolCall) -> list[tuple[SessionVideo, Video]]:
    with deps.store.transaction() as repo:
        owned_session(repo, call.user, call.session_id)
        return repo.session_videos(call.session_id)


def _video_line(position: int, link: SessionVideo, video: Video) -> dict[str, Any]:
    return {
        "position": position,
        "video_id": video.id,
        "status": video.status,
        "title": video.title,
        "channel": video.channel,
        "duration_seconds": video.duration_seconds,
        "published_at": video.published_at.date().isoformat() if video.published_at else None,
        "group": link.group_label,
        "url": f"https://www.youtube.com/watch?v={video.id}",
    }


async def list_videos(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    linked = await asyncio.to_thread(_session_videos, deps, call)
    items = [_video_line(i, link, video) for i, (link, video) in enumerate(linked, start=1)]
    summary = f"{len(items)} video{'s' if len(items) != 1 else ''} in the session"
    return ToolOutcome(ok=True, summary=summary, data={"videos": items})


def _add_one(deps: AgentDeps, call: ToolCall, url: str) -> tuple[video_service.AddVideoResult, bool]:
    """Add through the same service as ``POST /videos``; says whether the video was new here."""
    video_id = parse_video_id(url)
    with deps.store.transaction() as repo:
        owned_session(repo, call.user, call.session_id)
        already = repo.is_linked(call.session_id, video_id)
    result = video_service.add_video(
        deps.store, deps.settings, deps.queue, call.user, call.session_id, url, None
    )
    return result, not already


async def _wait_for_ingest(deps: AgentDeps, call: ToolCall, video_id: str, job_id: uuid.UUID) -> str:
    """Follow the ingest job, telling each new stage, up to the wait bound; the video's status then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.ingest_wait
    seen: str | None = None
    while True:
        job = await asyncio.to_thread(video_service.get_job, deps.store, call.user, job_id)
        stage = job.status if job.status in ("done", "failed") else (job.stage or job.status)
        if stage != seen:
            seen = stage
            call.progress(
                stage, _stage_message(stage, video_id), {"video_id": video_id, "job_id": str(job_id)}
            )
        if job.status in ("done", "failed") or loop.time() >= deadline:
            return "ready" if job.status == "done" else ("failed" if job.status == "failed" else "processing")
        await asyncio.sleep(deps.poll_seconds)


def _stage_message(stage: str, video_id: str) -> str:
    return {
        "queued": f"{video_id}: queued for ingest",
        "running": f"{video_id}: ingest started",
        "done": f"{video_id}: ready",
        "failed": f"{video_id}: ingest failed",
    }.get(stage, f"{video_id}: {stage.replace('_', ' ')}")


async def add_video(deps: AgentDeps, call: ToolCall, budget: VideoBudget) -> ToolOutcome:
    assert isinstance(call.input, AddVideoIn)
    allowed, bound = budget.allowance()
    if allowed <= 0:
        refused = ToolOutcome.failed("VIDEO_LIMIT_REACHED", limit_message(bound), status="refused")
        refused.limit = bound
        return refused
    result, new = await asyncio.to_thread(_add_one, deps, call, call.input.url)
    video = result.body.video
    if new:
        budget.spend(1)
    undo = {"kind": "unlink_video", "video_id": video.id} if new else None
    status: str = video.status
    if result.body.job_id is not None and deps.ingest_wait > 0:
        status = await _wait_for_ingest(deps, call, video.id, result.body.job_id)
    brief = await asyncio.to_thread(
        video_service.get_video, deps.store, call.user, video.id, with_transcript=False
    )
    data = {
        "video_ids": [video.id] if new else [],
        "video": {
            "video_id": brief.id,
            "status": brief.status,
            "title": brief.title,
            "channel": brief.channel,
            "duration_seconds": brief.duration_seconds,
            # Ready within the wait: its summary, so the same reply can talk about it.
            "summary": brief.summary if brief.status == "ready" else None,
            "error": brief.error_message if brief.status == "failed" else None,
        },
        "already_in_session": not new,
    }
    label = f'"{brief.title}"' if brief.title else video.id
    if not new:
        summary = f"{label} was already in the session"
    elif status == "ready":
        summary = f"added {label}; it is ready"
    elif status == "failed":
        summary = f"added {label}, but its transcript could not be fetched ({brief.error_code or 'failed'})"
    else:
        summary = f"added {label}; it is still being ingested"
    return ToolOutcome(ok=True, summary=summary, data=data, undo=undo)


async def add_playlist(deps: AgentDeps, call: ToolCall, budget: VideoBudget) -> ToolOutcome:
    assert isinstance(call.input, AddPlaylistIn)
    limit = min(call.input.limit, 50)
    candidates = await asyncio.to_thread(deps.discovery.expand, call.input.url, limit)
    added: list[str] = []
    skipped: list[str] = []
    refused = 0
    bound = "videos_per_reply"
    for candidate in candidates:
        allowed, bound = budget.allowance()
        if allowed <= 0:
            refused = len(candidates) - len(added) - len(skipped)
            break
        result, new = await asyncio.to_thread(_add_one, deps, call, candidate.video_id)
        if new:
            budget.spend(1)
            added.append(result.body.video.id)
        else:
            skipped.append(result.body.video.id)
    summary = f"added {len(added)} of {len(candidates)} videos from the list"
    if skipped:
        summary += f" ({len(skipped)} already in the session)"
    if refused:
        summary += f"; {refused} not added: {limit_message(bound)}"
    data = {
        "video_ids": added,
        "already_in_session": skipped,
        "not_added": refused,
        "found": _candidates(candidates),
    }
    undo = {"kind": "unlink_videos", "video_ids": added} if added else None
    return ToolOutcome(ok=True, summary=summary, data=data, undo=undo, limit=bound if refused else None)


def _candidates(found: Sequence[VideoCandidate]) -> list[dict[str, Any]]:
    return [
        {
            "video_id": c.video_id,
            "title": c.title,
            "channel": c.channel,
            "duration_seconds": c.duration_seconds,
            "published_at": c.published_at.date().isoformat() if c.published_at else None,
            "url": c.url,
        }
        for c in found
    ]


def _resolve(linked: list[tuple[SessionVideo, Video]], ref: str) -> tuple[int, SessionVideo, Video]:
    """A video of the list by 1-based position, id or link."""
    if re.fullmatch(r"\d{1,4}", ref):
        position = int(ref)
        if not 1 <= position <= len(linked):
            raise NotFoundError(
                f"there is no video at position {position} (the session has {len(linked)})",
                code="VIDEO_NOT_FOUND",
            )
        return position - 1, *linked[position - 1]
    video_id = ref if is_video_id(ref) else parse_video_id(ref)
    for index, (link, video) in enumerate(linked):
        if video.id == video_id:
            return index, link, video
    raise NotFoundError(f"video {video_id} is not in this session", code="VIDEO_NOT_FOUND")


def _remove(deps: AgentDeps, call: ToolCall, ref: str) -> ToolOutcome:
    linked = _session_videos(deps, call)
    index, link, video = _resolve(linked, ref)
    undo = {
        "kind": "relink_video",
        "video_id": video.id,
        "language": link.language,
        "position": link.position if link.position is not None else index,
        "group": link.group_label,
    }
    video_service.remove_video(deps.store, call.user, call.session_id, video.id)
    label = f'"{video.title}"' if video.title else video.id
    return ToolOutcome(
        ok=True, summary=f"removed {label}", data={"video_id": video.id, "position": index + 1}, undo=undo
    )


async def remove_video(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, RemoveVideoIn)
    return await asyncio.to_thread(_remove, deps, call, call.input.video)


async def search_youtube(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, SearchYouTubeIn)
    found = await asyncio.to_thread(deps.discovery.search, call.input.query, call.input.max_results)
    summary = f"found {len(found)} video{'s' if len(found) != 1 else ''} for {call.input.query!r}"
    return ToolOutcome(
        ok=True, summary=summary, data={"query": call.input.query, "results": _candidates(found)}
    )


def _ordered(
    linked: list[tuple[SessionVideo, Video]], spec: OrganizeVideosIn
) -> list[tuple[str, str | None]]:
    videos = [video for _, video in linked]
    ids = {v.id for v in videos}
    if spec.order is not None or spec.groups is not None:
        wanted: list[tuple[str, str | None]] = (
            [(vid, None) for vid in spec.order or []]
            if spec.groups is None
            else [(vid, g.label) for g in spec.groups for vid in g.video_ids]
        )
        unknown = [vid for vid, _ in wanted if vid not in ids]
        if unknown:
            raise InvalidInputError(
                f"not in this session: {', '.join(unknown[:5])}", code="VIDEO_NOT_IN_SESSION"
            )
        seen: set[str] = set()
        order: list[tuple[str, str | None]] = []
        for vid, label in wanted:
            if vid not in seen:
                seen.add(vid)
                order.append((vid, label))
        rest_label = "Other" if spec.groups is not None else None
        return order + [(v.id, rest_label) for v in videos if v.id not in seen]
    if spec.strategy == "date":
        return [
            (v.id, None)
            for v in sorted(videos, key=lambda v: (v.published_at is None, v.published_at or 0, v.id))
        ]
    if spec.strategy == "duration":
        return [
            (v.id, None)
            for v in sorted(videos, key=lambda v: (v.duration_seconds is None, v.duration_seconds or 0, v.id))
        ]
    # channel: grouped under the channel's name, channels alphabetically, videos by date inside
    by_channel = sorted(
        videos,
        key=lambda v: ((v.channel or "~").casefold(), v.published_at is None, v.published_at or 0, v.id),
    )
    return [(v.id, v.channel or "Unknown channel") for v in by_channel]


def _organize(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, OrganizeVideosIn)
    with deps.store.transaction() as repo:
        owned_session(repo, call.user, call.session_id)
        linked = repo.session_videos(call.session_id)
        before = [
            {"video_id": vid, "position": position, "group": group}
            for vid, position, group in repo.video_order(call.session_id)
        ]
        order = _ordered(linked, call.input)
        repo.set_video_order(call.session_id, order)
        repo.touch_session(call.session_id)
    how = call.input.strategy or "the order given"
    groups = sorted({label for _, label in order if label})
    summary = f"ordered {len(order)} videos by {how}" + (f" in {len(groups)} groups" if groups else "")
    data = {"order": [{"video_id": vid, "group": label} for vid, label in order]}
    return ToolOutcome(ok=True, summary=summary, data=data, undo={"kind": "restore_order", "order": before})


async def organize_videos(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    return await asyncio.to_thread(_organize, deps, call)


def _search_transcripts(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, SearchTranscriptsIn)
    linked = _session_videos(deps, call)
    titles = {video.id: video.title for _, video in linked}
    wanted = call.input.video_ids or list(titles)
    unknown = [vid for vid in wanted if vid not in titles]
    if unknown:
        raise InvalidInputError(f"not in this session: {', '.join(unknown[:5])}", code="VIDEO_NOT_IN_SESSION")
    with deps.store.transaction() as repo:
        hits = repo.search_windows(wanted, call.input.query, call.input.max_results)
        found = [
            _passage(w.video_id, titles.get(w.video_id), w.start_seconds, w.end_seconds, w.text)
            for w, _ in hits
        ]
    summary = f"found {len(found)} passage{'s' if len(found) != 1 else ''} for {call.input.query!r}"
    return ToolOutcome(ok=True, summary=summary, data={"query": call.input.query, "passages": found})


def _passage(video_id: str, title: str | None, start: float, end: float, text: str) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "title": title,
        "start": start,
        "end": end,
        "url": f"https://www.youtube.com/watch?v={video_id}&t={int(start)}",
        "text": text,
    }


async def search_transcripts(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    return await asyncio.to_thread(_search_transcripts, deps, call)


def _read_transcript(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    assert isinstance(call.input, ReadTranscriptIn)
    _, _, video = _resolve(_session_videos(deps, call), call.input.video)
    start, end = call.input.start, call.input.end
    lines = [
        f"[{timestamp(seg['start'])}] {seg['text']}"
        for seg in video.transcript_segments or []
        if start <= float(seg["start"]) < end
    ]
    summary = (
        f"{len(lines)} caption lines of {video.title or video.id} from {timestamp(start)} to {timestamp(end)}"
    )
    return ToolOutcome(
        ok=True, summary=summary, data=_passage(video.id, video.title, start, end, "\n".join(lines))
    )


async def read_transcript(deps: AgentDeps, call: ToolCall) -> ToolOutcome:
    return await asyncio.to_thread(_read_transcript, deps, call)


async def execute(deps: AgentDeps, call: ToolCall, budget: VideoBudget) -> ToolOutcome:
    """Run one call; every failure becomes an error result (a bug is logged by the caller)."""
    try:
        match call.name:
            case "list_videos":
                return await list_videos(deps, call)
            case "add_video":
                return await add_video(deps, call, budget)
            case "add_playlist":
                return await add_playlist(deps, call, budget)
            case "remove_video":
                return await remove_video(deps, call)
            case "search_youtube":
                return await search_youtube(deps, call)
            case "organize_videos":
                return await organize_videos(deps, call)
            case "search_transcripts":
                return await search_transcripts(deps, call)
            case "read_transcript":
                return await read_transcript(deps, call)
            case "create_artifact":
                return await artifacts.create_artifact(deps, call)
            case "revise_artifact":
                return await artifacts.revise_artifact(deps, call)
        return ToolOutcome.failed("UNKNOWN_TOOL", f"there is no tool named {call.name!r}")
    except (AppError, DiscoveryError) as exc:
        return ToolOutcome.failed(exc.code, exc.message)
