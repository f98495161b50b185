"""Request models both apps share: the strict base and the fields of a chat question."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

Question = Annotated[str, Field(min_length=1, max_length=100_000, description="Your question.")]
VideoIds = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{11}$")]] | None,
    Field(default=None, max_length=50, description="Limit the answer to these videos (default: all)."),
]


def no_nul(value: object) -> object:
    """PostgreSQL text cannot hold NUL: a clear 400 (or WebSocket error) instead of a 500 at the INSERT."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


CallId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Strict(BaseModel):
    """Unknown fields refused, text trimmed, no NUL in any string."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return no_nul(value)


class ApprovalIn(Strict):
    """A decision on a tool call that waits for approval (the HTTP body and the WebSocket frame)."""

    call_id: CallId
    approve: bool = Field(strict=True)
