"""The CLI's SSE parser follows the HTML standard's wire format, whatever the chunking."""

from __future__ import annotations

import pytest

from ytr.sse import SSEEvent, SSEParser, parse

STREAM = (
    "retry: 1000\n\n"
    'id: 1\nevent: stage\ndata: {"stage":"generating"}\n\n'
    ": ping\n\n"
    'id: 2\nevent: token\ndata: {"text":"héllo ✓"}\n\n'
    'id: 3\nevent: complete\ndata: {"text":"héllo ✓"}\n\n'
)


def events_of(chunks: list[bytes]) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    return list(parse(chunks, parser)), parser


def test_events_carry_type_id_and_data() -> None:
    events, parser = events_of([STREAM.encode()])
    assert [(e.event, e.id) for e in events] == [("stage", "1"), ("token", "2"), ("complete", "3")]
    assert events[1].json() == {"text": "héllo ✓"}
    assert parser.retry == 1000 and parser.comments == 1 and parser.last_event_id == "3"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    raw = STREAM.encode()
    whole, _ = events_of([raw])
    pieces, _ = events_of([raw[i : i + size] for i in range(0, len(raw), size)])
    assert pieces == whole  # including multi-byte characters split between chunks


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending(newline: str) -> None:
    raw = f"id: 7{newline}event: token{newline}data: a{newline}data: b{newline}{newline}".encode()
    events, _ = events_of([raw])
    assert events == [SSEEvent("token", "a\nb", "7")]


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    events, _ = events_of([b"data: x\r", b"\ndata: y\r\n\r", b"\n"])
    assert events == [SSEEvent("message", "x\ny", None)]


def test_field_rules() -> None:
    parser = SSEParser()
    lines = ["data:  two spaces", "data", "unknown: ignored", "retry: soon", "id: a\0b", ""]
    results = [parser.feed_line(line) for line in lines]
    assert results[-1] == SSEEvent("message", " two spaces\n", None)
    assert parser.retry is None  # not digits: ignored
    assert parser.last_event_id is None  # an id with NUL is ignored


def test_an_event_without_data_is_not_dispatched_but_its_id_counts() -> None:
    events, parser = events_of([b"id: 5\n\n", b"event: token\ndata: x\n\n"])
    assert events == [SSEEvent("token", "x", "5")]  # the id persists to later events
    assert parser.last_event_id == "5"


def test_a_leading_bom_is_dropped() -> None:
    events, _ = events_of([b"\xef\xbb\xbfdata: x\n\n"])
    assert events == [SSEEvent("message", "x", None)]


def test_an_event_cut_by_a_dropped_connection_is_never_seen() -> None:
    parser = SSEParser()
    first = parser.feed(b"id: 1\nevent: token\ndata: one\n\nid: 2\nevent: token\ndata: tw")
    assert [e.id for e in first] == ["1"]
    parser.reset_connection()  # the connection dropped mid-event
    assert parser.last_event_id == "1"  # what the reconnect sends as Last-Event-ID
    again = parser.feed(b"retry: 500\n\nid: 2\nevent: token\ndata: two\n\n")
    assert again == [SSEEvent("token", "two", "2")] and parser.retry == 500


def test_an_event_says_whether_its_own_lines_gave_its_id() -> None:
    events, _ = events_of([b"id: 1\ndata: a\n\ndata: b\n\nid: 1\ndata: c\n\n"])
    assert [(e.id, e.id_given) for e in events] == [("1", True), ("1", False), ("1", True)]
    assert events[1] == SSEEvent("message", "b", "1", id_given=True)  # not part of the value


def test_a_large_chunk_gives_every_event_in_order() -> None:
    raw = "".join(f"id: {i}\nevent: token\ndata: {i}\n\n" for i in range(1, 5001)).encode()
    events, parser = events_of([raw[:70_000], raw[70_000:]])
    assert [e.data for e in events] == [str(i) for i in range(1, 5001)]
    assert parser.last_event_id == "5000"


def test_a_chunk_that_decodes_to_nothing_keeps_a_pending_cr() -> None:
    # An empty chunk between a CR and its LF: the LF still belongs to the CR (no blank line).
    events, _ = events_of([b"data: x\r", b"", b"\ndata: y\n\n"])
    assert events == [SSEEvent("message", "x\ny", None)]
