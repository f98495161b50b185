"""``AnthropicChatModel``: the ChatModel port on the official ``anthropic`` SDK.

The SDK is imported when an adapter is built, never when this module is imported, so the CRUD
Lambda and the offline run do not pay for it.

Retries are ours, not the SDK's (the client is built with ``max_retries=0``): the SDK can only
retry before the response starts, and it cannot know whether text already reached the user.
We retry rate limits, overload, 5xx, connection trouble, timeouts and a mid-stream
``overloaded_error`` as long as no text has been yielded; after the first ``TextDelta`` an error
ends the stream with ``MODEL_STREAM_INTERRUPTED`` and the caller keeps the partial text.
A model the API does not know (404 ``not_found_error``, e.g. one past its end of life) is
``MODEL_UNAVAILABLE``: never retried, and it does not trip the circuit breaker (it is ours to fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import random
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ytresearch.errors import ConfigurationError
from ytresearch.ports import (
    Completion,
    ModelError,
    ModelEvent,
    ModelRequest,
    StreamFinished,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from httpx2 import Headers

log = logging.getLogger(__name__)

# Every retry wait goes through here, so tests can record the delays instead of timing them.
_sleep = asyncio.sleep

# Anthropic accepts at most 4 cache_control breakpoints per request (400 otherwise).
MAX_CACHE_BREAKPOINTS = 4

MODEL_RATE_LIMITED = "MODEL_RATE_LIMITED"
MODEL_OVERLOADED = "MODEL_OVERLOADED"
MODEL_UNREACHABLE = "MODEL_UNREACHABLE"
MODEL_TIMEOUT = "MODEL_TIMEOUT"
MODEL_AUTH_FAILED = "MODEL_AUTH_FAILED"
MODEL_BAD_REQUEST = "MODEL_BAD_REQUEST"
MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
MODEL_STREAM_INTERRUPTED = "MODEL_STREAM_INTERRUPTED"
MODEL_ERROR = "MODEL_ERROR"

_MESSAGES = {
    MODEL_RATE_LIMITED: "The AI model is rate limited right now; try again shortly.",
    MODEL_OVERLOADED: "The AI model is overloaded right now; try again shortly.",
    MODEL_UNREACHABLE: "The AI model could not be reached; try again shortly.",
    MODEL_TIMEOUT: "The AI model did not answer in time.",
    MODEL_AUTH_FAILED: "The AI model rejected the service's credentials.",
    MODEL_BAD_REQUEST: "The AI model rejected the request.",
    MODEL_UNAVAILABLE: "The configured AI model does not exist or is no longer available.",
    MODEL_STREAM_INTERRUPTED: "The AI model's reply was interrupted before it finished.",
    MODEL_ERROR: "The AI model failed.",
}


def _text_block(text: str, cache: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    return block


def build_messages_params(request: ModelRequest, *, default_model: str) -> dict[str, Any]:
    """The Messages API parameters for a port request.

    Whitespace-only blocks are left out (the API rejects them). Blocks marked ``cache=True``
    become ``cache_control: {"type": "ephemeral"}`` breakpoints. The API allows at most four; when
    more are marked we keep the *last* four in prompt order (system, then messages) and drop the
    earlier marks. A breakpoint caches the whole prefix up to it, so a later breakpoint covers
    every earlier block too and saves the most on a hit; the API also looks for hits at earlier
    block boundaries (about 20 blocks back) from each breakpoint, so the dropped marks mostly still
    hit. Keeping the first four would instead leave the growing end of the prompt uncached.
    """
    system = [_text_block(b.text, b.cache) for b in request.system if b.text.strip()]
    messages: list[dict[str, Any]] = [
        {
            "role": m.role,
            "content": [_text_block(b.text, b.cache) for b in m.content if b.text.strip()],
        }
        for m in request.messages
    ]
    marked = [b for b in system if "cache_control" in b]
    marked += [b for m in messages for b in m["content"] if "cache_control" in b]
    for block in marked[: max(0, len(marked) - MAX_CACHE_BREAKPOINTS)]:
        del block["cache_control"]

    params: dict[str, Any] = {
        "model": request.model or default_model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    }
    if system:
        params["system"] = system
    return params


def estimate_tokens(text: str) -> int:
    """A cheap local token estimate (about four characters per token), rounded up."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class _Failure:
    code: str
    retryable: bool
    status: int | None = None
    provider_type: str | None = None
    retry_after: float | None = None

    def error(self, *, attempts: int) -> ModelError:
        err = ModelError(_MESSAGES[self.code], code=self.code, retryable=self.retryable)
        details: dict[str, Any] = {"attempts": attempts}
        if self.status is not None:
            details["status"] = self.status
        if self.provider_type:
            details["provider_error"] = self.provider_type
        if self.retry_after is not None:
            details["retry_after"] = math.ceil(self.retry_after)
        err.details = details
        return err


