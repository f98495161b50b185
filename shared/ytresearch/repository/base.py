"""What every data-access module shares: the transaction's session and two Core helpers."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from ytresearch.db.models import Base

ACTIVE_REQUEST_STATUSES = ("queued", "streaming")


def changed_rows(result: Result[Any]) -> bool:
    """Whether an UPDATE or DELETE touched a row (its CursorResult's row count)."""
    return bool(cast(CursorResult[Any], result).rowcount)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements that skip the ORM's per-object bookkeeping."""
    return cast(Table, model.__table__)


class Queries:
    """The queries of one aggregate, run in the caller's transaction (``session``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
