"""Cognito access tokens (``Authorization: Bearer``) on REST, SSE and the WebSocket, beside API keys.

The issuer is a local fake (``tests/fakes/cognito.py``): locally generated RSA keys served as JWKS
on 127.0.0.1, tokens signed with them. The app is the real streaming service with the REST routes
(as ``make run`` serves it) on uvicorn, driven by httpx and websockets, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from functions.api.app import create_app as create_crud_app
from local_run.app import create_local_app
from tests.fakes.cognito import CLIENT_ID, FakeCognito, SigningKey
from tests.support.clients import client_for
from tests.support.queue import RecordingQueue
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import User

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cognito() -> Iterator[FakeCognito]:
    with FakeCognito() as fake:
        yield fake


@pytest.fixture
def container(database_url: str, cognito: FakeCognito) -> Iterator[Container]:
    settings = test_settings(
        database_url,
        cognito_issuer=cognito.issuer,
        cognito_client_id=CLIENT_ID,
        offline_token_delay_seconds=0,
    )
    c = Container(settings, queue=RecordingQueue())
    yield c
    c.engine.dispose()


@pytest.fixture
def server(container: Container) -> Iterator[LoopbackServer]:
    with serve(create_local_app(container)) as s:
        yield s


def bearer(server: LoopbackServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def ws_url(server: LoopbackServer, sid: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/sessions/{sid}/ws"


async def _until_terminal(ws: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1]["type"] not in ("complete", "error", "cancelled"):
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    return frames


def ws_chat(
    server: LoopbackServer,
    sid: str,
    *,
    headers: dict[str, str] | None = None,
    first_frame: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Open the chat socket, authenticate, ask one question; the frames up to the answer."""

    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(server, sid), additional_headers=headers or {}) as ws:
            if first_frame is not None:
                await ws.send(json.dumps(first_frame))
            ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if ready["type"] != "ready":
                return [ready]
            await ws.send(json.dumps({"type": "message", "content": "What is this about?"}))
            return [ready, *await _until_terminal(ws)]

    return asyncio.run(go())


