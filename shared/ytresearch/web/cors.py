"""The one CORS policy, for the REST app and the streaming service alike: the origins in
``settings.cors_origins`` (YTR_CORS_ORIGINS) may call every route from a browser; none configured,
no CORS headers at all. Credentials travel in headers (X-API-Key, Authorization), never cookies,
so ``allow_credentials`` stays off. API Gateway answers the REST API's preflights with the same
lists (infra/components/api.py)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

ALLOW_METHODS = ("GET", "POST", "PATCH", "DELETE")
ALLOW_HEADERS = ("X-API-Key", "Authorization", "Content-Type", "Last-Event-ID")
EXPOSE_HEADERS = ("X-Request-ID", "Retry-After")
MAX_AGE_SECONDS = 600


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer preflights and add CORS headers for ``origins`` (nothing when there are none)."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_credentials=False,
        allow_methods=list(ALLOW_METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        max_age=MAX_AGE_SECONDS,
    )
