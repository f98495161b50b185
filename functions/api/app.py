"""The CRUD FastAPI application (served by Lambda through Mangum, or locally by uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from functions.api.routes import health_router, router
from ytresearch import __version__
from ytresearch.bootstrap import Container
from ytresearch.web.errors import install_error_handlers
from ytresearch.web.middleware import BodySizeLimitMiddleware, RequestContextMiddleware


def create_app(container: Container | None = None) -> FastAPI:
    container = container or Container()
    app = FastAPI(
        title="YouTube Research Tool API",
        version=__version__,
        description="Research sessions over YouTube videos, with Claude summaries and chat.",
    )
    app.state.container = container
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(router)
    install_middleware(app, container)
    return app


def install_middleware(app: FastAPI, container: Container) -> None:
    # Added last = outermost: the request context wraps everything, including the body limit.
    if container.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=container.settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=container.settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
