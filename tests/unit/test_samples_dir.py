"""YTR_SAMPLES_DIR: a person's own sample files, read before the bundled ones, so the offline run
(``transcript_source="samples"``) works on their material with no network."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import load_settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.errors import ConfigurationError
from ytresearch.ports import IngestMessage, TranscriptError, VideoMetadata
from ytresearch.services.ingest import IngestDeps, ingest_video
from ytresearch.youtube import SampleMetadataSource, SampleTranscriptSource, default_samples_dir

OWN = "MyOwnVide0_"
README = default_samples_dir() / "README.md"


def write_sample(folder: Path, video_id: str, **fields: Any) -> Path:
    data = {
        "video_id": video_id,
        "title": "My own lecture",
        "channel": "Me",
        "channel_url": None,
        "duration_seconds": 20,
        "language": "en",
        "is_generated": False,
        "segments": [
            {
                "text": "Tidal power turns the pull of the moon into electricity.",
                "start": 0.0,
                "duration": 6.0,
            },
            {
                "text": "Barrages hold the water back and let it through turbines.",
                "start": 6.0,
                "duration": 7.5,
            },
        ],
    } | fields
    path = folder / f"{video_id}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def own(tmp_path: Path) -> Path:
    folder = tmp_path / "my-samples"
    folder.mkdir()
    write_sample(folder, OWN)
    return folder


@pytest.fixture
def container(own: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """The offline system (samples, offline model) on SQLite, with YTR_SAMPLES_DIR set."""
    monkeypatch.setenv("YTR_SAMPLES_DIR", str(own))
    settings = test_settings(f"sqlite:///{tmp_path}/ytr.db")
    upgrade_to_head(settings)
    c = Container(settings)
    yield c
    c.engine.dispose()


def ingest(container: Container, video_id: str) -> str:
    """Queue-free ingest of ``video_id`` for a new user's session, as the ingest handler runs it."""
    user, _ = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "mine")
        repo.get_or_add_video(video_id)
        repo.link_video(session.id, video_id, None)
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id=video_id, language=None)
    deps = IngestDeps(
        store=container.store,
        settings=container.settings,
        transcripts=container.transcripts,
        metadata=container.metadata,
        model=container.chat_model,
    )
    return ingest_video(deps, IngestMessage(job_id=str(job.id), video_id=video_id))


# ---------------------------------------------------------------------- through the system


def test_an_own_sample_is_ingested_offline(container: Container, own: Path) -> None:
    assert container.settings.samples_dir == own

    assert ingest(container, OWN) == "done"

    with container.store.transaction() as repo:
        video = repo.get_video(OWN)
        assert video is not None and video.status == "ready"
        assert (video.title, video.channel, video.duration_seconds) == ("My own lecture", "Me", 20)
        assert video.transcript_text and "Tidal power" in video.transcript_text
        assert video.summary


def test_the_bundled_samples_still_work_beside_them(container: Container) -> None:
    assert ingest(container, "PrintPr3ss1") == "done"

    with container.store.transaction() as repo:
        video = repo.get_video("PrintPr3ss1")
        assert video is not None and video.status == "ready"
        assert video.title == json.loads((default_samples_dir() / "PrintPr3ss1.json").read_text())["title"]


def test_a_malformed_own_sample_fails_its_ingest_with_a_clear_error(container: Container, own: Path) -> None:
    (own / "Br0kenSampl.json").write_text('{"video_id": "Br0kenSampl", "title": "x"}', encoding="utf-8")

    assert ingest(container, "Br0kenSampl") == "failed"

    with container.store.transaction() as repo:
        video = repo.get_video("Br0kenSampl")
        assert video is not None and video.status == "failed" and video.error_code == "YOUTUBE_UNPARSABLE"
        assert video.error_message == (
            f"sample file Br0kenSampl.json in {own} is malformed: a required field is missing: "
            "'segments' (the expected shape: ytresearch/samples/README.md)"
        )


