"""``AnthropicChatModel``: the ChatModel port on the official ``anthropic`` SDK.

The SDK is imported when an adapter is built, never when this module is imported, so the CRUD
Lambda and the offline run do not pay for it.

Retries are ours, not the SDK's (the client is built with ``max_retries=0``): the SDK can only
retry before the response starts, and it cannot know whether text already reached the user.
We retry rate limits, overload, 5xx, connection trouble, timeouts and a mid-stream
``overloaded_error`` as long as nothing has been yielded (a tool call whose JSON is still arriving
has not been); after the first ``TextDelta``, ``CitationDelta`` or ``ToolCallRequested`` an error
ends the stream with ``MODEL_STREAM_INTERRUPTED`` and the caller keeps what it got.
Which failure is which, and whether a retry can help, is ``anthropic_errors``'s to say; how tool
blocks map to and from the API is ``anthropic_tools``'s, and documents and citations
``anthropic_citations``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ytresearch.errors import ConfigurationError
from ytresearch.llm.anthropic_citations import CitationReader
from ytresearch.llm.anthropic_errors import (
    ERROR_MESSAGES,
    MODEL_ERROR,
    MODEL_STREAM_INTERRUPTED,
    MODEL_UNAVAILABLE,
    ProviderFailure,
    StreamEndedEarlyError,
    classify_failure,
)
from ytresearch.llm.anthropic_tools import ToolCallAssembler, block_param, text_param, tool_param
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

log = logging.getLogger(__name__)

# Every retry wait goes through here, so tests can record the delays instead of timing them.
_sleep = asyncio.sleep

# Anthropic accepts at most 4 cache_control breakpoints per request (400 otherwise).
MAX_CACHE_BREAKPOINTS = 4


def build_messages_params(request: ModelRequest, *, default_model: str) -> dict[str, Any]:
    """The Messages API parameters for a port request.

    Whitespace-only text blocks are left out (the API rejects them); tool blocks always go. Tools
    go in the order given: they are the start of the cached prefix (tools, system, messages), so
    any breakpoint below covers them too. Blocks marked ``cache=True`` become
    ``cache_control: {"type": "ephemeral"}`` breakpoints (a document's mark counts like any
    other). Documents go wherever the request puts them (the API takes them in user messages
    only and answers 400 otherwise). The API allows at most four; when
    more are marked we keep the *last* four in prompt order (system, then messages) and drop the
    earlier marks. A breakpoint caches the whole prefix up to it, so a later breakpoint covers
    every earlier block too and saves the most on a hit; the API also looks for hits at earlier
    block boundaries (about 20 blocks back) from each breakpoint, so the dropped marks mostly still
    hit. Keeping the first four would instead leave the growing end of the prompt uncached.
    """
    system = [text_param(b.text, b.cache) for b in request.system if b.text.strip()]
    messages: list[dict[str, Any]] = [
        {
            "role": m.role,
            "content": [p for b in m.content if (p := block_param(b)) is not None],
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
    if request.tools:
        params["tools"] = [tool_param(t) for t in request.tools]
    return params


def estimate_tokens(text: str) -> int:
    """A cheap local token estimate (about four characters per token), rounded up."""
    return math.ceil(len(text) / 4)


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

    def _retry_delay(self, retry: int, failure: ProviderFailure) -> float:
        if failure.retry_after is not None:
            return min(failure.retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**retry))
        return self._random.uniform(0, ceiling)

    # ------------------------------------------------------------ the port

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        """Yield TextDelta, CitationDelta, ToolInputDelta and ToolCallRequested events in the order
        the model wrote them (a citation comes before the text it supports), then one
        StreamFinished. Citations of other kinds than ``content_block_location``, or pointing
        outside the request's documents, are left out. Closing the generator (``aclose`` or
        cancelling the consuming task) exits ``async with`` on the SDK's stream, which closes the
        HTTP response and so the upstream connection at once.

        The raw event stream (``_open_event_stream``) is read rather than ``messages.stream()``:
        the latter also rebuilds a message snapshot and a derived event for every delta, which we
        do not need and which cost about a third of the relay's CPU."""
        params = build_messages_params(request, default_model=self.name)
        citations = CitationReader(request)
        streamed = [tool.name for tool in request.tools if tool.streams_input]
        retry = 0
        while True:
            yielded = False
            try:
                client = await self._get_client()
                upstream = await _open_event_stream(client, params)
                async with upstream:
                    finish = _Finish()
                    tools = ToolCallAssembler(streamed)
                    async for event in upstream:
                        kind = event.get("type")
                        if kind == "content_block_delta":
                            delta = event.get("delta") or {}
                            delta_kind = delta.get("type")
                            if delta_kind == "text_delta":
                                if text := delta.get("text"):
                                    yielded = True
                                    yield TextDelta(text)
                            elif delta_kind == "citations_delta":
                                if (cited := citations.read(delta.get("citation"))) is not None:
                                    yielded = True
                                    yield cited
                            elif delta_kind == "input_json_delta":
                                so_far = tools.add(event.get("index"), delta.get("partial_json"))
                                if so_far is not None:
                                    yielded = True
                                    yield so_far
                        elif kind == "content_block_start":
                            tools.start(event)
                        elif kind == "content_block_stop":
                            if (call := tools.stop(event.get("index"))) is not None:
                                yielded = True
                                yield call
                        else:
                            finish.update(event)
                    if not finish.stopped:
                        raise StreamEndedEarlyError("the stream ended without message_stop")
                yield finish.result(params["model"])
                return
            except Exception as exc:
                failure = classify_failure(exc)
                if failure is None:
                    raise
                if yielded:
                    # Never retry after anything went out: the caller would see it twice.
                    interrupted = ProviderFailure(
                        MODEL_STREAM_INTERRUPTED, True, failure.status, failure.provider_type
                    )
                    log.warning("model stream interrupted after output (%s): %s", failure.code, exc)
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
        """The whole reply's text (tool calls and citations are left out). Nobody has seen partial
        output here, so unlike ``stream`` an interrupted stream is started again (within the same
        ``max_retries`` budget)."""
        restarts = 0
        while True:
            parts: list[str] = []
            try:
                async with contextlib.aclosing(self.stream(request)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            parts.append(event.text)
                        elif isinstance(event, StreamFinished):
                            return Completion(
                                text="".join(parts),
                                stop_reason=event.stop_reason,
                                usage=event.usage,
                                model=event.model,
                            )
            except ModelError as exc:
                if exc.code != MODEL_STREAM_INTERRUPTED or restarts >= self.max_retries:
                    raise
                delay = self._retry_delay(restarts, ProviderFailure(MODEL_STREAM_INTERRUPTED, True))
                log.info("restarting an interrupted completion in %.2fs", delay)
                await _sleep(delay)
                restarts += 1
                continue
            raise ModelError(ERROR_MESSAGES[MODEL_ERROR], code=MODEL_ERROR, retryable=True)