def ws_close_code(
    server: LoopbackServer,
    sid: str,
    *,
    headers: dict[str, str] | None = None,
    first_frame: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """How the server ends a socket whose credentials it refuses: (close code, reason).
    A refused handshake (credentials in a header) is reported as 1008 like the close frame."""

    async def go() -> tuple[int, str]:
        try:
            async with websockets.connect(ws_url(server, sid), additional_headers=headers or {}) as ws:
                if first_frame is not None:
                    await ws.send(json.dumps(first_frame))
                frame = await asyncio.wait_for(ws.recv(), 10)
                return 0, f"unexpected frame {frame!r}"
        except ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (-1, "")
        except websockets.InvalidStatus as refused:
            status = refused.response.status_code
            return (1008, "handshake refused") if status == 403 else (status, "")

    return asyncio.run(go())


def new_session(client: httpx.Client) -> str:
    response = client.post("/v1/sessions", json={"title": "token research"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# ------------------------------------------------------------------ a valid token everywhere


def test_a_valid_token_works_on_rest(server: LoopbackServer, cognito: FakeCognito) -> None:
    with bearer(server, cognito.token()) as api:
        sid = new_session(api)
        listed = api.get("/v1/sessions").json()["items"]
        detail = api.get(f"/v1/sessions/{sid}")

    assert [s["id"] for s in listed] == [sid]
    assert detail.status_code == 200 and detail.json()["title"] == "token research"


def test_a_valid_token_works_on_the_crud_app_too(container: Container, cognito: FakeCognito) -> None:
    # The CRUD Lambda's app (behind API Gateway) shares the dependency; check it directly.
    with serve(create_crud_app(container)) as crud, bearer(crud, cognito.token()) as api:
        assert api.post("/v1/sessions", json={}).status_code == 201
        assert len(api.get("/v1/sessions").json()["items"]) == 1


def test_a_valid_token_works_on_post_then_sse(server: LoopbackServer, cognito: FakeCognito) -> None:
    with bearer(server, cognito.token()) as api:
        sid = new_session(api)
        started = api.post(f"/v1/sessions/{sid}/chat", json={"message": "What is this about?"})
        assert started.status_code == 201, started.text
        status, events, _ = read_stream(api, "GET", started.json()["stream_url"])

    assert status == 200
    assert events[-1].event == "complete" and events[-1].json()["text"]


def test_a_valid_token_works_on_one_step_sse(server: LoopbackServer, cognito: FakeCognito) -> None:
    with bearer(server, cognito.token()) as api:
        sid = new_session(api)
        status, events, _ = read_stream(
            api, "POST", f"/v1/sessions/{sid}/messages/stream", json={"message": "q"}
        )

    assert status == 200 and events[-1].event == "complete"


def test_a_valid_token_works_on_the_websocket_header(server: LoopbackServer, cognito: FakeCognito) -> None:
    token = cognito.token()
    with bearer(server, token) as api:
        sid = new_session(api)

    frames = ws_chat(server, sid, headers={"Authorization": f"Bearer {token}"})

    assert frames[0]["type"] == "ready" and frames[-1]["type"] == "complete"


def test_a_valid_token_works_in_the_websocket_first_frame(
    server: LoopbackServer, cognito: FakeCognito
) -> None:
    token = cognito.token()
    with bearer(server, token) as api:
        sid = new_session(api)

    frames = ws_chat(server, sid, first_frame={"type": "auth", "token": token})

    assert frames[0]["type"] == "ready" and frames[-1]["type"] == "complete"


# ------------------------------------------------------------------ bad tokens, everywhere

BAD_TOKENS: dict[str, tuple[Callable[[FakeCognito], str], str]] = {
    "wrong issuer": (lambda c: c.token(iss=c.endpoint + "/us-east-1_SomeoneElse"), "INVALID_TOKEN"),
    "id token": (lambda c: c.token(token_use="id", aud=CLIENT_ID), "INVALID_TOKEN"),
    "wrong client": (lambda c: c.token(client_id="another-app-client"), "INVALID_TOKEN"),
    "missing scope": (lambda c: c.token(scope="aws.cognito.signin.user.admin openid"), "INVALID_TOKEN"),
    "expired": (
        lambda c: c.token(exp=int(time.time()) - 300, iat=int(time.time()) - 4000),
        "TOKEN_EXPIRED",
    ),
    "alg none": (lambda c: c.unsigned_token(), "INVALID_TOKEN"),
    "hs256 with the public key": (lambda c: c.hmac_with_public_key_token(), "INVALID_TOKEN"),
    "unknown kid": (lambda c: c.token(key=SigningKey("not-published")), "INVALID_TOKEN"),
    "tampered signature": (lambda c: c.tampered(c.token(), sub=str(uuid.uuid4())), "INVALID_TOKEN"),
    "garbage": (lambda c: "definitely.not.ajwt", "INVALID_TOKEN"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused_on_rest_sse_and_websocket(
    server: LoopbackServer, cognito: FakeCognito, case: str
) -> None:
    # Given a real user with a session and a chat request (so only auth can say no)
    with bearer(server, cognito.token()) as owner:
        sid = new_session(owner)
        rid = owner.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]
    make_token, code = BAD_TOKENS[case]
    token = make_token(cognito)

    with bearer(server, token) as api:
        # REST
        rest = api.get("/v1/sessions")
        assert rest.status_code == 401, rest.text
        assert rest.json()["error"]["code"] == code
        assert set(rest.json()["error"]) == {"code", "message", "details"}
        assert api.get(f"/v1/sessions/{sid}").status_code == 401
        # SSE: the stream of someone's request, and POST chat
        status, _, meta = read_stream(api, "GET", f"/v1/streams/{rid}")
        assert (status, meta["body"]["error"]["code"]) == (401, code)
        chat = api.post(f"/v1/sessions/{sid}/chat", json={"message": "q"})
        assert (chat.status_code, chat.json()["error"]["code"]) == (401, code)
        status, _, meta = read_stream(
            api, "POST", f"/v1/sessions/{sid}/messages/stream", json={"message": "q"}
        )
        assert status == 401
    # WebSocket: header and first frame
    assert ws_close_code(server, sid, headers={"Authorization": f"Bearer {token}"})[0] == 1008
    assert ws_close_code(server, sid, first_frame={"type": "auth", "token": token}) == (
        1008,
        "token expired" if code == "TOKEN_EXPIRED" else "invalid token",
    )


def test_a_bad_token_is_refused_even_with_a_good_api_key(
    server: LoopbackServer, container: Container, cognito: FakeCognito
) -> None:
    _, key = make_user(container)
    headers = {"Authorization": f"Bearer {cognito.token(client_id='other')}", "X-API-Key": key}

    response = httpx.get(f"{server.base_url}/v1/sessions", headers=headers)

    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TOKEN"


@pytest.mark.parametrize("header", ["Bearer", "BEARER", "Basic dXNlcjpwYXNz", "Token abc"])
def test_malformed_authorization_headers_are_refused(server: LoopbackServer, header: str) -> None:
    response = httpx.get(f"{server.base_url}/v1/sessions", headers={"Authorization": header})

    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TOKEN"


def test_an_empty_token_in_the_first_frame_closes_the_socket(
    server: LoopbackServer, container: Container
) -> None:
    _, key = make_user(container)
    with client_for(server.base_url, key) as api:
        sid = new_session(api)

    assert ws_close_code(server, sid, first_frame={"type": "auth", "token": ""})[0] == 1008
    assert ws_close_code(server, sid, first_frame={"type": "auth", "token": 42})[0] == 1008


# ------------------------------------------------------------------ users by subject


def test_one_users_token_never_reaches_another_users_data(
    server: LoopbackServer, cognito: FakeCognito
) -> None:
    alice, mallory = cognito.token(), cognito.token()
    with bearer(server, alice) as a:
        sid = new_session(a)
        rid = a.post(f"/v1/sessions/{sid}/chat", json={"message": "q"}).json()["request_id"]

    with bearer(server, mallory) as m:
        assert m.get("/v1/sessions").json()["items"] == []
        for method, path in (
            ("GET", f"/v1/sessions/{sid}"),
            ("GET", f"/v1/sessions/{sid}/messages"),
            ("GET", f"/v1/streams/{rid}"),
            ("GET", f"/v1/requests/{rid}"),
            ("POST", f"/v1/requests/{rid}/cancel"),
            ("POST", f"/v1/sessions/{sid}/chat"),
            ("DELETE", f"/v1/sessions/{sid}"),
        ):
            response = m.request(method, path, json={"message": "x"} if path.endswith("/chat") else None)
            assert response.status_code == 404, (method, path, response.text)
    frames = ws_chat(server, sid, headers={"Authorization": f"Bearer {mallory}"})
    assert frames[0]["code"] == "SESSION_NOT_FOUND"
    with bearer(server, alice) as a:
        assert a.get(f"/v1/sessions/{sid}").status_code == 200  # untouched


def test_the_same_subject_is_the_same_user_across_tokens(
    server: LoopbackServer, cognito: FakeCognito, container: Container
) -> None:
    sub = str(uuid.uuid4())
    with bearer(server, cognito.token(sub=sub)) as first:
        sid = new_session(first)
    with bearer(server, cognito.token(sub=sub, key=cognito.keys[1])) as second:
        assert second.get(f"/v1/sessions/{sid}").status_code == 200

    with container.store.transaction() as repo:
        user = repo.get_user_by_external_id(sub)
        assert user is not None and user.email == f"{sub}@cognito"


def test_first_sign_in_takes_the_email_from_the_username_claim(
    server: LoopbackServer, cognito: FakeCognito, container: Container
) -> None:
    sub = str(uuid.uuid4())
    with bearer(server, cognito.token(sub=sub, username="Carol@Example.com")) as api:
        assert api.get("/v1/sessions").status_code == 200

    with container.store.transaction() as repo:
        user = repo.get_user_by_external_id(sub)
        assert user is not None and user.email == "carol@example.com"


def test_a_token_user_never_takes_over_an_api_key_users_address(
    server: LoopbackServer, cognito: FakeCognito, container: Container
) -> None:
    # Given an API-key user dave@example.com with a session
    _, key = make_user(container, "dave@example.com")
    with client_for(server.base_url, key) as keyed:
        dave_sid = new_session(keyed)
    sub = str(uuid.uuid4())

    # When a token whose username claims the same address signs in
    with bearer(server, cognito.token(sub=sub, username="dave@example.com")) as api:
        sessions = api.get("/v1/sessions").json()["items"]
        foreign = api.get(f"/v1/sessions/{dave_sid}")

    # Then it is a separate user with a placeholder address
    assert sessions == [] and foreign.status_code == 404
    with container.store.transaction() as repo:
        user = repo.get_user_by_external_id(sub)
        assert user is not None and user.email == f"{sub}@cognito"


def test_a_linked_identity_signs_in_as_the_existing_user(
    server: LoopbackServer, cognito: FakeCognito, container: Container
) -> None:
    from ytresearch.services.users import link_external_identity

    _, key = make_user(container, "erin@example.com")
    with client_for(server.base_url, key) as keyed:
        sid = new_session(keyed)
    sub = str(uuid.uuid4())
    with bearer(server, cognito.token(sub=sub)) as api:
        assert api.get("/v1/sessions").json()["items"] == []  # provisioned as a placeholder user

    _, moved_from = link_external_identity(container.store, "erin@example.com", sub)

    assert moved_from == f"{sub}@cognito"
    with bearer(server, cognito.token(sub=sub)) as api:
        assert [s["id"] for s in api.get("/v1/sessions").json()["items"]] == [sid]


def test_concurrent_first_requests_provision_one_user(
    server: LoopbackServer, cognito: FakeCognito, container: Container
) -> None:
    sub = str(uuid.uuid4())
    tokens = [cognito.token(sub=sub) for _ in range(8)]

    def call(token: str) -> int:
        return httpx.get(
            f"{server.base_url}/v1/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, tokens))

    assert statuses == [200] * 8
    with container.store.transaction() as repo:
        count = repo.session.scalar(select(func.count()).select_from(User).where(User.external_id == sub))
    assert count == 1


# ------------------------------------------------------------------ API keys alongside


def test_api_keys_keep_working_beside_tokens(
    server: LoopbackServer, container: Container, cognito: FakeCognito
) -> None:
    _, key = make_user(container)
    with client_for(server.base_url, key) as keyed, bearer(server, cognito.token()) as tokened:
        key_sid = new_session(keyed)
        token_sid = new_session(tokened)

        assert [s["id"] for s in keyed.get("/v1/sessions").json()["items"]] == [key_sid]
        assert [s["id"] for s in tokened.get("/v1/sessions").json()["items"]] == [token_sid]
        status, events, _ = read_stream(
            keyed, "POST", f"/v1/sessions/{key_sid}/messages/stream", json={"message": "q"}
        )
        assert status == 200 and events[-1].event == "complete"
    assert ws_chat(server, key_sid, headers={"X-API-Key": key})[-1]["type"] == "complete"
    assert ws_chat(server, key_sid, first_frame={"type": "auth", "api_key": key})[-1]["type"] == "complete"
    missing = httpx.get(f"{server.base_url}/v1/sessions")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "MISSING_API_KEY"


# ------------------------------------------------------------------ configuration and operations


def test_bearer_tokens_are_refused_clearly_when_not_configured(
    database_url: str, cognito: FakeCognito
) -> None:
    container = Container(test_settings(database_url), queue=RecordingQueue())
    try:
        with serve(create_local_app(container)) as plain:
            _, key = make_user(container)
            with client_for(plain.base_url, key) as keyed:
                sid = new_session(keyed)
            response = httpx.get(
                f"{plain.base_url}/v1/sessions", headers={"Authorization": f"Bearer {cognito.token()}"}
            )
            close = ws_close_code(plain, sid, first_frame={"type": "auth", "token": cognito.token()})
    finally:
        container.engine.dispose()

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "TOKEN_AUTH_NOT_CONFIGURED" and "X-API-Key" in error["message"]
    assert close[0] == 1008


def test_the_key_set_is_fetched_once_for_many_requests(server: LoopbackServer, cognito: FakeCognito) -> None:
    before = cognito.jwks_fetches
    with bearer(server, cognito.token()) as api:
        for _ in range(5):
            assert api.get("/v1/sessions").status_code == 200

    assert cognito.jwks_fetches - before == 1


def test_an_unreachable_issuer_is_a_503_not_a_401(database_url: str, cognito: FakeCognito) -> None:
    settings = test_settings(
        database_url, cognito_issuer="http://127.0.0.1:9/us-east-1_Nowhere", cognito_client_id=CLIENT_ID
    )
    container = Container(settings, queue=RecordingQueue())
    try:
        with serve(create_local_app(container)) as s:
            token = cognito.token(iss="http://127.0.0.1:9/us-east-1_Nowhere")
            response = httpx.get(f"{s.base_url}/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    finally:
        container.engine.dispose()

    assert response.status_code == 503 and response.json()["error"]["code"] == "AUTH_UNAVAILABLE"


def test_tokens_never_reach_the_logs(
    server: LoopbackServer, cognito: FakeCognito, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = cognito.token(client_id="another-app-client")
    good = cognito.token()

    with bearer(server, bad) as api:
        assert api.get("/v1/sessions").status_code == 401
    with bearer(server, good) as api:
        assert api.get("/v1/sessions").status_code == 200

    assert "another app client" in caplog.text  # the refusal is logged, with its reason
    for token in (bad, good):
        for part in token.split("."):
            assert part not in caplog.text
