"""Opaque keyset cursors: base64url JSON of the sort key of the last item on a page."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from ytresearch.errors import InvalidInputError

T = TypeVar("T")

# Every sort key is a row's created_at, set to "now" on insert: nothing real predates 1970. The
# upper bound keeps far from datetime.max (9999), so no offset arithmetic on a decoded timestamp
# can overflow in Python or in the database.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


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
            return cls(created_at=_utc_timestamp(data["t"]), id=uuid.UUID(data["i"]))
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            OverflowError,
            binascii.Error,
            UnicodeError,
        ):
            raise InvalidInputError(
                "cursor is not valid; pass the next_cursor value from a previous page",
                code="INVALID_CURSOR",
            ) from None


def _utc_timestamp(text: str) -> datetime:
    """An aware ISO timestamp as UTC; ValueError (or OverflowError) when it has no zone or lies
    outside the range any row can have."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("cursor timestamp has no time zone")
    moment = moment.astimezone(UTC)  # OverflowError past datetime.min/max
    if not _EARLIEST <= moment < _LATEST:
        raise ValueError("cursor timestamp is out of range")
    return moment


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