# ---------------------------------------------------------------------- the sources


def test_a_file_in_the_folder_wins_over_the_bundled_one(own: Path) -> None:
    write_sample(own, "SoLarP4nels", title="My solar notes")

    transcript = SampleTranscriptSource(own).fetch("SoLarP4nels", ["en"])

    assert "Tidal power" in transcript.text
    assert SampleMetadataSource(own).fetch("SoLarP4nels").title == "My solar notes"
    assert SampleMetadataSource().fetch("SoLarP4nels").title != "My solar notes"  # the bundled one


def test_the_bundled_samples_are_read_after_the_folder(own: Path) -> None:
    transcript = SampleTranscriptSource(own).fetch("vacc1neImmu", ["en"])
    bundled = SampleTranscriptSource().fetch("vacc1neImmu", ["en"])

    assert transcript == bundled
    assert SampleMetadataSource(own).fetch("vacc1neImmu") == SampleMetadataSource().fetch("vacc1neImmu")


def test_an_unknown_id_names_the_samples_of_both(own: Path) -> None:
    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource(own).fetch("dQw4w9WgXcQ", ["en"])

    error = caught.value
    assert error.code == "VIDEO_UNAVAILABLE"
    assert OWN in error.details["sample_ids"] and "SoLarP4nels" in error.details["sample_ids"]
    assert error.details["sample_ids"] == sorted(error.details["sample_ids"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"video_id": "Br0kenSampl", "segments": [', "not valid JSON (line 1, column 42"),
        ('{"video_id": "Br0kenSampl", "segments": [{"text": "hi", "start": 0}]}', "missing: 'duration'"),
        ('{"video_id": "Br0kenSampl", "segments": {"text": "hi"}}', "segments must be a list"),
        ('{"video_id": "SomethingEl", "segments": []}', "video_id must be 'Br0kenSampl'"),
        ('{"video_id": "Br0kenSampl", "title": 7, "segments": []}', "expected a string, got int"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_malformed_file_says_which_file_and_what_is_wrong(
    own: Path, content: str | bytes, problem: str
) -> None:
    path = own / "Br0kenSampl.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())

    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource(own).fetch("Br0kenSampl", ["en"])

    error = caught.value
    assert (error.code, error.retryable) == ("YOUTUBE_UNPARSABLE", False)
    assert error.message.startswith(f"sample file Br0kenSampl.json in {own} is malformed: ")
    assert problem in error.message
    assert SampleMetadataSource(own).fetch("Br0kenSampl") == VideoMetadata()  # metadata: best effort


def test_a_malformed_own_file_is_not_hidden_by_a_bundled_one(own: Path) -> None:
    (own / "SoLarP4nels.json").write_text("{", encoding="utf-8")

    with pytest.raises(TranscriptError) as caught:
        SampleTranscriptSource(own).fetch("SoLarP4nels", ["en"])

    assert caught.value.code == "YOUTUBE_UNPARSABLE"


# ---------------------------------------------------------------------- the setting and its docs


def test_a_folder_that_is_not_there_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(samples_dir=tmp_path / "nowhere")

    assert "YTR_SAMPLES_DIR" in caught.value.message and "is not a folder" in caught.value.message


def test_the_setting_expands_the_home_folder(monkeypatch: pytest.MonkeyPatch, own: Path) -> None:
    monkeypatch.setenv("HOME", str(own.parent))

    assert load_settings(samples_dir="~/my-samples").samples_dir == own


def test_the_documented_example_is_a_valid_sample(own: Path) -> None:
    example = re.search(
        r"<!-- own-sample -->\s*```json\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL
    )
    assert example, "samples/README.md shows an example sample file"
    data = json.loads(example.group(1))
    (own / f"{data['video_id']}.json").write_text(example.group(1), encoding="utf-8")

    transcript = SampleTranscriptSource(own).fetch(data["video_id"], ["en"])

    assert [s.text for s in transcript.segments] == [s["text"] for s in data["segments"]]
