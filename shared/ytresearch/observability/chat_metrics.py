"""The ``ChatModel`` port, measured: time to first token and token usage of every model call.

The Container wraps the model it builds in this decorator, so every caller is measured the same
way without knowing it: the four chat transports (through the chat engine and the request
manager), synchronous chat and ingest summaries (``purpose`` tells them apart). Time to first
token runs from the call to the first text delta, retries before the first token included.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator

from ytresearch.observability.metrics import (
    CACHE_READ_TOKENS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    TIME_TO_FIRST_TOKEN,
    MetricPoint,
    Metrics,
)
from ytresearch.ports import ChatModel, Completion, ModelEvent, ModelRequest, StreamFinished, TextDelta, Usage


class MeteredChatModel:
    def __init__(self, inner: ChatModel, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def paused_for(self) -> int | None:
        return self.inner.paused_for()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        started = time.monotonic()
        first_token = False
        async with contextlib.aclosing(self.inner.stream(request)) as events:
            async for event in events:
                if not first_token and isinstance(event, TextDelta):
                    first_token = True
                    elapsed_ms = (time.monotonic() - started) * 1000
                    self.metrics.milliseconds(TIME_TO_FIRST_TOKEN, elapsed_ms, purpose=request.purpose)
                elif isinstance(event, StreamFinished):
                    self._usage(request, event.usage)
                yield event

    async def complete(self, request: ModelRequest) -> Completion:
        completion = await self.inner.complete(request)
        self._usage(request, completion.usage)
        return completion

    def _usage(self, request: ModelRequest, usage: Usage) -> None:
        self.metrics.emit(
            [
                MetricPoint(INPUT_TOKENS, usage.input_tokens),
                MetricPoint(OUTPUT_TOKENS, usage.output_tokens),
                MetricPoint(CACHE_READ_TOKENS, usage.cache_read_tokens),
            ],
            {"purpose": request.purpose},
        )
