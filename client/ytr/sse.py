"""A server-sent events parser (the wire format of the HTML standard, section 9.2).

Fed raw bytes as they arrive, in chunks of any size: lines end in CRLF, LF or CR (even when a CR
and its LF arrive in different chunks), the UTF-8 decoding is incremental, and a leading BOM is
dropped. An event is only produced at the blank line that ends it, so an event cut short by a
dropped connection is never seen; ``last_event_id`` is what a reconnect sends as
``Last-Event-ID``, and ``retry`` is the reconnection delay the server asked for.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_LINE_END = re.compile(r"\r\n?|\n")  # CRLF, CR or LF: a line ending


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str
    id: str | None
    # Whether the event's own lines set the id: otherwise it is the one an earlier event set, as
    # the standard says. Not part of the event's value (events compare by type, data and id).
    id_given: bool = field(default=False, compare=False, repr=False)

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Incremental parser. ``feed(bytes)`` returns the events completed by those bytes."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None  # as of the last dispatched event
        self.retry: int | None = None  # milliseconds, from the latest valid ``retry:`` field
        self.comments = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._started = False
        self._reset_event()
        self._id_buffer: str | None = None

    def _reset_event(self) -> None:
        self._event_type = ""
        self._data: list[str] = []
        self._id_given = False

    def reset_connection(self) -> None:
        """Forget a half-received event and undecoded bytes (call before reading a new
        connection); the last event id and the retry delay are kept."""
        self._decoder.reset()
        self._buffer = ""
        self._skip_lf = False
        self._started = False
        self._reset_event()
        self._id_buffer = self.last_event_id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        # A CR at the end of what we have ends a line, and its LF may still be on its way.
        self._skip_lf = text.endswith("\r")
        buffer = self._buffer + text
        lines = _LINE_END.split(buffer) if "\r" in buffer else buffer.split("\n")
        self._buffer = lines.pop()  # the start of a line not ended yet
        events: list[SSEEvent] = []
        for line in lines:
            event = self.feed_line(line)
            if event is not None:
                events.append(event)
        return events

    def feed_line(self, line: str) -> SSEEvent | None:
        """Process one line (without its line ending)."""
        if not line:
            return self._dispatch()
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
                self._id_given = True
        elif name == "":
            self.comments += 1  # a line starting with a colon
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Any other field is ignored, as the standard says.
        return None

    def _dispatch(self) -> SSEEvent | None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._reset_event()
            return None
        event = SSEEvent(
            self._event_type or "message", "\n".join(self._data), self.last_event_id, id_given=self._id_given
        )
        self._reset_event()
        return event


def parse(chunks: Iterable[bytes], parser: SSEParser | None = None) -> Iterator[SSEEvent]:
    """Every event in a byte stream."""
    parser = parser or SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
