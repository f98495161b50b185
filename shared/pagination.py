"""Opaque keyset cursors: base64url JSON of the sort key of the last item on a page."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from ytresearch.errors import InvalidInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "i": str(self.id)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            return cls(created_at=datetime.fromisoformat(data["t"]), id=uuid.UUID(data["i"]))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeError):
            raise InvalidInputError(
                "cursor is not valid; pass the next_cursor value from a previous page",
                code="INVALID_CURSOR",
            ) from None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