class _StreamEndedEarly(Exception):
    """The response ended cleanly but without ``message_stop``."""


def _parse_retry_after(headers: Headers | None) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _classify(exc: BaseException) -> _Failure | None:
    """Map an SDK/transport exception to our error code; None for exceptions that are not a
    provider failure (programming errors propagate unchanged)."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        # Mid-stream ``event: error`` frames arrive on a 200 response: the body's type decides.
        kind = exc.type
        headers = exc.response.headers if exc.response is not None else None
        if kind == "overloaded_error" or status == 529:
            failure = _Failure(MODEL_OVERLOADED, True, status, kind, _parse_retry_after(headers))
        elif kind == "rate_limit_error" or status == 429:
            # Spend limits are 429s too, but waiting seconds will not lift them.
            spend_limit = (exc.error_code or "").endswith("spend_limit_reached")
            failure = _Failure(MODEL_RATE_LIMITED, not spend_limit, status, kind, _parse_retry_after(headers))
        elif kind in ("authentication_error", "permission_error") or status in (401, 403):
            failure = _Failure(MODEL_AUTH_FAILED, False, status, kind)
        elif kind == "timeout_error" or status in (408, 504):
            failure = _Failure(MODEL_TIMEOUT, True, status, kind)
        elif kind == "api_error" or status >= 500 or status == 409:
            failure = _Failure(MODEL_UNREACHABLE, True, status, kind)
        elif kind == "billing_error" or status == 402:
            failure = _Failure(MODEL_UNREACHABLE, False, status, kind)
        elif kind == "not_found_error":
            # The adapter only calls POST /v1/messages, so "not found" means the model.
            failure = _Failure(MODEL_UNAVAILABLE, False, status, kind)
        elif kind in ("invalid_request_error", "request_too_large"):
            failure = _Failure(MODEL_BAD_REQUEST, False, status, kind)
        elif status < 400:  # an unknown error event mid-stream: the provider failed, not us
            failure = _Failure(MODEL_UNREACHABLE, True, status, kind)
        else:  # 400, 413, 422 ...: the request itself is wrong
            failure = _Failure(MODEL_BAD_REQUEST, False, status, kind)
        if failure.retryable and headers is not None and headers.get("x-should-retry") == "false":
            failure = _Failure(failure.code, False, status, kind, failure.retry_after)
        return failure
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return _Failure(MODEL_TIMEOUT, True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | _StreamEndedEarly):
        return _Failure(MODEL_UNREACHABLE, True)
    if isinstance(exc, anthropic.AnthropicError):
        return _Failure(MODEL_ERROR, False)
    return None


def sdk_deprecated_models() -> Mapping[str, str] | None:
    """The SDK's table of deprecated models and their end-of-life dates; None if this SDK version
    keeps it elsewhere (it is not public API: ``messages.py`` imports it from ``anthropic._data``)."""
    try:
        from anthropic.resources.messages.messages import DEPRECATED_MODELS
    except ImportError:
        return None
    return DEPRECATED_MODELS


def model_end_of_life(model: str) -> str | None:
    """The end-of-life date the SDK lists for a deprecated model, else None. The SDK warns about
    these from ``messages.create``, which this adapter does not call (``_open_event_stream``)."""
    date = (sdk_deprecated_models() or {}).get(model)
    return str(date) if date else None


async def _open_event_stream(client: AsyncAnthropic, params: dict[str, Any]) -> Any:
    """``POST /v1/messages`` with ``stream: true`` as the SDK's own event stream, yielding each event
    as its JSON object. The same request, SSE decoding and error handling as
    ``messages.create(stream=True)`` (an ``error`` event raises the SDK's status error), without
    building a typed model per event: ``cast_to=object`` is the SDK's documented way to get raw
    data, and skipping the models cuts its CPU per delta by about a fifth (53 -> 43 µs)."""
    from anthropic import AsyncStream

    return await client.post(
        "/v1/messages",
        body={**params, "stream": True},
        cast_to=object,
        stream=True,
        stream_cls=AsyncStream[object],
    )


class _Finish:
    """What the non-text events of one stream say about the reply: the model, the stop reason and
    the usage. ``message_delta`` usage counts are cumulative totals that overwrite
    ``message_start``'s, except fields it leaves out (the SDK's own accumulation does the same)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stopped = False
        self.usage = {"input_tokens": 0, "output_tokens": 0, "cache_read": 0, "cache_creation": 0}

    def update(self, event: dict[str, Any]) -> None:
        """One stream event as the API sent it (JSON)."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = message.get("model")
            self._take(message.get("usage"))
        elif kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason")
            self._take(event.get("usage"))
        elif kind == "message_stop":
            self.stopped = True

    def _take(self, usage: dict[str, Any] | None) -> None:
        for field_name, key in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_input_tokens", "cache_read"),
            ("cache_creation_input_tokens", "cache_creation"),
        ):
            value = (usage or {}).get(field_name)
            if isinstance(value, int):
                self.usage[key] = value

    def result(self, requested_model: str) -> StreamFinished:
        return StreamFinished(
            stop_reason=self.stop_reason,
            usage=Usage(
                input_tokens=self.usage["input_tokens"],
                output_tokens=self.usage["output_tokens"],
                cache_read_tokens=self.usage["cache_read"],
                cache_creation_tokens=self.usage["cache_creation"],
            ),
            model=self.model or requested_model,
        )


class AnthropicChatModel:
    """Claude through the SDK's streaming ``POST /v1/messages`` (``_open_event_stream``).

    ``api_key`` may be a callable (e.g. a Secrets Manager read) called once, on first use.
    ``max_retries`` is the number of retries after the first attempt. Backoff is exponential
    with full jitter: ``uniform(0, min(backoff_max, backoff_base * 2**retry))``; a
    ``retry-after`` from the API is obeyed instead, capped at ``retry_after_max``.
    """

    def __init__(
        self,
        *,
        api_key: str | Callable[[], str],
        model: str,
        base_url: str | None = None,
        max_retries: int = 3,
        timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_max: float = 30.0,
    ) -> None:
        # Imported here, not at module level: only a built adapter pays for the SDK import.
        import anthropic  # noqa: F401

        if isinstance(api_key, str) and not api_key.strip():
            raise ConfigurationError("the Anthropic API key is empty")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.name = model
        if (end_of_life := model_end_of_life(model)) is not None:
            log.warning(
                "the model %s reaches end of life on %s; set YTR_MODEL to a newer model", model, end_of_life
            )
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_seconds = timeout_seconds
        self._connect_timeout_seconds = min(connect_timeout_seconds, timeout_seconds)
        self._client: AsyncAnthropic | None = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._random = random.Random()

    # ------------------------------------------------------------ client

    async def _resolve_api_key(self) -> str:
        if not isinstance(self._api_key, str):
            # A provider may do blocking I/O (Secrets Manager): keep it off the event loop.
            key = await asyncio.to_thread(self._api_key)
            if not key or not key.strip():
                raise ConfigurationError("the Anthropic API key is empty")
            self._api_key = key.strip()
        return self._api_key

    def _client_for(self, loop: asyncio.AbstractEventLoop) -> AsyncAnthropic | None:
        bound = self._client_loop() if self._client_loop is not None else None
        return self._client if bound is loop else None

    async def _get_client(self) -> AsyncAnthropic:
        # One client per event loop: pooled connections belong to the loop that opened them,
        # and a Lambda may run each invocation in a fresh loop.
        loop = asyncio.get_running_loop()
        client = self._client_for(loop)
        if client is not None:
            return client
        api_key = await self._resolve_api_key()
        client = self._client_for(loop)  # another task may have built it while we waited
        if client is not None:
            return client

        import anthropic

        timeout = anthropic.Timeout(self._timeout_seconds, connect=self._connect_timeout_seconds)
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=self._base_url,
            max_retries=0,
            timeout=timeout,
            # The SDK's own default HTTP client closes itself from __del__ on whatever loop is
            # running at garbage collection, which fails ("Event loop is closed") once the
            # client was used on another loop. The plain default client has no finaliser.
            http_client=anthropic.DefaultAsyncHttpxClient(timeout=timeout),
        )
        self._client, self._client_loop = client, weakref.ref(loop)
        return client

    def paused_for(self) -> int | None:
        return None  # retries and backoff happen inside each call; the breaker around it pauses

    async def aclose(self) -> None:
        """Close the HTTP connection pool (e.g. in a FastAPI lifespan shutdown)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    # ------------------------------------------------------------ retries

    def _retry_delay(self, retry: int, failure: _Failure) -> float:
        if failure.retry_after is not None:
            return min(failure.retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**retry))
        return self._random.uniform(0, ceiling)

    # ------------------------------------------------------------ the port

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        """Yield TextDelta events, then one StreamFinished. Closing the generator (``aclose`` or
        cancelling the consuming task) exits ``async with`` on the SDK's stream, which closes the
        HTTP response and so the upstream connection at once.

        The raw event stream (``_open_event_stream``) is read rather than ``messages.stream()``:
        the latter also rebuilds a message snapshot and a derived event for every delta, which we
        do not need and which cost about a third of the relay's CPU."""
        params = build_messages_params(request, default_model=self.name)
        retry = 0
        while True:
            yielded_text = False
            try:
                client = await self._get_client()
                upstream = await _open_event_stream(client, params)
                async with upstream:
                    finish = _Finish()
                    async for event in upstream:
                        if event.get("type") == "content_block_delta":
                            delta = event.get("delta") or {}
                            if delta.get("type") == "text_delta" and delta.get("text"):
                                yielded_text = True
                                yield TextDelta(delta["text"])
                        else:
                            finish.update(event)
                    if not finish.stopped:
                        raise _StreamEndedEarly("the stream ended without message_stop")
                yield finish.result(params["model"])
                return
            except Exception as exc:
                failure = _classify(exc)
                if failure is None:
                    raise
                if yielded_text:
                    # Never retry after text went out: the caller would see it twice.
                    interrupted = _Failure(
                        MODEL_STREAM_INTERRUPTED, True, failure.status, failure.provider_type
                    )
                    log.warning("model stream interrupted after text (%s): %s", failure.code, exc)
                    raise interrupted.error(attempts=retry + 1) from exc
                if failure.code == MODEL_UNAVAILABLE:
                    log.warning(
                        "the API does not know the model %s (%s); set YTR_MODEL to a current model",
                        params["model"],
                        exc,
                        extra={"model": params["model"], "error_code": failure.code},
                    )
                    raise failure.error(attempts=retry + 1) from exc
                if not failure.retryable or retry >= self.max_retries:
                    log.warning(
                        "model call failed (%s) after %d attempt(s): %s",
                        failure.code,
                        retry + 1,
                        exc,
                    )
                    raise failure.error(attempts=retry + 1) from exc
                delay = self._retry_delay(retry, failure)
                log.info(
                    "model call failed (%s), retry %d/%d in %.2fs: %s",
                    failure.code,
                    retry + 1,
                    self.max_retries,
                    delay,
                    exc,
                )
                await _sleep(delay)
                retry += 1

    async def complete(self, request: ModelRequest) -> Completion:
        """The whole reply. Nobody has seen partial text here, so unlike ``stream`` an
        interrupted stream is started again (within the same ``max_retries`` budget)."""
        restarts = 0
        while True:
            parts: list[str] = []
            try:
                async with contextlib.aclosing(self.stream(request)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            parts.append(event.text)
                        else:
                            return Completion(
                                text="".join(parts),
                                stop_reason=event.stop_reason,
                                usage=event.usage,
                                model=event.model,
                            )
            except ModelError as exc:
                if exc.code != MODEL_STREAM_INTERRUPTED or restarts >= self.max_retries:
                    raise
                delay = self._retry_delay(restarts, _Failure(MODEL_STREAM_INTERRUPTED, True))
                log.info("restarting an interrupted completion in %.2fs", delay)
                await _sleep(delay)
                restarts += 1
                continue
            raise ModelError(_MESSAGES[MODEL_ERROR], code=MODEL_ERROR, retryable=True)
