"""Telling other processes that a chat request's event log grew: PostgreSQL ``NOTIFY``.

Every write of log events calls ``notify_chat_log`` in its own transaction. PostgreSQL delivers the
notification when that transaction commits (never when it rolls back), to every session listening
on ``CHANNEL``: the streaming service's ``LogListener``, which wakes the readers following those
requests on its process. The payload names the request ids, comma-separated.

On SQLite (the local run, one process) it does nothing: there is nobody else to tell.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "ytr_chat_log"
# PostgreSQL refuses a payload of 8,000 bytes or more; ids are split over several notifications.
MAX_PAYLOAD_BYTES = 7_900
SEPARATOR = ","

# One statement, one round trip, however many notifications the ids need.
_NOTIFY = text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload")


def notify_chat_log(session: Session, request_ids: Iterable[uuid.UUID]) -> None:
    """Notify ``CHANNEL`` that these requests' logs grew, on commit of ``session``'s transaction.
    Each id is named once; nothing is sent for no ids, nor on a database other than PostgreSQL."""
    if session.get_bind().dialect.name != "postgresql":
        return
    payloads = list(payloads_for(request_ids))
    if payloads:
        session.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})


def payloads_for(request_ids: Iterable[uuid.UUID], limit: int = MAX_PAYLOAD_BYTES) -> Iterator[str]:
    """The ids (each once, in first-seen order) joined into payloads shorter than ``limit`` bytes."""
    chunk: list[str] = []
    size = 0
    for rid in dict.fromkeys(request_ids):
        item = str(rid)
        added = len(item) + (len(SEPARATOR) if chunk else 0)  # ids and commas are ASCII
        if chunk and size + added >= limit:
            yield SEPARATOR.join(chunk)
            chunk, size, added = [], 0, len(item)
        chunk.append(item)
        size += added
    if chunk:
        yield SEPARATOR.join(chunk)


def parse_payload(payload: str) -> set[uuid.UUID]:
    """The request ids a notification names (anything that is not an id is ignored)."""
    found: set[uuid.UUID] = set()
    for item in payload.split(SEPARATOR):
        try:
            found.add(uuid.UUID(item))
        except ValueError:
            continue
    return found
