"""Fault injection: a failing model (circuit breaker), a database that goes away and comes back,
and YouTube fetches that fail transiently or for good."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from functions.api.app import create_app
from tests.fakes.anthropic_server import DEFAULT_API_KEY, ErrorReply, FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.postgres import PostgresServer
from tests.support.queue import RecordingQueue
from tests.support.server import serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import DEFAULT_MODEL
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.llm import AnthropicChatModel, CircuitBreakerChatModel
from ytresearch.ports import ContentBlock, ModelError, ModelMessage, ModelRequest, Transcript, TranscriptError
from ytresearch.services.ingest import IngestDeps, ingest_video
from ytresearch.youtube import NullMetadataSource, SampleTranscriptSource
from ytresearch.youtube.retry import RetryingTranscriptSource

REQUEST = ModelRequest(system=[], messages=[ModelMessage("user", [ContentBlock("hi")])], max_tokens=50)


def breaker(fake: FakeAnthropic, threshold: int = 3, reset: float = 0.5) -> CircuitBreakerChatModel:
    claude = AnthropicChatModel(
        api_key=DEFAULT_API_KEY, model=DEFAULT_MODEL, base_url=fake.base_url, max_retries=0
    )
    return CircuitBreakerChatModel(claude, failure_threshold=threshold, reset_seconds=reset)


def test_breaker_opens_on_overload_fails_fast_then_recovers(fake_claude: FakeAnthropic) -> None:
    model = breaker(fake_claude)
    fake_claude.enqueue(*[ErrorReply(status=529) for _ in range(3)])

    async def call() -> str:
        try:
            return (await model.complete(REQUEST)).text
        except ModelError as exc:
            return exc.code

    async def scenario() -> list[str]:
        outcomes = [await call() for _ in range(3)]  # three overloads reach the provider
        sent = len(fake_claude.message_requests)
        outcomes.append(await call())  # open: refused without a request
        assert len(fake_claude.message_requests) == sent
        await asyncio.sleep(0.6)
        fake_claude.enqueue(Reply(text="recovered"))
        outcomes.append(await call())  # half-open probe succeeds: closed again
        fake_claude.enqueue(Reply(text="still fine"))
        outcomes.append(await call())
        return outcomes

    assert asyncio.run(scenario()) == ["MODEL_OVERLOADED"] * 3 + [
        "MODEL_CIRCUIT_OPEN",
        "recovered",
        "still fine",
    ]


def test_failed_probe_reopens_the_circuit(fake_claude: FakeAnthropic) -> None:
    model = breaker(fake_claude, threshold=1, reset=0.3)
    fake_claude.enqueue(ErrorReply(status=500), ErrorReply(status=500))

    async def scenario() -> list[str]:
        codes = []
        for pause in (0, 0, 0.4, 0):
            await asyncio.sleep(pause)
            try:
                await model.complete(REQUEST)
                codes.append("ok")
            except ModelError as exc:
                codes.append(exc.code)
        return codes

    assert asyncio.run(scenario()) == [
        "MODEL_UNREACHABLE",
        "MODEL_CIRCUIT_OPEN",
        "MODEL_UNREACHABLE",
        "MODEL_CIRCUIT_OPEN",
    ]


def test_open_circuit_answers_chat_with_a_fast_503(settings: Any, fake_claude: FakeAnthropic) -> None:
    from local_run.app import create_local_app

    model = breaker(fake_claude, threshold=1, reset=60)
    fake_claude.enqueue(ErrorReply(status=529))
    container = Container(settings, queue=RecordingQueue(), chat_model=model)
    key = make_user(container)[1]
    with serve(create_local_app(container)) as server:
        api = client_for(server.base_url, key)
        sid = api.post("/v1/sessions").json()["id"]
        first = api.post(f"/v1/sessions/{sid}/messages", json={"message": "q"})
        assert first.status_code == 503 and first.json()["error"]["code"] == "MODEL_OVERLOADED"
        for path in (f"/v1/sessions/{sid}/messages", f"/v1/sessions/{sid}/chat"):
            r = api.post(path, json={"message": "q"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "MODEL_CIRCUIT_OPEN"
            assert int(r.headers["Retry-After"]) > 0
    container.engine.dispose()


# ------------------------------------------------------------------ database outage


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.mark.postgres
def test_database_outage_answers_503_and_recovers_without_restart(own_postgres: PostgresServer) -> None:
    url = own_postgres.create_database("outage")
    settings = test_settings(url)
    upgrade_to_head(settings)
    container = Container(settings, queue=RecordingQueue())
    key = make_user(container)[1]
    with serve(create_app(container)) as server:
        api = client_for(server.base_url, key)
        assert api.get("/v1/sessions").status_code == 200
        own_postgres.kill()
        down = api.get("/v1/sessions")
        assert down.status_code == 503 and down.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
        assert "Traceback" not in down.text and "pg8000" not in down.text
        health = httpx.get(server.base_url + "/health")
        assert health.status_code == 503 and health.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
        own_postgres.start_again()
        deadline = time.monotonic() + 20
        while api.get("/v1/sessions").status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        assert api.post("/v1/sessions").status_code == 201
    container.engine.dispose()


# ------------------------------------------------------------------ YouTube failures


class FlakyTranscripts:
    """Fails the first ``failures`` fetches with ``error`` (YouTube itself cannot run here)."""

    def __init__(self, failures: int, error: TranscriptError) -> None:
        self.inner = SampleTranscriptSource()
        self.failures, self.error, self.calls = failures, error, 0

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.inner.fetch(video_id, languages)


def run_ingest(container: Container, transcripts: Any) -> tuple[str, str | None]:
    from ytresearch.llm import OfflineChatModel
    from ytresearch.ports import IngestMessage

    user, _ = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "s")
        repo.get_or_add_video("SoLarP4nels")
        repo.link_video(session.id, "SoLarP4nels", None)
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id="SoLarP4nels", language=None)
    deps = IngestDeps(
        container.store, container.settings, transcripts, NullMetadataSource(), OfflineChatModel()
    )
    status = ingest_video(deps, IngestMessage(job_id=str(job.id), video_id="SoLarP4nels"))
    with container.store.transaction() as repo:
        final = repo.get_job(uuid.UUID(str(job.id)))
        assert final is not None
        return status, final.error_code


def test_transient_youtube_failures_are_retried(container: Container) -> None:
    flaky = FlakyTranscripts(
        2, TranscriptError("YouTube hiccup", code="YOUTUBE_REQUEST_FAILED", retryable=True)
    )
    source = RetryingTranscriptSource(flaky, attempts=3, sleep=lambda _: None)
    assert run_ingest(container, source) == ("done", None)
    assert flaky.calls == 3


def test_permanent_youtube_failure_is_not_retried_and_clear(container: Container) -> None:
    flaky = FlakyTranscripts(
        5, TranscriptError("captions are turned off", code="TRANSCRIPTS_DISABLED", retryable=False)
    )
    source = RetryingTranscriptSource(flaky, attempts=3, sleep=lambda _: None)
    assert run_ingest(container, source) == ("failed", "TRANSCRIPTS_DISABLED")
    assert flaky.calls == 1
    with container.store.transaction() as repo:
        video = repo.get_video("SoLarP4nels")
        assert (
            video is not None
            and video.status == "failed"
            and video.error_message == "captions are turned off"
        )
