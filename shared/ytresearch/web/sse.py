"""An SSE response that bounds what a slow client can cost: no buffering of its own (the event
source is pulled one event at a time), a send timeout, and early exit when the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # proxies must not hold frames back
    (b"connection", b"keep-alive"),
]


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[str], *, send_timeout: float = 30.0, status: int = 200) -> None:
        super().__init__(status_code=status)
        self.frames = frames
        self.send_timeout = send_timeout
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": SSE_HEADERS})
            async for frame in self.frames:
                if gone.is_set():
                    break
                async with asyncio.timeout(self.send_timeout):
                    await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            log.info("closing a stream whose client stopped reading")
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await self.frames.aclose()  # type: ignore[attr-defined]
