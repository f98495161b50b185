"""The research agent's tools as the model sees them: each tool's input model, whose JSON Schema
is the tool definition, and the check of a call's input against it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ytresearch.errors import InvalidInputError
from ytresearch.ports import ToolSpec


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ListVideosIn(ToolInput):
    """List the session's videos in their order, with position, status, title, channel, duration
    and group."""


class AddVideoIn(ToolInput):
    """Add one YouTube video to the session (any link form or an 11-character id). Its transcript
    is fetched and summarised; the result says whether it is ready yet."""

    url: str = Field(min_length=1, max_length=2048, description="a YouTube video link or id")


class AddPlaylistIn(ToolInput):
    """Add the videos of a YouTube playlist, or a channel's newest uploads, to the session."""

    url: str = Field(min_length=1, max_length=2048, description="a playlist or channel link")
    limit: int = Field(default=10, ge=1, le=50, description="at most this many videos")


class RemoveVideoIn(ToolInput):
    """Remove one video from the session (it can be undone)."""

    video: str = Field(
        min_length=1,
        max_length=2048,
        description="the video's id or link, or its 1-based position in the list, such as '3'",
    )


class SearchYouTubeIn(ToolInput):
    """Search YouTube for videos. Adds nothing: show the candidates, then add the ones wanted."""

    query: str = Field(min_length=1, max_length=200)
    max_results: int = Field(default=5, ge=1, le=25)


class TopicGroup(ToolInput):
    label: str = Field(min_length=1, max_length=80)
    video_ids: list[str] = Field(min_length=1, max_length=100)


class OrganizeVideosIn(ToolInput):
    """Reorder the session's videos: by `strategy` (date, duration, channel, or topic with the
    `groups` you name), or in an explicit `order` of video ids. Persisted; it can be undone."""

    strategy: Literal["date", "duration", "channel", "topic"] | None = None
    order: list[str] | None = Field(default=None, min_length=1, max_length=100)
    groups: list[TopicGroup] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _one_way(self) -> OrganizeVideosIn:
        if (self.strategy is None) == (self.order is None):
            raise ValueError("give exactly one of strategy or order")
        if self.strategy == "topic" and not self.groups:
            raise ValueError("strategy 'topic' needs groups: [{label, video_ids}] named by you")
        if self.groups and self.strategy != "topic":
            raise ValueError("groups go with strategy 'topic' only")
        return self


class SearchTranscriptsIn(ToolInput):
    """Search the session's transcripts (all of them, or the videos named) for passages about
    `query`; each hit has its video, time range and text. Use it when the documents given do not
    hold what the question needs."""

    query: str = Field(min_length=1, max_length=500)
    video_ids: list[str] | None = Field(default=None, min_length=1, max_length=50)
    max_results: int = Field(default=8, ge=1, le=20)


class ReadTranscriptIn(ToolInput):
    """Read a video's transcript between two times (seconds; at most 15 minutes at once)."""

    video: str = Field(min_length=1, max_length=2048, description="the video's id, link or 1-based position")
    start: float = Field(ge=0, description="seconds from the start")
    end: float = Field(gt=0, description="seconds from the start")

    @model_validator(mode="after")
    def _a_range(self) -> ReadTranscriptIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > 900:
            raise ValueError("read at most 900 seconds at once")
        return self


# A document is kept exactly as written: an indented code block at its start or a trailing line
# break is content, and the draft the person watched must be what is saved.
Document = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1)]


def _has_text(content: str) -> str:
    if not content.strip():
        raise ValueError("the document is empty")
    return content


class CreateArtifactIn(ToolInput):
    """Write a structured document for the person, saved in the session and shown beside the
    chat as it is written: a comparison table across videos, an outline, study notes. Markdown
    (tables, headings, lists, links; no HTML). Cite moments as links
    https://www.youtube.com/watch?v=ID&t=SECONDS. Revise it later with revise_artifact."""

    title: str = Field(min_length=1, max_length=120)
    kind: Literal["table", "outline", "notes", "document"]
    content: Document = Field(description="the whole document in Markdown")

    _content_has_text = field_validator("content")(_has_text)


class ReviseArtifactIn(ToolInput):
    """Write a new version of an artifact in this session (the whole new content; earlier
    versions stay readable)."""

    artifact_id: uuid.UUID = Field(description="the artifact_id create_artifact returned")
    content: Document = Field(description="the whole new document in Markdown")

    _content_has_text = field_validator("content")(_has_text)
    title: str | None = Field(default=None, min_length=1, max_length=120, description="a new title")


INPUTS: dict[str, type[ToolInput]] = {
    "list_videos": ListVideosIn,
    "add_video": AddVideoIn,
    "add_playlist": AddPlaylistIn,
    "remove_video": RemoveVideoIn,
    "search_youtube": SearchYouTubeIn,
    "organize_videos": OrganizeVideosIn,
    "search_transcripts": SearchTranscriptsIn,
    "read_transcript": ReadTranscriptIn,
    "create_artifact": CreateArtifactIn,
    "revise_artifact": ReviseArtifactIn,
}
# The tools whose input is shown while the model writes it (``artifact`` partial events).
STREAMED_INPUT = frozenset({"create_artifact", "revise_artifact"})
MUTATING = frozenset({"add_video", "add_playlist", "remove_video", "organize_videos"})


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The input's JSON Schema with ``$defs`` inlined and pydantic's titles dropped: small and
    self-contained, as tool definitions should be."""
    defs = schema.pop("$defs", {})

    def walk(node: Any, names: bool = False) -> Any:
        """``names``: ``node`` maps property names to schemas (a property may be called title)."""
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(dict(defs[node["$ref"].rsplit("/", 1)[-1]]))
            return {
                k: walk(v, names=not names and k == "properties")
                for k, v in node.items()
                if names or k != "title"
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    result.pop("description", None)  # the tool's description says it once
    return result


def tool_specs() -> tuple[ToolSpec, ...]:
    """Every tool, in a stable order (tool definitions start the model's cached prompt prefix)."""
    return tuple(
        ToolSpec(
            name=name,
            description=" ".join((model.__doc__ or "").split()),
            input_schema=_inline_refs(model.model_json_schema()),
            streams_input=name in STREAMED_INPUT,
        )
        for name, model in INPUTS.items()
    )


TOOL_SPECS = tool_specs()


def parse_input(name: str, raw: dict[str, Any] | None) -> ToolInput:
    """The call's input checked against its tool's schema; InvalidInputError saying what is wrong
    (field and rule, never an exception's name)."""
    model = INPUTS.get(name)
    if model is None:
        raise InvalidInputError(f"there is no tool named {name[:64]!r}", code="UNKNOWN_TOOL")
    if raw is None:
        raise InvalidInputError("the tool input was not a JSON object", code="INVALID_TOOL_INPUT")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise InvalidInputError(f"invalid input: {problems}", code="INVALID_TOOL_INPUT") from None
