"""Abuse limits: per-user write rates (every Lambda instance and task counts the same rows) and the
transcript size cap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from functions.api.app import create_app
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import serve
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.ports import IngestMessage
from ytresearch.services.ingest import IngestDeps, ingest_video
from ytresearch.youtube import NullMetadataSource, SampleTranscriptSource


@pytest.fixture
def limited(settings: Settings) -> Iterator[tuple[httpx.Client, httpx.Client, Container]]:
    limits = {"session_creates_per_minute": 3, "video_adds_per_minute": 2, "chat_posts_per_minute": 2}
    container = Container(settings.model_copy(update=limits), queue=RecordingQueue())
    with serve(create_app(container)) as server:
        yield (
            client_for(server.base_url, make_user(container)[1]),
            client_for(server.base_url, make_user(container)[1]),
            container,
        )
    container.engine.dispose()


def test_session_creation_is_rate_limited_per_user(
    limited: tuple[httpx.Client, httpx.Client, Container],
) -> None:
    alice, bob, _ = limited
    assert [alice.post("/v1/sessions").status_code for _ in range(3)] == [201, 201, 201]
    fourth = alice.post("/v1/sessions")
    assert fourth.status_code == 429 and fourth.headers["Retry-After"] == "60"
    assert fourth.json()["error"]["code"] == "RATE_LIMITED"
    assert len(alice.get("/v1/sessions").json()["items"]) == 3  # nothing was created
    assert bob.post("/v1/sessions").status_code == 201  # another user is not affected


def test_video_adds_and_chat_messages_are_rate_limited(
    limited: tuple[httpx.Client, httpx.Client, Container],
) -> None:
    alice, _, _ = limited
    sid = alice.post("/v1/sessions").json()["id"]
    assert alice.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 202
    assert alice.post(f"/v1/sessions/{sid}/videos", json={"url": "s0urd0ughBr"}).status_code == 202
    assert (
        alice.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 202
    )  # re-adding
    third = alice.post(f"/v1/sessions/{sid}/videos", json={"url": "PrintPr3ss1"})
    assert third.status_code == 429
    assert [
        alice.post(f"/v1/sessions/{sid}/messages", json={"message": "q"}).status_code for _ in range(2)
    ] == [201, 201]
    limited_chat = alice.post(f"/v1/sessions/{sid}/messages", json={"message": "one more"})
    assert limited_chat.status_code == 429 and limited_chat.json()["error"]["code"] == "RATE_LIMITED"
    history = alice.get(f"/v1/sessions/{sid}/messages").json()["items"]
    assert "one more" not in [m["content"] for m in history]


def test_oversized_transcripts_are_refused(container: Container) -> None:
    from ytresearch.llm import OfflineChatModel

    container.settings = container.settings.model_copy(update={"max_transcript_chars": 1_000})
    user, _ = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "s")
        repo.get_or_add_video("SoLarP4nels")
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id="SoLarP4nels", language=None)
    deps = IngestDeps(
        container.store,
        container.settings,
        SampleTranscriptSource(),
        NullMetadataSource(),
        OfflineChatModel(),
    )
    assert ingest_video(deps, IngestMessage(job_id=str(job.id), video_id="SoLarP4nels")) == "failed"
    with container.store.transaction() as repo:
        stored = repo.get_job(uuid.UUID(str(job.id)))
        assert stored is not None and stored.error_code == "TRANSCRIPT_TOO_LARGE"
        video = repo.get_video("SoLarP4nels")
        assert video is not None and video.transcript_text is None
