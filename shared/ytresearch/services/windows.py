"""The transcript index's backfill: windows for the ready videos ingested before the index existed
(ingest builds them for every new video). Run after every migration (``upgrade_to_head``) and by
``ytr-admin backfill-windows``."""

from __future__ import annotations

import logging
import time

from ytresearch.repository import Store
from ytresearch.windows import transcript_windows

log = logging.getLogger(__name__)


def backfill_windows(store: Store, batch: int = 50, *, time_limit: float | None = None) -> int:
    """Build the windows of every ready video that has a transcript and none; returns how many
    videos were indexed. Idempotent, and one query when nothing is missing. One transaction per
    video, so a concurrent run or ingest costs nothing but the repeated work; a video that fails
    is logged and skipped. With ``time_limit`` (seconds) no video is started after it: the rest
    waits for the next run."""
    started = time.monotonic()
    indexed, after = 0, None
    while True:
        with store.transaction() as repo:
            video_ids = repo.videos_without_windows(batch, after=after)
        for video_id in video_ids:
            if time_limit is not None and time.monotonic() - started > time_limit:
                log.warning("transcript index backfill stopped after %.0f s; %d indexed", time_limit, indexed)
                return indexed
            try:
                indexed += _index_video(store, video_id)
            except Exception:
                log.exception("could not build the transcript windows of video %s", video_id)
        if len(video_ids) < batch:
            break
        after = video_ids[-1]
    if indexed:
        log.info("transcript index backfill: %d videos indexed", indexed)
    return indexed


def _index_video(store: Store, video_id: str) -> int:
    """1 when the video's windows were built here, 0 when it had them already or has none."""
    with store.transaction() as repo:
        video = repo.get_video(video_id, for_update=True)  # one of two concurrent runs waits
        if video is None or repo.count_windows(video_id):
            return 0
        windows = transcript_windows(video.transcript_segments or [])
        repo.replace_windows(video_id, video.transcript_language, windows)
        return 1 if windows else 0
