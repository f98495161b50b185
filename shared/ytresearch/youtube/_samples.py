"""Reading sample videos (the offline local run): the project-written ones bundled in
``ytresearch/samples``, and a person's own in the folder ``YTR_SAMPLES_DIR`` names, which are read
first (a file there with the same id wins)."""

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


def sample_folders(samples_dir: Path | None) -> tuple[Path, ...]:
    """Where samples are looked for, first match wins: ``samples_dir`` (a person's own), then the
    bundled folder. Just the bundled folder when ``samples_dir`` is None or is that folder."""
    bundled = default_samples_dir()
    if samples_dir is None or samples_dir.resolve() == bundled.resolve():
        return (bundled,)
    return (samples_dir, bundled)


def find_sample(folders: tuple[Path, ...], video_id: str) -> Sample | None:
    """The sample for ``video_id`` from the first of ``folders`` that has a file for it, or None.
    A malformed file raises SampleFileError, even when a later folder has the id: the person's
    own file is what they meant, and they need to hear that it is broken."""
    for folder in folders:
        sample = read_sample(folder, video_id)
        if sample is not None:
            return sample
    return None


def all_sample_ids(folders: tuple[Path, ...]) -> list[str]:
    """The ids with a sample file in any of ``folders``, sorted, each once."""
    return sorted({video_id for folder in folders for video_id in sample_ids(folder)})


def sample_ids(samples_dir: Path) -> list[str]:
    """The ids of every sample file in ``samples_dir``, sorted."""
    if not samples_dir.is_dir():
        return []
    return sorted(p.stem for p in samples_dir.glob("*.json") if is_video_id(p.stem))


def read_sample(samples_dir: Path, video_id: str) -> Sample | None:
    """The sample for ``video_id``, or None when there is none. Raises SampleFileError when the
    file is malformed or unreadable. Only valid ids reach the filesystem, so no path can escape
    the folder."""
    if not is_video_id(video_id):
        return None
    path = samples_dir / f"{video_id}.json"
    try:
        return _parse(json.loads(path.read_text(encoding="utf-8")), video_id)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except OSError as exc:
        problem = f"it cannot be read ({exc.strerror or type(exc).__name__})"
    except KeyError as exc:
        problem = f"a required field is missing: {exc}"
    except (ValueError, TypeError) as exc:
        problem = str(exc)
    # The folder too: with YTR_SAMPLES_DIR there are two, and the person must find the file.
    raise SampleFileError(
        f"sample file {path.name} in {samples_dir} is malformed: {problem} "
        "(the expected shape: ytresearch/samples/README.md)"
    )


def _parse(data: Any, video_id: str) -> Sample:
    if not isinstance(data, dict):
        raise ValueError("top level must be an object")
    if data.get("video_id") != video_id:
        raise ValueError(f"video_id must be {video_id!r}")
    if not isinstance(data["segments"], list):
        raise ValueError("segments must be a list of {text, start, duration}")
    segments = []
    for item in data["segments"]:
        if not isinstance(item, dict):
            raise ValueError("each segment must be an object {text, start, duration}")
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
