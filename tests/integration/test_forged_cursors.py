"""Forged pagination cursors are a 400 INVALID_CURSOR over real HTTP, never a 500 from the database."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from functions.api.app import create_app
from tests.support.clients import client_for
from tests.support.server import serve
from ytresearch.bootstrap import Container
from ytresearch.services.users import AuthUser

# Each normalises to UTC outside what Python or PostgreSQL can hold, or has no zone at all.
FORGED_TIMESTAMPS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-01-02T03:04:05",
]


def forged_cursor(timestamp: str) -> str:
    raw = json.dumps({"t": timestamp, "i": str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def api(container: Container, alice: tuple[AuthUser, str]) -> Iterator[httpx.Client]:
    with serve(create_app(container)) as server, client_for(server.base_url, alice[1]) as client:
        yield client


def assert_invalid_cursor(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_CURSOR"


@pytest.mark.parametrize("timestamp", FORGED_TIMESTAMPS)
def test_forged_cursor_on_the_session_list_is_400(api: httpx.Client, timestamp: str) -> None:
    api.post("/v1/sessions", json={"title": "one"})

    response = api.get("/v1/sessions", params={"cursor": forged_cursor(timestamp)})

    assert_invalid_cursor(response)


@pytest.mark.parametrize("timestamp", FORGED_TIMESTAMPS)
def test_forged_cursor_on_the_message_history_is_400(api: httpx.Client, timestamp: str) -> None:
    sid = api.post("/v1/sessions", json={"title": "one"}).json()["id"]

    response = api.get(f"/v1/sessions/{sid}/messages", params={"cursor": forged_cursor(timestamp)})

    assert_invalid_cursor(response)
