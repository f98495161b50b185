"""Authentication dependencies: every route depends on CurrentUser.

Two credentials are accepted, on REST, SSE and (through ``authenticate_credentials``) the
WebSocket:

- ``Authorization: Bearer <access token>``: a Cognito access token, verified by
  ``ytresearch.web.jwt`` and mapped to a user by its ``sub`` (created on first sign-in);
- ``X-API-Key: <key>``: an API key for scripts, checked against the stored digests.

A request that sends a bearer token is judged by the token alone: a bad token is a 401 even when
an API key is present too, so a client never silently acts as someone else.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ytresearch.bootstrap import Container
from ytresearch.errors import DependencyUnavailableError, UnauthorizedError
from ytresearch.observability.context import user_id_var
from ytresearch.services.users import AuthUser, authenticate, authenticate_external, cached_key_user

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Your API key (ytr-admin create-user prints one).",
)
bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A Cognito access token with the API scope (ytr login gets one).",
)


async def get_container(request: Request) -> Container:
    # async, like every cheap dependency here: FastAPI runs a plain ``def`` dependency in its
    # thread pool, and under load each such hop waits for the GIL.
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for no header or another
    scheme (which the caller may ignore when it has an API key)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if not token:
        raise UnauthorizedError("the Authorization header holds no token", code="INVALID_TOKEN")
    return token


def authenticate_token(container: Container, token: str) -> AuthUser:
    """The user a Cognito access token belongs to; 401 INVALID_TOKEN / TOKEN_EXPIRED otherwise."""
    verifier = container.token_verifier
    if verifier is None:
        raise UnauthorizedError(
            "this server does not accept bearer tokens (no Cognito issuer is configured); "
            "send an API key in the X-API-Key header",
            code="TOKEN_AUTH_NOT_CONFIGURED",
        )
    from ytresearch.web.jwt import KeySetUnavailableError, TokenError

    try:
        access = verifier.verify(token)
    except TokenError as exc:
        what = "access token has expired" if exc.code == "TOKEN_EXPIRED" else "access token is not valid"
        raise UnauthorizedError(f"{what}: {exc.reason}", code=exc.code) from None
    except KeySetUnavailableError:
        raise DependencyUnavailableError(
            "sign-in tokens cannot be checked right now (the identity provider's keys are "
            "unavailable); try again shortly or use an API key",
            code="AUTH_UNAVAILABLE",
        ) from None
    return authenticate_external(container.store, access.subject, access.username)


def authenticate_credentials(
    container: Container, *, api_key: str | None, authorization: str | None
) -> AuthUser:
    """The user behind a request's credentials: the bearer token when one is sent, else the
    API key. Raises UnauthorizedError (401) for missing or bad credentials."""
    token = bearer_token(authorization)
    if token is not None:
        return authenticate_token(container, token)
    if authorization and not api_key:
        raise UnauthorizedError(
            "the Authorization header must be 'Bearer <access token>'", code="INVALID_TOKEN"
        )
    return authenticate(container.store, api_key, container.key_cache)


async def current_user(
    request: Request,
    container: ContainerDep,
    api_key: str | None = Security(api_key_header),
    _bearer: HTTPAuthorizationCredentials | None = Security(bearer_scheme),  # documents the scheme
) -> AuthUser:
    authorization = request.headers.get("authorization")
    user = None
    if api_key and not authorization and container.key_cache is not None:
        # A key verified in the last few seconds (a chat's POST, then its stream): from memory.
        user = cached_key_user(container.key_cache, api_key)
    if user is None:
        # Anything else may read the database or fetch the identity provider's keys: off the loop.
        user = await run_in_threadpool(
            authenticate_credentials, container, api_key=api_key, authorization=authorization
        )
    mark_user(request.scope, user)
    return user


def mark_user(scope: MutableMapping[str, Any], user: AuthUser) -> None:
    """Name the authenticated user on the request (its log line) and in this task's log context
    (every line logged while it is handled, and by the tasks it starts): the id only."""
    scope.setdefault("state", {})["user_id"] = str(user.id)
    user_id_var.set(str(user.id))


CurrentUser = Annotated[AuthUser, Depends(current_user)]
