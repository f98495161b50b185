"""The streaming service: FastAPI app for the SSE and WebSocket paths a Lambda can't serve."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from streaming_service.chat_requests import ChatRequestManager
from ytresearch import __version__
from ytresearch.bootstrap import Container
from ytresearch.web.errors import install_error_handlers
from ytresearch.web.middleware import install_middleware


def create_app(container: Container | None = None, *, extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The streaming app. ``extra_routers`` are mounted too (the local run adds the REST routes)."""
    container = container or Container()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager = ChatRequestManager(
            container.store,
            container.settings,
            container.chat_model,
            metrics=container.metrics,
            agent=container.agent,
        )
        app.state.manager = manager
        await manager.start()
        # Everything alive now (modules, the SDK, SQLAlchemy's metadata) lives as long as the
        # process: frozen, it is no longer walked by every full collection, which every stream
        # waits through (figures: docs/benchmarks.md, "Figures moved out of the code").
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await manager.stop()
            container.engine.dispose()

    app = FastAPI(title="YouTube Research Tool streaming API", version=__version__, lifespan=lifespan)
    app.state.container = container
    install_error_handlers(app)
    from streaming_service.page import router as page_router
    from streaming_service.routes import router
    from streaming_service.ws import router as ws_router

    app.include_router(router)
    app.include_router(ws_router)
    app.include_router(page_router)
    for extra in extra_routers:
        app.include_router(extra)
    install_middleware(app, container.settings)  # the REST app's: request context, body limit, CORS
    return app
