"""Every CRUD route over real HTTP (uvicorn on loopback), on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from functions.api.app import create_app
from tests.support.clients import client_for
from tests.support.server import LoopbackServer, serve
from ytresearch.bootstrap import Container
from ytresearch.db.models import IngestJob, Message, SessionVideo, Video, utcnow
from ytresearch.services.users import AuthUser


@pytest.fixture
def server(container: Container) -> Iterator[LoopbackServer]:
    with serve(create_app(container)) as s:
        yield s


@pytest.fixture
def api(server: LoopbackServer, alice: tuple[AuthUser, str]) -> Iterator[httpx.Client]:
    with client_for(server.base_url, alice[1]) as c:
        yield c


def ready_video(container: Container, video_id: str = "SoLarP4nels") -> None:
    with container.store.transaction() as repo:
        video = repo.get_or_add_video(video_id)
        video.status, video.title, video.summary = "ready", "Solar", "A summary."
        video.transcript_text = "hello world"
        video.transcript_segments = [{"text": "hello world", "start": 0.0, "duration": 2.0}]


def add_messages(container: Container, session_id: str, count: int) -> list[uuid.UUID]:
    """Adds messages; returns their ids newest first by (created_at, id), the history order."""
    base = utcnow()
    keyed = []
    with container.store.transaction() as repo:
        for i in range(count):
            # Pairs share a timestamp on purpose: the cursor must break ties by id.
            m = repo.add_message(
                session_id=uuid.UUID(session_id),
                role="user" if i % 2 == 0 else "assistant",
                content=f"message {i}",
                created_at=base + timedelta(seconds=i // 2),
            )
            keyed.append((m.created_at, m.id))
    return [i for _, i in sorted(keyed, reverse=True)]


# ----------------------------------------------------------------- health


def test_health_reports_the_database(server: LoopbackServer) -> None:
    r = httpx.get(server.base_url + "/health")
    assert r.status_code == 200
    assert r.json()["database"] == "up" and r.json()["status"] == "ok"


# ----------------------------------------------------------------- sessions


def test_create_get_and_list_sessions(api: httpx.Client) -> None:
    created = api.post("/v1/sessions", json={"title": "  Solar   research "})
    assert created.status_code == 201
    body = created.json()
    assert body["title"] == "Solar research"
    got = api.get(f"/v1/sessions/{body['id']}")
    assert got.status_code == 200 and got.json()["videos"] == []
    listed = api.get("/v1/sessions").json()
    assert [s["id"] for s in listed["items"]] == [body["id"]]
    assert listed["has_more"] is False and listed["next_cursor"] is None


def test_session_without_body_gets_a_default_title(api: httpx.Client) -> None:
    r = api.post("/v1/sessions")
    assert r.status_code == 201 and r.json()["title"] == "Untitled session"


def test_sessions_paginate_newest_first_without_gaps(api: httpx.Client) -> None:
    ids = [api.post("/v1/sessions", json={"title": f"s{i}"}).json()["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        page = api.get("/v1/sessions", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if not cursor:
            break
    assert seen == list(reversed(ids))


def test_rename_a_session_and_choose_its_tools(
    api: httpx.Client, server: LoopbackServer, bob: tuple[AuthUser, str]
) -> None:
    """PATCH /v1/sessions/{id} {title?, tools?}: only what is given changes (whitespace collapsed,
    blank is "Untitled session"); 404 for another user's session; 400 for a title too long, an
    unknown field, an unknown mode or nothing to change, and then nothing changed."""
    created = api.post("/v1/sessions", json={"title": "Before"}).json()
    path = f"/v1/sessions/{created['id']}"
    renamed = api.patch(path, json={"title": "  After   the  rename "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "After the rename" and renamed.json()["tools"] == created["tools"]
    assert renamed.json()["updated_at"] >= created["updated_at"]
    confirm = api.patch(path, json={"tools": "confirm"}).json()
    assert (confirm["title"], confirm["tools"]) == ("After the rename", "confirm")
    assert api.patch(path, json={"title": "   "}).json()["title"] == "Untitled session"
    for bad in ({"title": "x" * 201}, {"title": "t", "owner": "me"}, {"tools": "always"}, {}):
        refused = api.patch(path, json=bad)
        assert refused.status_code == 400 and refused.json()["error"]["code"], bad
    foreign = client_for(server.base_url, bob[1]).patch(path, json={"title": "Mine now"})
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "SESSION_NOT_FOUND"
    assert (api.get(path).json()["title"], api.get(path).json()["tools"]) == ("Untitled session", "confirm")


def test_delete_session_cascades_but_keeps_shared_videos(api: httpx.Client, container: Container) -> None:
    ready_video(container)
    sid = api.post("/v1/sessions").json()["id"]
    assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 200
    add_messages(container, sid, 3)
    assert api.delete(f"/v1/sessions/{sid}").status_code == 204
    assert api.get(f"/v1/sessions/{sid}").status_code == 404
    with container.store.transaction() as repo:
        assert repo.session.query(Message).count() == 0
        assert repo.session.query(SessionVideo).count() == 0
        assert repo.get_video("SoLarP4nels") is not None  # the cache stays for other sessions
    assert api.delete(f"/v1/sessions/{sid}").status_code == 404


# ----------------------------------------------------------------- videos and jobs


def test_add_video_queues_one_ingest_job(api: httpx.Client, container: Container) -> None:
    sid = api.post("/v1/sessions").json()["id"]
    r = api.post(f"/v1/sessions/{sid}/videos", json={"url": "https://youtu.be/SoLarP4nels?t=42"})
    assert r.status_code == 202
    body = r.json()
    assert body["video"]["id"] == "SoLarP4nels" and body["video"]["status"] == "pending"
    job = api.get(f"/v1/jobs/{body['job_id']}").json()
    assert job["status"] == "queued" and job["video_id"] == "SoLarP4nels"
    sent = container.queue.sent  # type: ignore[attr-defined]
    assert [(m.job_id, m.video_id) for m in sent] == [(body["job_id"], "SoLarP4nels")]
    listed = api.get(f"/v1/sessions/{sid}/videos").json()
    assert [v["id"] for v in listed] == ["SoLarP4nels"]


def test_adding_a_video_twice_while_ingesting_sends_one_message(
    api: httpx.Client, container: Container
) -> None:
    s1 = api.post("/v1/sessions").json()["id"]
    s2 = api.post("/v1/sessions").json()["id"]
    api.post(f"/v1/sessions/{s1}/videos", json={"url": "SoLarP4nels"})
    second = api.post(f"/v1/sessions/{s2}/videos", json={"url": "SoLarP4nels"})
    assert second.status_code == 202 and second.json()["job_id"]
    assert len(container.queue.sent) == 1  # type: ignore[attr-defined]


def test_ready_video_is_linked_at_once(api: httpx.Client, container: Container) -> None:
    ready_video(container)
    sid = api.post("/v1/sessions").json()["id"]
    r = api.post(f"/v1/sessions/{sid}/videos", json={"url": "https://www.youtube.com/watch?v=SoLarP4nels"})
    assert r.status_code == 200
    assert r.json()["video"]["status"] == "ready" and r.json()["job_id"] is None
    assert container.queue.sent == []  # type: ignore[attr-defined]


def test_video_detail_and_transcript_on_request(api: httpx.Client, container: Container) -> None:
    ready_video(container)
    sid = api.post("/v1/sessions").json()["id"]
    api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"})
    plain = api.get("/v1/videos/SoLarP4nels").json()
    assert plain["summary"] == "A summary." and plain["transcript_segments"] is None
    full = api.get("/v1/videos/SoLarP4nels", params={"include_transcript": "true"}).json()
    assert full["transcript_segments"] == [{"text": "hello world", "start": 0.0, "duration": 2.0}]


def test_remove_video_from_session(api: httpx.Client, container: Container) -> None:
    ready_video(container)
    sid = api.post("/v1/sessions").json()["id"]
    api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"})
    assert api.delete(f"/v1/sessions/{sid}/videos/SoLarP4nels").status_code == 204
    assert api.get(f"/v1/sessions/{sid}/videos").json() == []
    again = api.delete(f"/v1/sessions/{sid}/videos/SoLarP4nels")
    assert again.status_code == 404 and again.json()["error"]["code"] == "VIDEO_NOT_FOUND"


def test_invalid_video_url_is_400_and_changes_nothing(api: httpx.Client, container: Container) -> None:
    sid = api.post("/v1/sessions").json()["id"]
    r = api.post(f"/v1/sessions/{sid}/videos", json={"url": "https://vimeo.com/12345"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_VIDEO_URL"
    with container.store.transaction() as repo:
        assert repo.session.query(Video).count() == 0 and repo.session.query(IngestJob).count() == 0


def test_video_cap_per_session(api: httpx.Client, container: Container) -> None:
    container.settings = container.settings.model_copy(update={"max_videos_per_session": 1})
    sid = api.post("/v1/sessions").json()["id"]
    assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 202
    r = api.post(f"/v1/sessions/{sid}/videos", json={"url": "s0urd0ughBr"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "TOO_MANY_VIDEOS"


# ----------------------------------------------------------------- messages


def test_message_history_pages_cover_everything_once(api: httpx.Client, container: Container) -> None:
    sid = api.post("/v1/sessions").json()["id"]
    ids = add_messages(container, sid, 11)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/v1/sessions/{sid}/messages", params=params).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert pages == 3
    assert seen == [str(i) for i in ids]  # newest first, none skipped or repeated


# ----------------------------------------------------------------- security


def test_missing_and_wrong_keys_are_401(server: LoopbackServer) -> None:
    for headers in ({}, {"X-API-Key": "ytr_wrong"}, {"X-API-Key": "x" * 5000}):
        r = httpx.get(server.base_url + "/v1/sessions", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] in ("MISSING_API_KEY", "INVALID_API_KEY")


def test_another_users_resources_are_404(
    server: LoopbackServer, container: Container, alice: tuple[AuthUser, str], bob: tuple[AuthUser, str]
) -> None:
    a, b = client_for(server.base_url, alice[1]), client_for(server.base_url, bob[1])
    sid = a.post("/v1/sessions").json()["id"]
    job_id = a.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).json()["job_id"]
    add_messages(container, sid, 2)
    for path in (
        f"/v1/sessions/{sid}",
        f"/v1/sessions/{sid}/videos",
        f"/v1/sessions/{sid}/messages",
        "/v1/videos/SoLarP4nels",
        f"/v1/jobs/{job_id}",
    ):
        r = b.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"].endswith("NOT_FOUND")
    assert b.delete(f"/v1/sessions/{sid}").status_code == 404
    assert b.post(f"/v1/sessions/{sid}/videos", json={"url": "s0urd0ughBr"}).status_code == 404
    assert b.delete(f"/v1/sessions/{sid}/videos/SoLarP4nels").status_code == 404
    assert b.get("/v1/sessions").json()["items"] == []
    assert a.get(f"/v1/sessions/{sid}").status_code == 200  # untouched for its owner


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sessions/not-a-uuid",
        "/v1/jobs/123",
        "/v1/videos/short",
        "/v1/sessions/00000000-0000-0000-0000-00000000000g/messages",
    ],
)
def test_malformed_ids_are_400(api: httpx.Client, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "INVALID_ID"


def test_validation_errors_use_our_format(api: httpx.Client) -> None:
    r = api.post("/v1/sessions", json={"title": "x" * 500})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["details"]["errors"][0]["field"] == "title"
    r = api.post("/v1/sessions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_JSON"
    r = api.post("/v1/sessions", json={"title": "ok", "unknown": 1})
    assert r.status_code == 400
    r = api.get("/v1/sessions", params={"limit": 0})
    assert r.status_code == 400
    r = api.get("/v1/sessions", params={"cursor": "garbage!"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_CURSOR"


def test_oversized_bodies_are_413(api: httpx.Client, container: Container) -> None:
    big = {"title": "x" * (container.settings.max_body_bytes + 10)}
    r = api.post("/v1/sessions", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the stream
        yield b'{"title": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = api.post("/v1/sessions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert api.get("/v1/sessions").json()["items"] == []


def test_unknown_routes_and_methods_use_our_format(api: httpx.Client) -> None:
    r = api.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = api.put("/v1/sessions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_responses_carry_a_request_id(api: httpx.Client) -> None:
    assert api.get("/v1/sessions", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert len(api.get("/v1/sessions").headers["x-request-id"]) >= 16


def test_cors_allows_only_configured_origins(settings: Any) -> None:
    container = Container(settings.model_copy(update={"cors_origins": ["https://app.example.com"]}))
    with serve(create_app(container)) as s:
        headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
        ok = httpx.options(
            s.base_url + "/v1/sessions", headers={"Origin": "https://app.example.com", **headers}
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        bad = httpx.options(
            s.base_url + "/v1/sessions", headers={"Origin": "https://evil.example", **headers}
        )
        assert "access-control-allow-origin" not in bad.headers
    container.engine.dispose()


def test_unparsable_bodies_are_400_in_our_format(api: httpx.Client) -> None:
    r = api.post(
        "/v1/sessions", content=b'{"title": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] in ("INVALID_BODY", "INVALID_JSON")
