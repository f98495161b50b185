"""CORS on the streaming service: the configured origins get their preflights answered and their
cross-origin requests (SSE included) readable, by the same policy as the REST app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from functions.api.app import create_app as create_rest_app
from streaming_service.app import create_app as create_streaming_app
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.services.sessions import create_session

ORIGIN = "https://research.example.org"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "x-api-key, content-type",
}


def container_for(database_url: str, origins: str) -> Container:
    settings = test_settings(database_url, cors_origins=origins, offline_token_delay_seconds=0)
    return Container(settings, queue=RecordingQueue())


@pytest.fixture
def streaming(database_url: str) -> Iterator[tuple[LoopbackServer, Container]]:
    container = container_for(database_url, f"{ORIGIN},http://localhost:5173")
    with serve(create_streaming_app(container)) as server:
        yield server, container


def test_a_preflight_from_a_configured_origin_is_answered(
    streaming: tuple[LoopbackServer, Container],
) -> None:
    server, _ = streaming

    response = httpx.options(
        f"{server.base_url}/v1/sessions/00000000-0000-0000-0000-000000000001/chat", headers=PREFLIGHT
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-api-key" in allowed and "content-type" in allowed and "last-event-id" in allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers


def test_a_preflight_from_another_origin_is_refused(streaming: tuple[LoopbackServer, Container]) -> None:
    server, _ = streaming

    response = httpx.options(
        f"{server.base_url}/v1/sessions/00000000-0000-0000-0000-000000000001/chat",
        headers={**PREFLIGHT, "Origin": "https://evil.example.net"},
    )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_a_cross_origin_chat_and_its_stream_are_readable_by_the_page(
    streaming: tuple[LoopbackServer, Container],
) -> None:
    server, container = streaming
    user, key = make_user(container)
    sid = create_session(container.store, container.settings, user, "cors").id
    headers = {"Origin": ORIGIN, "X-API-Key": key}

    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        started = client.post(f"/v1/sessions/{sid}/chat", json={"message": "What is this about?"})
        with client.stream("GET", started.json()["stream_url"]) as stream:
            body = "".join(stream.iter_text())

    assert started.status_code == 201
    assert started.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in started.headers["access-control-expose-headers"].lower()
    assert stream.headers["access-control-allow-origin"] == ORIGIN
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: complete" in body


def test_errors_carry_cors_headers_so_the_page_can_read_them(
    streaming: tuple[LoopbackServer, Container],
) -> None:
    server, _ = streaming

    response = httpx.get(
        f"{server.base_url}/v1/requests/00000000-0000-0000-0000-000000000001", headers={"Origin": ORIGIN}
    )

    assert response.status_code == 401 and response.json()["error"]["code"] == "MISSING_API_KEY"
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_the_streaming_service_and_the_rest_app_answer_preflights_alike(database_url: str) -> None:
    container = container_for(database_url, ORIGIN)
    cors = (
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    )
    try:
        with serve(create_streaming_app(container)) as streaming, serve(create_rest_app(container)) as rest:
            answers = [
                httpx.options(f"{server.base_url}/v1/sessions", headers=PREFLIGHT)
                for server in (streaming, rest)
            ]
    finally:
        container.engine.dispose()

    assert [a.status_code for a in answers] == [200, 200]
    assert {name: answers[0].headers[name] for name in cors} == {
        name: answers[1].headers[name] for name in cors
    }


def test_without_configured_origins_there_are_no_cors_headers(database_url: str) -> None:
    container = container_for(database_url, "")
    try:
        with serve(create_streaming_app(container)) as server:
            preflight = httpx.options(
                f"{server.base_url}/v1/sessions/00000000-0000-0000-0000-000000000001/chat", headers=PREFLIGHT
            )
            plain = httpx.get(f"{server.base_url}/health", headers={"Origin": ORIGIN})
    finally:
        container.engine.dispose()

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in plain.headers
