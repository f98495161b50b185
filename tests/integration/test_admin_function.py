"""The admin Lambda function, invoked directly with the JSON events `aws lambda invoke` and
`ytr-admin --deployed` send, against a real database; and what a revocation does to a key that
the REST app and the streaming service have just accepted (and cached)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

import functions.admin.handler as admin_module
from functions.admin.handler import make_handler
from functions.api.app import create_app as create_rest_app
from streaming_service.app import create_app as create_streaming_app
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.services.users import KeyCache, authenticate


class LambdaContext:
    function_name = "YtResearch-dev-AdminFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:YtResearch-dev-AdminFunction"
    memory_limit_in_mb = 512
    aws_request_id = "8a6d3c1e-2b7f-4e0c-9d1a-3f5e6b7c8d9e"
    log_group_name = "/aws/lambda/YtResearch-dev-AdminFunction"
    log_stream_name = "2026/12/06/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def invoke(container: Container, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The deployed entry point (Powertools-decorated ``handler``) over the test database."""
    monkeypatch.setattr(admin_module, "_handle", make_handler(lambda: container))

    def call(event: Any) -> dict[str, Any]:
        answer: dict[str, Any] = admin_module.handler(event, LambdaContext())
        return answer

    return call


def error_code(answer: dict[str, Any]) -> str:
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "details"}
    code: str = answer["error"]["code"]
    return code


# ---------------------------------------------------------------------- the actions


def test_create_user_answers_a_working_key_once(invoke: Any, container: Container) -> None:
    answer = invoke({"action": "create-user", "email": "Ops@Example.com"})

    assert answer["user"]["email"] == "ops@example.com"
    assert authenticate(container.store, answer["api_key"]).email == "ops@example.com"
    again = invoke({"action": "create-user", "email": "ops@example.com"})
    assert error_code(again) == "USER_EXISTS"


def test_create_key_and_list_keys_show_prefixes_never_keys(invoke: Any) -> None:
    first = invoke({"action": "create-user", "email": "ops@example.com"})["api_key"]
    second = invoke({"action": "create-key", "email": "ops@example.com"})["api_key"]

    listed = invoke({"action": "list-keys", "email": "ops@example.com"})["keys"]

    assert [k["prefix"] for k in listed] == [first[:10], second[:10]]
    assert all(k["revoked_at"] is None for k in listed)
    assert first not in str(listed) and second not in str(listed)
    assert set(listed[0]) == {"id", "prefix", "created_at", "revoked_at"}


def test_revoke_by_id_then_by_prefix(invoke: Any, container: Container) -> None:
    key = invoke({"action": "create-user", "email": "ops@example.com"})["api_key"]
    other = invoke({"action": "create-key", "email": "ops@example.com"})["api_key"]
    key_id = invoke({"action": "list-keys", "email": "ops@example.com"})["keys"][0]["id"]

    revoked = invoke({"action": "revoke-key", "email": "ops@example.com", "key_id": key_id})
    by_prefix = invoke({"action": "revoke-key", "email": "ops@example.com", "prefix": other[:10]})

    assert revoked["revoked"]["id"] == key_id and revoked["revoked"]["revoked_at"]
    assert by_prefix["revoked"]["prefix"] == other[:10]
    keys = invoke({"action": "list-keys", "email": "ops@example.com"})["keys"]
    assert all(k["revoked_at"] for k in keys)
    for gone in (key, other):
        with pytest.raises(Exception, match="not valid"):
            authenticate(container.store, gone)
    # Revoking again is no error and keeps the first revocation time
    again = invoke({"action": "revoke-key", "email": "ops@example.com", "key_id": key_id})
    assert again["revoked"]["revoked_at"] == revoked["revoked"]["revoked_at"]


def test_a_key_of_another_user_cannot_be_revoked_through_this_one(invoke: Any, container: Container) -> None:
    invoke({"action": "create-user", "email": "ops@example.com"})
    bob_key = invoke({"action": "create-user", "email": "bob@example.com"})["api_key"]
    bob_key_id = invoke({"action": "list-keys", "email": "bob@example.com"})["keys"][0]["id"]

    answer = invoke({"action": "revoke-key", "email": "ops@example.com", "key_id": bob_key_id})

    assert error_code(answer) == "KEY_NOT_FOUND"
    assert authenticate(container.store, bob_key).email == "bob@example.com"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("not an object", "INVALID_ADMIN_REQUEST"),
        ({"action": "drop-tables", "email": "ops@example.com"}, "UNKNOWN_ACTION"),
        ({"action": "create-user"}, "INVALID_ADMIN_REQUEST"),
        ({"action": "create-user", "email": "not-an-email"}, "INVALID_EMAIL"),
        ({"action": "create-key", "email": "nobody@example.com"}, "USER_NOT_FOUND"),
        ({"action": "list-keys", "email": "nobody@example.com"}, "USER_NOT_FOUND"),
        ({"action": "revoke-key", "email": "ops@example.com"}, "INVALID_KEY_REF"),
        (
            {"action": "revoke-key", "email": "ops@example.com", "key_id": "x", "prefix": "y"},
            "INVALID_KEY_REF",
        ),
        ({"action": "revoke-key", "email": "ops@example.com", "key_id": "123"}, "INVALID_KEY_ID"),
        ({"action": "revoke-key", "email": "ops@example.com", "prefix": "ytr_nope00"}, "KEY_NOT_FOUND"),
    ],
)
def test_bad_requests_get_the_error_shape_and_change_nothing(invoke: Any, event: Any, code: str) -> None:
    invoke({"action": "create-user", "email": "ops@example.com"})

    assert error_code(invoke(event)) == code
    keys = invoke({"action": "list-keys", "email": "ops@example.com"})["keys"]
    assert len(keys) == 1 and keys[0]["revoked_at"] is None


