"""A circuit breaker around a ChatModel: after repeated dependency failures it opens and fails
fast (MODEL_CIRCUIT_OPEN, retryable, HTTP 503) instead of making every caller wait through retries;
after ``reset_seconds`` one probe call is let through (half-open) and its outcome closes or
re-opens the circuit."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Callable

from ytresearch.ports import ChatModel, Completion, ModelError, ModelEvent, ModelRequest, StreamFinished

# Failures that say "the provider is in trouble" (after the adapter's own retries). Bad requests
# and auth errors are ours to fix and do not trip the breaker.
TRIPPING_CODES = frozenset(
    {
        "MODEL_OVERLOADED",
        "MODEL_UNREACHABLE",
        "MODEL_TIMEOUT",
        "MODEL_RATE_LIMITED",
        "MODEL_STREAM_INTERRUPTED",
    }
)
CIRCUIT_OPEN = "MODEL_CIRCUIT_OPEN"


class CircuitBreakerChatModel:
    def __init__(
        self,
        inner: ChatModel,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.state = "closed"  # closed / open / half_open
        self.failures = 0
        self.opened_at = 0.0
        self.probe_in_flight = False
        self._lock = threading.Lock()  # ingest workers call from several threads

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def paused_for(self) -> int | None:
        return None if self.available() else self.retry_after()

    def retry_after(self) -> int:
        return max(1, int(self.reset_seconds - (self.clock() - self.opened_at)) + 1)

    def available(self) -> bool:
        """False while open (callers can refuse work up front with a fast 503)."""
        with self._lock:
            return self.state != "open" or self.clock() - self.opened_at >= self.reset_seconds

    def _admit(self) -> None:
        with self._lock:
            if self.state == "open":
                if self.clock() - self.opened_at < self.reset_seconds:
                    raise self._open_error()
                self.state = "half_open"
                self.probe_in_flight = False
            if self.state == "half_open":
                if self.probe_in_flight:
                    raise self._open_error()
                self.probe_in_flight = True

    def _open_error(self) -> ModelError:
        error = ModelError(
            "the AI model is failing; requests are paused briefly while it recovers",
            code=CIRCUIT_OPEN,
            retryable=True,
        )
        error.details = {"retry_after": self.retry_after()}
        return error

    def _record(self, ok: bool) -> None:
        with self._lock:
            self.probe_in_flight = False
            if ok:
                self.state, self.failures = "closed", 0
                return
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.failure_threshold:
                self.state, self.opened_at = "open", self.clock()

    def _release(self) -> None:
        """A call that ended without a verdict (cancelled): let the next one probe."""
        with self._lock:
            self.probe_in_flight = False

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        self._admit()
        verdict = False
        try:
            async for event in self.inner.stream(request):
                if isinstance(event, StreamFinished):
                    self._record(True)
                    verdict = True
                yield event
        except ModelError as exc:
            if exc.code in TRIPPING_CODES:
                self._record(False)
                verdict = True
            raise
        finally:
            if not verdict:
                self._release()

    async def complete(self, request: ModelRequest) -> Completion:
        self._admit()
        try:
            result = await self.inner.complete(request)
        except ModelError as exc:
            if exc.code in TRIPPING_CODES:
                self._record(False)
            else:
                self._release()
            raise
        except BaseException:
            self._release()
            raise
        self._record(True)
        return result
