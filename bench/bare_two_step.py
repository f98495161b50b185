"""The baseline of ``bench/chat_cpu.py``: the least a durable two-step chat relay can do.

``POST /chat`` starts the upstream call (``AsyncAnthropic(...).messages.stream``, the same client
construction as our adapter) in a task, keeps nothing but an in-memory dict entry and answers 201
with the stream's URL, as ours does. ``GET /stream/{id}`` relays each upstream text delta as one SSE
``token`` frame (``--sdk stream``, the default: ``messages.stream().text_stream``; ``--sdk raw``:
the SDK's untyped event stream, as our adapter reads it, which costs less per delta); when the
reply ends, the whole text is saved with one ``INSERT`` (SQLAlchemy Core, in a worker thread, on
the same database as ours) and a ``complete`` frame carries it. No auth, no limits, no context, no
event log, no coalescing, no logging, no metrics: "start + stream + final save" and nothing else,
so its CPU per chat is the floor to compare ours with.

    python -m bench.bare_two_step --port 8101 --upstream http://127.0.0.1:PORT --api-key KEY \
        --db-url sqlite:////tmp/bare.db
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import uvicorn
from sqlalchemy import Engine, create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

MODEL = "claude-sonnet-4-6"
CREATE = (
    "CREATE TABLE IF NOT EXISTS bare_replies (id INTEGER PRIMARY KEY, text TEXT NOT NULL, saved_at FLOAT)"
)
INSERT = text("INSERT INTO bare_replies (id, text, saved_at) VALUES (:id, :text, :at)")


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+pg8000://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    # ssl_context=False: no TLS probe (a throwaway loopback server); the pool is kept warm.
    return create_engine(url, pool_size=10, connect_args={"ssl_context": False})


def frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: " + json.dumps(data) + "\n\n"


def create_app(upstream: str, api_key: str, db_url: str, sdk: str = "stream") -> Starlette:
    state: dict[str, Any] = {}
    started: dict[str, asyncio.Queue[str | Exception | None]] = {}
    tasks: set[asyncio.Task[None]] = set()
    ids = itertools.count(1)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = anthropic.Timeout(60.0, connect=10.0)
        state["client"] = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=upstream,
            max_retries=0,
            timeout=timeout,
            http_client=anthropic.DefaultAsyncHttpxClient(timeout=timeout),
        )
        engine = state["engine"] = make_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text(CREATE))
        yield
        await state["client"].close()
        engine.dispose()

    def save(reply_id: int, reply: str) -> None:
        with state["engine"].begin() as conn:
            conn.execute(INSERT, {"id": reply_id, "text": reply, "at": time.time()})

    async def deltas() -> AsyncIterator[str]:
        client: anthropic.AsyncAnthropic = state["client"]
        params: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "q"}],
        }
        if sdk == "stream":
            async with client.messages.stream(**params) as upstream_stream:
                async for delta in upstream_stream.text_stream:
                    yield delta
            return
        # "raw": the SDK's event stream without typed models, as our adapter reads it
        # (shared/ytresearch/llm/anthropic_model.py, _open_event_stream).
        upstream = await client.post(
            "/v1/messages",
            body={**params, "stream": True},
            cast_to=object,
            stream=True,
            stream_cls=anthropic.AsyncStream[object],
        )
        async with upstream:
            event: dict[str, Any]
            async for event in upstream:  # type: ignore[assignment]  # JSON objects (cast_to=object)
                if event.get("type") == "content_block_delta" and (delta := event["delta"].get("text")):
                    yield delta

    async def produce(reply_id: int, queue: asyncio.Queue[str | Exception | None]) -> None:
        parts: list[str] = []
        try:
            async for delta in deltas():
                parts.append(delta)
                queue.put_nowait(delta)
            await asyncio.to_thread(save, reply_id, "".join(parts))
        except Exception as exc:  # told to the reader as an error frame, not a short reply
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(None)

    async def start(request: Request) -> JSONResponse:
        reply_id = next(ids)
        queue: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        started[str(reply_id)] = queue
        tasks.add(task := asyncio.create_task(produce(reply_id, queue)))
        task.add_done_callback(tasks.discard)
        return JSONResponse({"request_id": reply_id, "stream_url": f"/stream/{reply_id}"}, status_code=201)

    async def stream(request: Request) -> StreamingResponse:
        queue = started.pop(request.path_params["reply_id"])

        async def frames() -> AsyncIterator[str]:
            parts = []
            while (delta := await queue.get()) is not None:
                if isinstance(delta, Exception):
                    yield frame("error", {"code": type(delta).__name__})
                    return
                parts.append(delta)
                yield frame("token", {"text": delta})
            yield frame("complete", {"text": "".join(parts)})

        return StreamingResponse(frames(), media_type="text/event-stream")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/chat", start, methods=["POST"]),
            Route("/stream/{reply_id}", stream),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--db-url", required=True, help="SQLAlchemy URL (sqlite:///... or postgresql://...)")
    parser.add_argument(
        "--sdk",
        default="stream",
        choices=["stream", "raw"],
        help="stream: messages.stream().text_stream (default); raw: the SDK's untyped event stream, as ours",
    )
    args = parser.parse_args()
    # The same server settings as streaming_service/serve.py (uvloop and httptools when present).
    uvicorn.run(
        create_app(args.upstream, args.api_key, args.db_url, args.sdk),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