def test_an_unreachable_database_is_a_clear_error_without_internals(settings: Settings) -> None:
    broken = Container(settings.model_copy(update={"database_url": "postgresql://ytr:pw@127.0.0.1:9/ytr"}))
    handle = make_handler(lambda: broken)

    answer = handle({"action": "list-keys", "email": "ops@example.com"}, LambdaContext())

    assert error_code(answer) == "DATABASE_UNAVAILABLE"
    assert "127.0.0.1" not in answer["error"]["message"]


# ---------------------------------------------------------------------- revocation vs the key cache


@pytest.fixture
def both_apps(container: Container) -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """The REST app and the streaming service in one process, sharing one Container (and so one
    key cache), as the admin function's revocation would meet them in the same process."""
    with serve(create_rest_app(container)) as rest, serve(create_streaming_app(container)) as streaming:
        yield rest, streaming


def ws_status(server: LoopbackServer, key: str) -> int:
    """1000-ish when a WebSocket with this key is accepted, 1008 when refused."""
    url = server.base_url.replace("http://", "ws://") + f"/v1/sessions/{uuid.uuid4()}/ws"

    async def go() -> int:
        try:
            async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1
        except websockets.InvalidStatus as rejected:
            return 1008 if rejected.response.status_code == 403 else rejected.response.status_code
        return 0

    return asyncio.run(go())


def statuses(rest: LoopbackServer, streaming: LoopbackServer, key: str) -> tuple[int, int]:
    with client_for(rest.base_url, key) as r, client_for(streaming.base_url, key) as s:
        return (
            r.get("/v1/sessions").status_code,
            s.get(f"/v1/requests/{uuid.uuid4()}").status_code,  # 404 once authenticated
        )


def test_a_revoked_key_is_refused_at_once_by_rest_and_streaming_in_the_same_process(
    invoke: Any, container: Container, both_apps: tuple[LoopbackServer, LoopbackServer]
) -> None:
    rest, streaming = both_apps
    assert container.key_cache is not None and container.key_cache.ttl > 0
    key = invoke({"action": "create-user", "email": "ops@example.com"})["api_key"]
    # Given the key was just accepted (and so cached) by both apps
    assert statuses(rest, streaming, key) == (200, 404)

    # When it is revoked
    invoke({"action": "revoke-key", "email": "ops@example.com", "prefix": key[:10]})

    # Then both refuse it on the very next request, the WebSocket too
    assert statuses(rest, streaming, key) == (401, 401)
    with client_for(rest.base_url, key) as r:
        assert r.get("/v1/sessions").json()["error"]["code"] == "INVALID_API_KEY"
    assert ws_status(streaming, key) == 1008


def test_another_process_refuses_a_revoked_key_once_its_cache_entry_expires(
    invoke: Any, settings: Settings
) -> None:
    # Given another process (its own Container and key cache, with a clock we move)
    now = [1000.0]
    ttl = Settings.model_fields["auth_cache_seconds"].default
    assert ttl <= 5  # "a few seconds" is the bound documented for revocation elsewhere
    elsewhere = Container(settings, queue=RecordingQueue(), key_cache=KeyCache(ttl, clock=lambda: now[0]))
    key = invoke({"action": "create-user", "email": "ops@example.com"})["api_key"]
    try:
        with serve(create_rest_app(elsewhere)) as rest, client_for(rest.base_url, key) as client:
            assert client.get("/v1/sessions").status_code == 200

            # When the key is revoked by the admin function (another process)
            invoke({"action": "revoke-key", "email": "ops@example.com", "prefix": key[:10]})

            # Then this process refuses it as soon as its cache entry is older than the TTL
            now[0] += ttl + 0.01
            assert client.get("/v1/sessions").status_code == 401
    finally:
        elsewhere.engine.dispose()


def test_without_a_cache_entry_a_revoked_key_is_refused_everywhere(invoke: Any, settings: Settings) -> None:
    elsewhere = Container(settings, queue=RecordingQueue())
    key = invoke({"action": "create-user", "email": "ops@example.com"})["api_key"]
    invoke({"action": "revoke-key", "email": "ops@example.com", "prefix": key[:10]})
    try:
        with serve(create_rest_app(elsewhere)) as rest:
            response = httpx.get(rest.base_url + "/v1/sessions", headers={"X-API-Key": key})
        assert response.status_code == 401
    finally:
        elsewhere.engine.dispose()
