"""Grounded answers through the real SDK against the fake Claude, on SQLite and PostgreSQL: the
videos as citable documents, citations mapped to the video and the moment (and dropped when they
point at nothing sent), saved with the reply and returned in history; and, when the transcripts
are too long to send whole, retrieval that reaches the last minute of a three-hour video while the
prompt stays bounded."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_run.app import create_local_app
from tests.fakes.anthropic_server import Cited, FakeAnthropic, Reply
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import serve
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.events import StreamEvent
from ytresearch.services.chat import run_turn
from ytresearch.services.context import ChatQuestion, ContextDeps, prepare_turn
from ytresearch.services.users import AuthUser
from ytresearch.windows import transcript_windows

PLANTED = "the quokka migration always starts on the ninth of October"


def add_video(
    container: Container, sid: uuid.UUID, video_id: str, title: str, lines: list[tuple[float, str]]
) -> None:
    """A ready video with its transcript and its index, linked to the session."""
    segments = [{"text": text, "start": start, "duration": 5.0} for start, text in lines]
    with container.store.transaction() as repo:
        video = repo.get_or_add_video(video_id)
        video.status, video.title, video.channel = "ready", title, "Channel"
        video.summary = f"Summary of {title}."
        video.transcript_segments = segments
        video.transcript_text = " ".join(text for _, text in lines)
        video.duration_seconds = int(lines[-1][0]) + 5
        repo.replace_windows(video_id, "en", transcript_windows(segments))
        repo.link_video(sid, video_id, None)


def filler(hours: float, every: float = 10.0) -> list[tuple[float, str]]:
    count = int(hours * 3600 / every)
    return [(i * every, f"talk number {i} about weather, gardens and the town market") for i in range(count)]


@pytest.fixture
def user(container: Container) -> AuthUser:
    return make_user(container)[0]


@pytest.fixture
def sid(container: Container, user: AuthUser) -> uuid.UUID:
    with container.store.transaction() as repo:
        return repo.add_session(user.id, "grounded").id


def ask(
    container: Container, model: Any, user: AuthUser, sid: uuid.UUID, text: str
) -> tuple[list[StreamEvent], Any]:
    events: list[StreamEvent] = []

    async def go() -> Any:
        turn = await asyncio.to_thread(
            prepare_turn,
            container.store,
            ContextDeps(settings=container.settings, model=model, max_tokens=512),
            ChatQuestion(user=user, session_id=sid, text=text),
        )
        return await run_turn(container.store, model, turn, events.append)

    return events, asyncio.run(go())


def test_a_citation_names_the_video_and_the_moment_and_is_saved(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    add_video(container, sid, "AAAAAAAAAAA", "Gardens", [(5.0, "roses like sun"), (12.0, "water at dawn")])
    add_video(
        container, sid, "BBBBBBBBBBB", "Solar", [(65.0, "panels turn light into power"), (70.0, "cells age")]
    )
    fake_claude.enqueue(
        Reply(
            cited=(
                Cited("In short: "),
                Cited("panels turn light into power.", document_index=1, start=0),
                Cited(" That is all."),
            )
        )
    )
    events, result = ask(container, claude, user, sid, "what do panels do?")

    citations = [e.data for e in events if e.type == "citation"]
    assert citations == [
        {
            "video_id": "BBBBBBBBBBB",
            "title": "Solar",
            "start": 65.0,
            "end": 75.0,
            "quote": citations[0]["quote"],
            "url": "https://www.youtube.com/watch?v=BBBBBBBBBBB&t=65",
        }
    ]
    assert "panels turn light into power" in citations[0]["quote"]
    kinds = [e.type for e in events]
    assert kinds.index("citation") > kinds.index("token")  # after "In short: ", before its text
    assert result.text == "In short: panels turn light into power. That is all."
    assert result.message.citations == [{**citations[0], "at": len("In short: ")}]


def test_a_citation_that_points_at_nothing_sent_never_reaches_the_person(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    add_video(container, sid, "AAAAAAAAAAA", "Gardens", [(5.0, "roses like sun")])
    fake_claude.enqueue(
        Reply(
            cited=(
                Cited("Made up. ", document_index=4, start=0),
                Cited("Also made up. ", document_index=0, start=3, end=9),
                Cited("Fine."),
            )
        )
    )
    events, result = ask(container, claude, user, sid, "anything?")

    assert [e for e in events if e.type == "citation"] == []
    assert result.text == "Made up. Also made up. Fine." and not result.message.citations


def test_long_sessions_retrieve_the_last_minute_of_a_three_hour_video_within_budget(
    container: Container, claude: Any, fake_claude: FakeAnthropic, user: AuthUser, sid: uuid.UUID
) -> None:
    for n in range(29):
        add_video(container, sid, f"long{n:07d}", f"Long talk {n}", filler(1.0))
    three_hours = filler(3.0)
    three_hours[-3] = (three_hours[-3][0], PLANTED)  # in the last minute
    add_video(container, sid, "threeHours1", "The three-hour one", three_hours)
    fake_claude.enqueue(Reply(text="October."))
    ask(container, claude, user, sid, "When does the quokka migration start?")

    body = fake_claude.message_requests[-1].body
    documents = [b for m in body["messages"] for b in m["content"] if b["type"] == "document"]
    texts = [p["text"] for d in documents for p in d["source"]["content"]]
    assert any(PLANTED in t for t in texts)
    assert "too long to give whole" in body["system"][0]["text"]
    sent = json.dumps(body)
    # The prompt stays bounded (~4 characters a token), whatever the videos' length: the passages
    # within retrieval_budget_tokens, plus summaries and instructions.
    assert len(sent) / 4 < 30_000
    # Every other video is still named, with its summary.
    assert "Long talk 3" in sent and "Summary of Long talk 28." in sent


@pytest.fixture
def api(settings: Settings, claude: Any) -> Iterator[tuple[httpx.Client, Container]]:
    container = Container(settings, queue=RecordingQueue(), chat_model=claude)
    with serve(create_local_app(container)) as server:
        yield client_for(server.base_url, make_user(container)[1]), container
    container.engine.dispose()


def test_citations_stream_resume_and_come_back_in_history_and_the_sync_answer(
    api: tuple[httpx.Client, Container], fake_claude: FakeAnthropic
) -> None:
    client, container = api
    sid = client.post("/v1/sessions", json={"title": "cited"}).json()["id"]
    add_video(container, uuid.UUID(sid), "BBBBBBBBBBB", "Solar", [(65.0, "panels turn light into power")])
    cited = (Cited("They "), Cited("turn light into power.", document_index=0, start=0))
    fake_claude.enqueue(Reply(cited=cited), Reply(cited=cited))

    started = client.post(
        f"/v1/sessions/{sid}/chat", json={"message": "what do panels do?", "tools": "off"}
    ).json()
    _, events, _ = read_stream(client, "GET", started["stream_url"])
    citation = next(e for e in events if e.event == "citation")
    assert json.loads(citation.data)["url"] == "https://www.youtube.com/watch?v=BBBBBBBBBBB&t=65"
    _, again, _ = read_stream(
        client, "GET", started["stream_url"], headers={"Last-Event-ID": str(int(citation.id or 0) - 1)}
    )
    assert again[0].event == "citation" and again[0].data == citation.data

    sync = client.post(f"/v1/sessions/{sid}/messages", json={"message": "again?", "tools": "off"}).json()
    assert sync["citations"][0]["video_id"] == "BBBBBBBBBBB" and sync["citations"][0]["start"] == 65.0
    history = client.get(f"/v1/sessions/{sid}/messages").json()["items"]
    replies = [m for m in history if m["role"] == "assistant"]
    assert len(replies) == 2 and all(m["citations"][0]["at"] == len("They ") for m in replies)
