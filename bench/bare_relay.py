"""The baseline for the streaming benchmarks: the least a relay can do. A tiny Starlette app
whose ``GET /stream`` opens ``AsyncAnthropic(...).messages.stream`` to the upstream and yields each
text delta as one SSE frame, with no auth, no database, no coalescing and no durability.
``GET /hello`` yields one SSE frame at once (the floor of an SSE response on this machine).

``POST /start`` then ``GET /follow/{id}`` is the same relay in our two-step shape (the POST starts
the upstream call in a task and answers with the stream's URL; the GET relays what it produced), still
with nothing else: the floor of POST-then-SSE itself, so the benchmarks can tell the cost of the shape
from the cost of our implementation.

    python -m bench.bare_relay --port 8100 --upstream http://127.0.0.1:PORT --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

MODEL = "claude-sonnet-4-6"


def create_app(upstream: str, api_key: str) -> Starlette:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = anthropic.Timeout(60.0, connect=10.0)
        # The same client construction as our adapter (shared/ytresearch/llm/anthropic_model.py).
        state["client"] = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=upstream,
            max_retries=0,
            timeout=timeout,
            http_client=anthropic.DefaultAsyncHttpxClient(timeout=timeout),
        )
        yield
        await state["client"].close()

    async def stream(request: Request) -> StreamingResponse:
        client: anthropic.AsyncAnthropic = state["client"]

        async def frames() -> AsyncIterator[str]:
            async with client.messages.stream(
                model=MODEL, max_tokens=4096, messages=[{"role": "user", "content": "q"}]
            ) as upstream_stream:
                async for text in upstream_stream.text_stream:
                    yield "event: token\ndata: " + json.dumps({"text": text}) + "\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    started: dict[str, asyncio.Queue[str | None]] = {}
    ids = itertools.count(1)

    async def produce(queue: asyncio.Queue[str | None]) -> None:
        client: anthropic.AsyncAnthropic = state["client"]
        try:
            async with client.messages.stream(
                model=MODEL, max_tokens=4096, messages=[{"role": "user", "content": "q"}]
            ) as upstream_stream:
                async for text in upstream_stream.text_stream:
                    queue.put_nowait(text)
        finally:
            queue.put_nowait(None)

    async def start(request: Request) -> JSONResponse:
        stream_id = str(next(ids))
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        started[stream_id] = queue
        state.setdefault("tasks", set()).add(task := asyncio.create_task(produce(queue)))
        task.add_done_callback(state["tasks"].discard)
        return JSONResponse({"stream_url": f"/follow/{stream_id}"}, status_code=201)

    async def follow(request: Request) -> StreamingResponse:
        queue = started.pop(request.path_params["stream_id"])

        async def frames() -> AsyncIterator[str]:
            while (text := await queue.get()) is not None:
                yield "event: token\ndata: " + json.dumps({"text": text}) + "\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    async def hello(request: Request) -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            yield 'event: hello\ndata: {"ok":true}\n\n'

        return StreamingResponse(frames(), media_type="text/event-stream")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/stream", stream),
            Route("/start", start, methods=["POST"]),
            Route("/follow/{stream_id}", follow),
            Route("/hello", hello),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()
    # The same server settings as streaming_service/serve.py (uvloop and httptools when present).
    uvicorn.run(
        create_app(args.upstream, args.api_key),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
