"""Ports: what the services need from the outside world, as plain types and protocols.

Adapters implement them after their technology (YouTubeTranscriptSource, AnthropicChatModel,
SqsJobQueue ...); services import only this module, never boto3, anthropic or FastAPI.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ytresearch.errors import AppError

# ---------------------------------------------------------------- transcripts and metadata


@dataclass(frozen=True)
class TranscriptSegment:
    text: str
    start: float  # seconds from the start of the video
    duration: float

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "duration": self.duration}


@dataclass(frozen=True)
class Transcript:
    video_id: str
    language: str
    is_generated: bool
    segments: list[TranscriptSegment]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class TranscriptError(AppError):
    """A transcript could not be fetched. ``code`` says why; ``retryable`` whether trying again
    later can help (network trouble, blocking) or not (transcripts disabled, video gone)."""

    code = "TRANSCRIPT_ERROR"

    def __init__(self, message: str, *, code: str, retryable: bool) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class TranscriptSource(Protocol):
    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        """Return the best transcript (manual before generated, in language preference order).
        Raises TranscriptError."""
        ...


@dataclass(frozen=True)
class VideoMetadata:
    title: str | None = None
    channel: str | None = None
    channel_url: str | None = None
    thumbnail_url: str | None = None
    duration_seconds: int | None = None
    published_at: datetime | None = None


class MetadataSource(Protocol):
    def fetch(self, video_id: str) -> VideoMetadata:
        """Best-effort metadata; never raises (missing metadata never fails an ingest)."""
        ...


# ---------------------------------------------------------------- finding videos


@dataclass(frozen=True)
class VideoCandidate:
    """A video found on YouTube (a search hit, a playlist item, a channel upload)."""

    video_id: str
    title: str | None = None
    channel: str | None = None
    duration_seconds: int | None = None
    published_at: datetime | None = None

    @property
    def url(self) -> str:
        return f"https://www.youtube.com/watch?v={self.video_id}"


class DiscoveryError(AppError):
    """Finding videos failed: ``code`` says why (e.g. PLAYLIST_NOT_FOUND, DISCOVERY_UNAVAILABLE)."""

    code = "DISCOVERY_ERROR"

    def __init__(self, message: str, *, code: str, retryable: bool = False) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class VideoDiscovery(Protocol):
    def search(self, query: str, max_results: int) -> list[VideoCandidate]:
        """Videos matching ``query``, best first, at most ``max_results``. Raises DiscoveryError."""
        ...

    def expand(self, url: str, limit: int) -> list[VideoCandidate]:
        """The videos of a playlist or channel URL (a channel: its newest uploads), at most
        ``limit``, in the list's order. Raises DiscoveryError (INVALID_PLAYLIST_URL for a URL that
        names neither, PLAYLIST_NOT_FOUND for one that does not exist)."""
        ...


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class SystemBlock:
    text: str
    cache: bool = False  # mark as a prompt-cache breakpoint


@dataclass(frozen=True)
class ContentBlock:
    text: str
    cache: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its input's JSON Schema."""

    name: str
    description: str
    input_schema: dict[str, Any]
    # The tool's input is worth showing while the model writes it (an artifact's content): the
    # model streams it as ``ToolInputDelta`` events before the finished ``ToolCallRequested``.
    streams_input: bool = False


@dataclass(frozen=True)
class ToolUseBlock:
    """In an assistant message: the model asked for ``name`` with ``input`` (the API's tool_use)."""

    call_id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResultBlock:
    """In a user message: what a tool call returned (the API's tool_result). ``content`` is the
    text the model reads (JSON for data); ``is_error`` tells it the call failed."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class DocumentBlock:
    """A source the model may cite, in a user message (the API's custom-content document with
    citations enabled): ``parts`` are the smallest units a citation can point at (for a video,
    its transcript windows), sent as they are. ``context`` is said about the document but never
    cited (e.g. the video's title and summary)."""

    title: str
    parts: tuple[str, ...]
    context: str | None = None
    cache: bool = False


MessageBlock = ContentBlock | DocumentBlock | ToolUseBlock | ToolResultBlock


@dataclass(frozen=True)
class ModelMessage:
    role: Literal["user", "assistant"]
    content: list[MessageBlock]


@dataclass(frozen=True)
class ModelRequest:
    system: list[SystemBlock]
    messages: list[ModelMessage]
    max_tokens: int
    model: str | None = None  # None: the adapter's configured model
    # What the request is for; the offline model uses it to pick its extractive strategy.
    purpose: Literal["chat", "summary"] = "chat"
    # Tools the model may call, in a stable order (they are the start of the cached prefix).
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
        )


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamFinished:
    stop_reason: str | None
    usage: Usage
    model: str


@dataclass(frozen=True)
class ToolCallRequested:
    """The model finished writing one tool call. ``input`` is the parsed JSON object, or None
    with ``error`` saying why when the model wrote input that is not a JSON object."""

    call_id: str
    name: str
    input: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class ToolInputDelta:
    """A tool call (of a tool whose spec ``streams_input``) still being written: ``input`` is as
    much of its JSON object as has arrived, parsed (a string cut short keeps what it has; fields
    not begun yet are missing). Each one holds everything so far, so the last one is enough."""

    call_id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class CitationDelta:
    """The text that follows cites ``parts[start_part:end_part]`` of a document: the
    ``document_index``-th DocumentBlock of the request (counted over all messages, in order).
    ``cited_text`` is what the API quotes from those parts."""

    document_index: int
    start_part: int
    end_part: int  # exclusive
    cited_text: str


ModelEvent = TextDelta | CitationDelta | ToolInputDelta | ToolCallRequested | StreamFinished


@dataclass(frozen=True)
class Completion:
    text: str
    stop_reason: str | None
    usage: Usage
    model: str


class ModelError(AppError):
    """The model provider failed. ``retryable`` tells whether a later attempt may succeed."""

    code = "MODEL_ERROR"

    def __init__(self, message: str, *, code: str = "MODEL_ERROR", retryable: bool = False) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class ChatModel(Protocol):
    name: str  # the model id used by default

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        """Yield TextDelta events (and, when ``request.tools`` is set, one ToolCallRequested per
        finished tool call, in order, preceded by ToolInputDelta events while a tool that
        ``streams_input`` is being written) then exactly one StreamFinished (``stop_reason``
        "tool_use" when the model waits for tool results). Errors before the first delta are
        retried inside the adapter; later ones raise ModelError. Closing the iterator
        (``aclose``) closes the upstream connection at once."""
        ...

    async def complete(self, request: ModelRequest) -> Completion: ...

    def count_tokens(self, text: str) -> int:
        """A cheap local estimate used for context budgeting."""
        ...

    def paused_for(self) -> int | None:
        """Seconds until the model takes calls again while it is paused (a circuit breaker that
        opened), so callers can refuse work up front; None when it takes calls now."""
        ...

    async def aclose(self) -> None:
        """Release the model's connections (a FastAPI lifespan's shutdown)."""
        ...


# ---------------------------------------------------------------- the ingest queue


@dataclass(frozen=True)
class IngestMessage:
    """The body of one ingest queue message (the same on SQS and the embedded queue)."""

    job_id: str
    video_id: str
    language: str | None = None
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "job_id": self.job_id,
            "video_id": self.video_id,
            "language": self.language,
        }


class JobQueue(Protocol):
    def send(self, message: IngestMessage) -> None: ...
