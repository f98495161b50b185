"""`ytr sessions`, `ytr videos` and `ytr jobs`: the research sessions, their videos and the ingest
jobs that fetch and summarise them; `ytr export`: a session as a Markdown file."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ytr.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError
from ytr.render import Output

if TYPE_CHECKING:
    from ytr.client import ApiClient


# ---------------------------------------------------------------------- sessions


def cmd_sessions_create(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    session = client.create_session(args.title)
    return out.result(session, f"created session {session['id']} ({session['title']})")


def cmd_sessions_list(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import session_line, table

    page = client.list_sessions(args.limit, args.cursor)
    if out.json_mode:
        out.json(page)
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line(
            "no sessions"
            + (" on this page" if args.cursor else " yet: create one with `ytr sessions create`")
        )
    else:
        table(out, ("SESSION", "CREATED", "TITLE"), [session_line(s) for s in items])
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"more: ytr sessions list --cursor {page['next_cursor']}")
    return EXIT_OK


def cmd_sessions_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_session

    session = client.get_session(args.session_id)
    return out.result(session, lambda: render_session(out, session))


def cmd_sessions_delete(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    client.delete_session(args.session_id)
    return out.result({"deleted": args.session_id}, f"deleted session {args.session_id}")


def cmd_export(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    target = Path(args.output) if args.output and args.output != "-" else None
    if target is not None and not target.is_dir() and target.exists() and not args.force:
        raise _exists(target)  # before downloading anything
    suggested, document = client.export_session(args.session_id)
    if args.output == "-":
        out.write(document)
        return EXIT_OK
    name = _export_name(suggested, args.session_id)
    path = target / name if target is not None and target.is_dir() else target or Path(name)
    try:
        with path.open("w" if args.force else "x", encoding="utf-8", newline="") as file:
            file.write(document)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise CliError("WRITE_FAILED", f"cannot write {path}: {exc.strerror or exc}", EXIT_ERROR) from None
    size = len(document.encode("utf-8"))
    return out.result(
        {"session_id": args.session_id, "path": str(path), "bytes": size},
        f"exported session {args.session_id} to {path} ({size} bytes)",
    )


def _export_name(suggested: str | None, session_id: str) -> str:
    """The server's file name, reduced to a plain name in the current folder (no path, no leading
    dot, only letters, digits, dots, dashes and underscores)."""
    name = (suggested or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-")[:120]
    return name or f"session-{re.sub(r'[^A-Za-z0-9-]', '', session_id)[:8]}.md"


def _exists(path: Path) -> CliError:
    return CliError("FILE_EXISTS", f"{path} exists: pass --force to overwrite it", EXIT_ERROR)


# ---------------------------------------------------------------------- videos and jobs


def _video_id(text: str) -> str:
    """A bare id as is; the id inside a watch, short, Shorts, embed or live link. (Adding a video
    sends the URL itself: the server's parser is the authority on what it accepts.)"""
    text = text.strip()
    if _VIDEO_ID.fullmatch(text):
        return text
    found = _VIDEO_ID_IN_URL.search(text)
    if found is None:
        raise CliError("INVALID_VIDEO_URL", f"no YouTube video id in {text[:100]!r}", EXIT_USAGE)
    return found.group(1)


_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_VIDEO_ID_IN_URL = re.compile(
    r"(?:[?&]v=|youtu\.be/|/(?:shorts|embed|live|v|e)/)([A-Za-z0-9_-]{11})(?![A-Za-z0-9_-])"
)


def cmd_videos_add(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import IngestProgress, render_video

    status, body = client.add_video(args.session_id, args.url, args.language)
    video, job_id = body.get("video") or {}, body.get("job_id")
    video_id = str(video.get("id"))
    if status == 200 or not job_id:
        full = client.get_video(video_id)
        return out.result(
            {"job_id": job_id, "job": body.get("job"), "video": full}, lambda: render_video(out, full)
        )
    if args.no_follow:
        return out.result(body, f"queued {video_id} (job {job_id}); follow with: ytr jobs show {job_id}")

    progress = IngestProgress(out, video_id, enabled=not out.json_mode)
    job: dict[str, Any] = body.get("job") or {}
    try:
        for event in client.events(f"/v1/jobs/{job_id}/events", terminal=("complete", "error")):
            data = event.json()
            if not isinstance(data, dict):
                continue
            job = data
            progress.update(data)
            if event.event == "error":
                progress.finish()
                code = str(data.get("code") or data.get("error_code") or "INGEST_FAILED")
                message = str(data.get("message") or data.get("error_message") or "the ingest failed")
                raise CliError(code, f"{video_id}: {message}", EXIT_ERROR)  # the ingest failed for good
            if event.event == "complete":
                break
    except KeyboardInterrupt:
        progress.finish()
        out.note(f"stopped following; the video keeps ingesting: ytr jobs show {job_id}")
        return EXIT_CANCELLED
    progress.finish()
    full = client.get_video(video_id)
    if out.json_mode:
        out.json({"job_id": job_id, "job": job, "video": full})
    else:
        out.line()
        render_video(out, full)
    return EXIT_OK


def cmd_videos_list(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import video_rows

    videos = client.list_videos(args.session_id)
    if out.json_mode:
        out.json(videos)
    elif not videos:
        out.line("no videos yet: add one with `ytr videos add SESSION_ID URL`")
    else:
        video_rows(out, videos)
    return EXIT_OK


def cmd_videos_remove(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    video_id = _video_id(args.video_id)
    client.remove_video(args.session_id, video_id)
    return out.result(
        {"removed": video_id, "session_id": args.session_id},
        f"removed {video_id} from session {args.session_id}",
    )


def cmd_videos_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_video

    video = client.get_video(_video_id(args.video_id), transcript=args.transcript)
    return out.result(video, lambda: render_video(out, video, transcript=args.transcript))


def cmd_jobs_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_job

    job = client.get_job(args.job_id)
    return out.result(job, lambda: render_job(out, job))
