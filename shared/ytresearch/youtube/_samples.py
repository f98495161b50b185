"""Reading the project-written sample videos in ``shared/samples`` (the offline local run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ytresearch.ports import TranscriptSegment
from ytresearch.youtube.urls import is_video_id


def default_samples_dir() -> Path:
    """The ``samples`` folder shipped inside the ``ytresearch`` package."""
    return Path(str(resources.files("ytresearch") / "samples"))


class SampleFileError(ValueError):
    """A sample file exists but does not have the documented shape."""


@dataclass(frozen=True)
class Sample:
    video_id: str
    title: str | None
    channel: str | None
    channel_url: str | None
    duration_seconds: int | None
    language: str
    is_generated: bool
    segments: list[TranscriptSegment]


def sample_ids(samples_dir: Path) -> list[str]:
    """The ids of every sample file in ``samples_dir``, sorted."""
    if not samples_dir.is_dir():
        return []
    return sorted(p.stem for p in samples_dir.glob("*.json") if is_video_id(p.stem))


def read_sample(samples_dir: Path, video_id: str) -> Sample | None:
    """The sample for ``video_id``, or None when there is none. Raises SampleFileError when the
    file is malformed. Only valid ids reach the filesystem, so no path can escape the folder."""
    if not is_video_id(video_id):
        return None
    path = samples_dir / f"{video_id}.json"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return _parse(json.loads(raw), video_id)
    except (ValueError, TypeError, KeyError) as exc:
        raise SampleFileError(f"sample file {path.name} is malformed: {exc}") from exc


def _parse(data: Any, video_id: str) -> Sample:
    if not isinstance(data, dict):
        raise ValueError("top level must be an object")
    if data.get("video_id") != video_id:
        raise ValueError(f"video_id must be {video_id!r}")
    segments = []
    for item in data["segments"]:
        if not isinstance(item["text"], str):
            raise ValueError("segment text must be a string")
        segments.append(
            TranscriptSegment(text=item["text"], start=float(item["start"]), duration=float(item["duration"]))
        )
    duration = data.get("duration_seconds")
    return Sample(
        video_id=video_id,
        title=_optional_str(data.get("title")),
        channel=_optional_str(data.get("channel")),
        channel_url=_optional_str(data.get("channel_url")),
        duration_seconds=int(duration) if duration is not None else None,
        language=str(data.get("language") or "en"),
        is_generated=bool(data.get("is_generated", False)),
        segments=segments,
    )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value
