"""A body shorter than its Content-Length is answered 408 promptly, over real uvicorn, on both apps."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.api.app import create_app as create_rest_app
from streaming_service.app import create_app as create_streaming_app
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head

TIMEOUT = 0.5  # the test's body read timeout; the default is 10 s
PROMPT = 3.0  # the 408 must arrive within this (the defect held the connection 55 s or more)

# (app factory, a route that reads a JSON body, a complete body, its status)
APPS: dict[str, tuple[Callable[[Container], Any], str, dict[str, str], int]] = {
    "rest": (create_rest_app, "/v1/sessions", {"title": "next"}, 201),
    # No such session: the body is read and checked, then the session is looked up.
    "streaming": (create_streaming_app, f"/v1/sessions/{uuid.uuid4()}/chat", {"message": "hello"}, 404),
}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    url = f"sqlite:///{tmp_path}/ytr.db"
    upgrade_to_head(test_settings(url))
    c = Container(test_settings(url, body_read_timeout_seconds=TIMEOUT), queue=RecordingQueue())
    yield c
    c.engine.dispose()


@pytest.fixture(params=list(APPS))
def app_under_test(
    request: pytest.FixtureRequest, container: Container
) -> Iterator[tuple[LoopbackServer, str]]:
    create = APPS[request.param][0]
    with serve(create(container)) as server:
        yield server, request.param


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before a full response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(4096)
        assert chunk, "connection closed in the middle of the body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_a_stalled_body_is_answered_408_promptly_and_the_server_goes_on(
    app_under_test: tuple[LoopbackServer, str], container: Container
) -> None:
    server, name = app_under_test
    _, path, complete_body, complete_status = APPS[name]
    _, key = make_user(container)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )

    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + 2) as sock:
        began = time.monotonic()
        sock.sendall(head.encode() + b'{"title": ')  # 10 of the 100 promised bytes, then silence
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - began

        assert status == 408
        assert elapsed < PROMPT
        error = json.loads(body)["error"]
        assert error["code"] == "REQUEST_TIMEOUT" and error["message"] and error["details"] == {}
        assert headers["connection"] == "close"
        sock.settimeout(PROMPT)
        assert sock.recv(1) == b""  # the server closed the connection it could not reuse

    with client_for(server.base_url, key) as client:
        complete = client.post(path, json=complete_body)
    assert complete.status_code == complete_status, complete.text


def test_an_error_answered_by_a_middleware_carries_one_request_id(
    app_under_test: tuple[LoopbackServer, str],
) -> None:
    # Given either app
    server, _ = app_under_test
    # When a body too large for the limit is refused (by the body-size middleware)
    response = client_for(server.base_url, None).post("/v1/sessions", content=b"x" * (2 * 1024 * 1024))
    # Then the answer names its request id exactly once
    assert response.status_code == 413
    assert len(response.headers.get_list("x-request-id")) == 1
