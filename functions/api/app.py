"""The CRUD FastAPI application (served by Lambda through Mangum, or locally by uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI

from functions.api.routes import health_router, router
from ytresearch import __version__
from ytresearch.bootstrap import Container
from ytresearch.web.errors import install_error_handlers
from ytresearch.web.middleware import install_middleware


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
    install_middleware(app, container.settings)  # request context, body limit, CORS
    return app
