"""The shipped sample videos and the sample/null sources that read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ytresearch.ports import TranscriptError, VideoMetadata
from ytresearch.youtube import (
    NullMetadataSource,
    SampleMetadataSource,
    SampleTranscriptSource,
    default_samples_dir,
    is_video_id,
)

TALKS = ["SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1", "vacc1neImmu"]
XSS = "xssT3stVid0"


def load(video_id: str) -> dict:
    return json.loads((default_samples_dir() / f"{video_id}.json").read_text(encoding="utf-8"))


def test_default_samples_dir_is_the_package_samples_folder() -> None:
    folder = default_samples_dir()

    assert folder.is_dir()
    assert folder.name == "samples"
    assert sorted(p.stem for p in folder.glob("*.json") if p.stem != "catalog") == sorted([*TALKS, XSS])
    assert (folder / "README.md").is_file()


@pytest.mark.parametrize("video_id", [*TALKS, XSS])
def test_sample_file_has_the_documented_shape(video_id: str) -> None:
    data = load(video_id)

    assert set(data) == {
        "video_id",
        "title",
        "channel",
        "channel_url",
        "duration_seconds",
        "language",
        "is_generated",
        "segments",
    }
    assert data["video_id"] == video_id and is_video_id(video_id)
    assert data["language"] == "en" and data["is_generated"] is False
    assert data["channel_url"] is None
    assert isinstance(data["title"], str) and isinstance(data["channel"], str)
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # strictly increasing
    assert all(s["text"].strip() and s["duration"] > 0 for s in data["segments"])
    last = data["segments"][-1]
    assert data["duration_seconds"] >= last["start"] + last["duration"]


@pytest.mark.parametrize("video_id", TALKS)
def test_talk_samples_are_full_length(video_id: str) -> None:
    assert 60 <= len(load(video_id)["segments"]) <= 150


def test_xss_sample_carries_raw_html_for_browser_tests() -> None:
    data = load(XSS)
    texts = " ".join(s["text"] for s in data["segments"])

    assert "<script>alert(1)</script>" in data["title"]
    assert "<script>alert(1)</script>" in texts
    assert "<img src=x onerror=alert(2)>" in texts


def test_sample_transcript_source_returns_the_sample() -> None:
    transcript = SampleTranscriptSource().fetch("PrintPr3ss1", ["en"])

    assert transcript.video_id == "PrintPr3ss1"
    assert (transcript.language, transcript.is_generated) == ("en", False)
    assert len(transcript.segments) == len(load("PrintPr3ss1")["segments"])
    assert "Gutenberg" in transcript.text


def test_sample_transcript_keeps_html_as_plain_text() -> None:
    transcript = SampleTranscriptSource().fetch(XSS, ["en"])

    assert "<img src=x onerror=alert(2)>" in transcript.text


def test_unknown_sample_is_unavailable_and_names_the_samples() -> None:
    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource().fetch("dQw4w9WgXcQ", ["en"])

    error = caught.value
    assert (error.code, error.retryable) == ("VIDEO_UNAVAILABLE", False)
    assert all(video_id in error.message for video_id in TALKS)
    assert error.details["sample_ids"] == sorted([*TALKS, XSS])


def test_sample_ids_cannot_escape_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    source = SampleTranscriptSource(tmp_path / "samples")

    with pytest.raises(TranscriptError) as caught:
        source.fetch("../secret", ["en"])

    assert caught.value.code == "VIDEO_UNAVAILABLE"


def test_sample_in_another_language_is_refused_like_youtube_would() -> None:
    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource().fetch("SoLarP4nels", ["de", "fr"])

    error = caught.value
    assert (error.code, error.retryable) == ("NO_TRANSCRIPT_IN_LANGUAGE", False)
    assert error.details["available_languages"][0]["language_code"] == "en"


def test_malformed_sample_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "AAAAAAAAAAA.json").write_text('{"video_id": "AAAAAAAAAAA", "segments": [{}]}')

    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource(tmp_path).fetch("AAAAAAAAAAA", ["en"])

    assert caught.value.code == "YOUTUBE_UNPARSABLE"
    assert "AAAAAAAAAAA.json" in caught.value.message


def test_sample_metadata_comes_from_the_sample_file() -> None:
    metadata = SampleMetadataSource().fetch("vacc1neImmu")
    data = load("vacc1neImmu")

    assert metadata == VideoMetadata(
        title=data["title"], channel=data["channel"], duration_seconds=data["duration_seconds"]
    )


def test_sample_metadata_for_unknown_or_broken_samples_is_empty(tmp_path: Path) -> None:
    (tmp_path / "AAAAAAAAAAA.json").write_text("not json")

    assert SampleMetadataSource().fetch("dQw4w9WgXcQ") == VideoMetadata()
    assert SampleMetadataSource(tmp_path).fetch("AAAAAAAAAAA") == VideoMetadata()
    assert SampleMetadataSource().fetch("../../etc/passwd") == VideoMetadata()


def test_null_metadata_source_knows_nothing() -> None:
    assert NullMetadataSource().fetch("SoLarP4nels") == VideoMetadata()
