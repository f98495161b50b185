"""Production entry point of the streaming service (the container's CMD).

uvicorn, plus a drain on SIGTERM: health turns 503 so the load balancer stops sending traffic, no
new streams start, running replies get YTR_DRAIN_GRACE_SECONDS to finish, then remaining readers
are told to reconnect (SSE `retry:` + a `reconnect` event) and the process exits. A second signal
exits at once.

Logs are JSON lines on stdout in the Lambdas' shape (uvicorn's included), with EMF metrics among
them, written by a background thread (``ytresearch.observability.logs``).

    python -m streaming_service.serve --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("streaming_service")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace: float) -> None:
        super().__init__(config)
        self.grace = grace
        self.drain_started = False
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_started or self.loop is None or sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        self.drain_started = True
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.drain()))  # type: ignore[union-attr]

    async def drain(self) -> None:
        app = self.config.loaded_app
        manager = getattr(getattr(app, "state", None), "manager", None)
        if manager is None:  # uvicorn wraps the app; find FastAPI's state through the middleware
            manager = _find_manager(app)
        if manager is not None:
            await manager.drain(self.grace)
        self.should_exit = True


def _find_manager(app: Any) -> Any:
    for _ in range(10):
        state = getattr(app, "state", None)
        if state is not None and hasattr(state, "manager"):
            return state.manager
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the streaming service.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    from ytresearch.observability.logs import configure_service_logging

    configure_service_logging()  # before anything logs, uvicorn included

    from streaming_service.app import create_app
    from ytresearch.config import get_settings

    settings = get_settings()
    config = uvicorn.Config(
        create_app(),
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=10,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through ours (JSON)
        access_log=False,  # the request middleware logs each request, with its request id
    )
    server = DrainingServer(config, grace=settings.drain_grace_seconds)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
