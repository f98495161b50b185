"""Authentication dependencies: X-API-Key today; every route depends on CurrentUser."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from ytresearch.bootstrap import Container
from ytresearch.services.users import AuthUser, authenticate

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Your API key (ytr admin create-user prints one).",
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def current_user(container: ContainerDep, api_key: str | None = Security(api_key_header)) -> AuthUser:
    return authenticate(container.store, api_key)


CurrentUser = Annotated[AuthUser, Depends(current_user)]
