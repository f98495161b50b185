"""How `ytr chat` shows the documents the research agent writes (``artifact`` events): a writing
line redrawn in place on a terminal (nothing off one), a saved line with the command that prints
it, a not-saved line; the call line without the document; untrusted titles and content without
escapes; every transport's shape (WebSocket frames, a saved sync reply); and ``--json``."""

from __future__ import annotations

import io
import json
from typing import Any

from ytr.artifacts import artifact_row, file_name
from ytr.chat import follow_socket
from ytr.render import Output, StreamedText, clean_text
from ytr.reply import ChatResult, ReplyFollower

CLEAR = "\r\x1b[2K"
SID = "5e55105e-0000-4000-8000-000000000001"
AID = "a77ac4ed-0000-4000-8000-000000000002"
TABLE = "| # | Video |\n|---|---|\n" + "".join(f"| {n} | Talk {n} |\n" for n in range(1, 120))


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal and what it encodes."""

    def __init__(self, *, tty: bool = False, encoding: str | None = "utf-8") -> None:
        super().__init__()
        self._tty = tty
        self._encoding = encoding

    @property  # io.StringIO's is read-only (None)
    def encoding(self) -> Any:  # type: ignore[override]
        return self._encoding

    def isatty(self) -> bool:
        return self._tty


def follower(stdout: Stream, stderr: Stream, *, json_mode: bool = False) -> ReplyFollower:
    out = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return ReplyFollower("sse", StreamedText(out, show=not json_mode), out, session_id=SID)


def feed(f: ReplyFollower, events: list[tuple[str, dict[str, Any]]]) -> ChatResult:
    result = None
    for kind, data in events:
        result = f.apply(kind, data)
    assert result is not None
    return f.done(result)


def partial(offset: int, content: str, title: str = "Talks compared") -> tuple[str, dict[str, Any]]:
    return (
        "artifact",
        {
            "call_id": "c1",
            "status": "partial",
            "artifact_id": None,
            "title": title,
            "kind": "table",
            "offset": offset,
            "content": content,
        },
    )


CALL = {
    "call_id": "c1",
    "name": "create_artifact",
    "input": {"title": "Talks compared", "kind": "table", "content": TABLE},
}
FINAL = {
    "call_id": "c1",
    "status": "final",
    "artifact_id": AID,
    "version": 2,
    "title": "Talks compared",
    "kind": "table",
    "offset": 0,
    "content": TABLE,
}
RESULT = {
    "call_id": "c1",
    "name": "create_artifact",
    "ok": True,
    "summary": 'saved "Talks compared" (version 2)',
    "data": {
        "artifact_id": AID,
        "version": 2,
        "title": "Talks compared",
        "kind": "table",
        "chars": len(TABLE),
    },
}
SAVED = f'▣ saved "Talks compared" (table, version 2): ytr artifact show {SID} {AID}'


def written(*cuts: int) -> list[tuple[str, dict[str, Any]]]:
    """Partial events with the table written up to each cut (only the new text in each)."""
    events, done = [], 0
    for cut in cuts:
        events.append(partial(done, TABLE[done:cut]))
        done = cut
    return events


def reply(*middle: tuple[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("token", {"text": "In a table."}),
        *middle,
        ("tool_call", CALL),
        ("artifact", FINAL),
        ("tool_result", RESULT),
        ("token", {"text": " Saved."}),
        ("complete", {"text": "In a table. Saved.", "message_id": "m1"}),
    ]


def test_on_a_terminal_the_draft_is_a_line_redrawn_in_place_then_the_saved_line() -> None:
    screen = Stream(tty=True)  # stdout and stderr are the same terminal
    result = feed(follower(screen, screen), reply(*written(40, 400, 1_200)))

    assert screen.getvalue() == (
        "In a table.\n"
        f'{CLEAR}▣ writing "Talks compared"… 40 chars'
        f'{CLEAR}▣ writing "Talks compared"… 400 chars'
        f'{CLEAR}▣ writing "Talks compared"… 1,200 chars'
        f'{CLEAR}→ create_artifact title="Talks compared" kind=table\n'  # the call replaces it
        f"{SAVED}\n"
        '✓ saved "Talks compared" (version 2)\n'
        " Saved."
    )
    assert result.status == "complete"


def test_off_a_terminal_only_the_call_the_saved_line_and_the_result_show() -> None:
    stdout, stderr = Stream(), Stream()
    feed(follower(stdout, stderr), reply(*written(40, 400)))

    assert stdout.getvalue() == "In a table. Saved."  # the document never goes into the answer
    assert stderr.getvalue().splitlines() == [
        '→ create_artifact title="Talks compared" kind=table',
        SAVED,
        '✓ saved "Talks compared" (version 2)',
    ]


def test_a_partial_told_twice_changes_nothing_and_a_shorter_one_cuts_the_draft() -> None:
    screen = Stream(tty=True)
    f = follower(screen, screen)
    for kind, data in [*written(100, 300), partial(100, TABLE[100:300]), partial(50, "x" * 10)]:
        f.apply(kind, data)

    assert screen.getvalue().split(CLEAR)[1:] == [
        '▣ writing "Talks compared"… 100 chars',
        '▣ writing "Talks compared"… 300 chars',
        '▣ writing "Talks compared"… 300 chars',  # the same event again (a resumed stream)
        '▣ writing "Talks compared"… 60 chars',
    ]


def test_a_draft_not_saved_says_why_once() -> None:
    stdout, stderr = Stream(), Stream()
    result = feed(
        follower(stdout, stderr),
        [
            partial(0, "word " * 30, title="Long"),
            ("tool_call", {"call_id": "c1", "name": "create_artifact", "input": {"title": "Long"}}),
            (
                "artifact",
                {
                    "call_id": "c1",
                    "status": "failed",
                    "artifact_id": None,
                    "message": "not saved: the content is longer than 5,000 characters",
                },
            ),
            (
                "tool_result",
                {
                    "call_id": "c1",
                    "name": "create_artifact",
                    "ok": False,
                    "error": {"code": "ARTIFACT_TOO_LONG", "message": "the content is too long"},
                },
            ),
            ("complete", {"text": ""}),
        ],
    )
    assert stderr.getvalue().splitlines() == [
        "→ create_artifact title=Long",
        "▣ not saved: the content is longer than 5,000 characters",
        "✗ ARTIFACT_TOO_LONG: the content is too long",
    ]
    assert result.artifacts == [
        {
            "call_id": "c1",
            "status": "failed",
            "artifact_id": None,
            "message": "not saved: the content is longer than 5,000 characters",
        }
    ]


def test_json_keeps_the_artifacts_without_their_content_and_prints_no_lines() -> None:
    stdout, stderr = Stream(), Stream(tty=True)
    result = feed(follower(stdout, stderr, json_mode=True), reply(*written(40, 400)))

    assert stderr.getvalue() == "" and stdout.getvalue() == ""
    document = result.as_json()
    assert document["artifacts"] == [
        {
            "call_id": "c1",
            "status": "final",
            "artifact_id": AID,
            "version": 2,
            "title": "Talks compared",
            "kind": "table",
            "chars": len(TABLE),
        }
    ]
    assert json.dumps(document)  # one JSON document
    assert document["tool_calls"][0]["name"] == "create_artifact"


def test_untrusted_titles_lose_their_escapes_and_ascii_streams_get_stand_ins() -> None:
    stdout, stderr = Stream(encoding="ascii"), Stream(encoding="ascii", tty=True)
    evil = "Evil\x1b[2J\x1b]0;owned\x07\ntitle\u202e"
    f = follower(stdout, stderr)
    f.apply(*partial(0, "abc", title=evil))
    f.apply("artifact", {**FINAL, "title": evil, "artifact_id": AID + "\x1b[31m"})

    shown = stderr.getvalue()
    assert "\x07" not in shown and "\u202e" not in shown and "\x1b[31m" not in shown
    assert "\x1b[2J" not in shown and "\x1b]0" not in shown
    assert shown.split(CLEAR)[1:] == [
        '[#] writing "Evil [2J ]0;owned title"... 3 chars',
        f'[#] saved "Evil [2J ]0;owned title" (table, version 2): ytr artifact show {SID} {AID} [31m\n',
    ]


def test_websocket_frames_are_followed() -> None:
    rid = "11111111-1111-1111-1111-111111111111"
    frames: list[dict[str, Any]] = [{"type": "accepted", "request_id": rid}]
    for number, (kind, data) in enumerate(reply(*written(40)), start=1):
        frames.append({"type": kind, "id": number, "request_id": rid, **data})

    class Socket:
        def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
            return frames.pop(0) if frames else None

    stdout, stderr = Stream(), Stream()
    f = follower(stdout, stderr)
    result = f.done(follow_socket(None, Socket(), f))  # type: ignore[arg-type]  # no REST needed

    assert SAVED in stderr.getvalue().splitlines()
    assert [a["artifact_id"] for a in result.artifacts] == [AID]
    assert "type" not in result.artifacts[0] and "request_id" not in result.artifacts[0]


def test_a_saved_sync_reply_shows_what_its_artifact_calls_saved() -> None:
    stdout, stderr = Stream(), Stream()
    f = follower(stdout, stderr)
    stored = [
        {
            **CALL,
            "ok": True,
            "summary": RESULT["summary"],
            "content": json.dumps({"ok": True, "summary": RESULT["summary"], "data": RESULT["data"]}),
        },
        {
            "call_id": "c2",
            "name": "revise_artifact",
            "input": {"artifact_id": AID, "content": "x"},
            "ok": False,
            "summary": "no such artifact",
            "content": json.dumps({"ok": False, "error": {"code": "ARTIFACT_NOT_FOUND", "message": "gone"}}),
        },
    ]
    f.replay(stored)

    assert stderr.getvalue().splitlines() == [
        '→ create_artifact title="Talks compared" kind=table',
        SAVED,
        '✓ saved "Talks compared" (version 2)',
        f"→ revise_artifact artifact_id={AID}",
        "▣ not saved: gone",
        "✗ ARTIFACT_NOT_FOUND: gone",
    ]
    assert [(a["status"], a.get("chars")) for a in f.artifacts.as_json()] == [
        ("final", len(TABLE)),
        ("failed", None),
    ]


# ---------------------------------------------------------------------- the commands' helpers


def test_clean_text_keeps_lines_and_tabs_and_drops_every_escape() -> None:
    text = "# T\x1b[31mitle\x1b[0m\r\n\ta\x07b\rc \x1b]8;;http://x\x07link\x1b]8;;\x07 d\x9b2Je\u202ef\x00"
    assert clean_text(text) == "# Title\n\tab\nc link def"


def test_an_artifact_row_and_its_file_name() -> None:
    artifact = {
        "id": AID,
        "kind": "notes",
        "title": "Study\x1b[2J notes: Solar / Wind!",
        "version": 1,
        "latest_version": 3,
        "updated_at": "2025-03-04T05:06:00+00:00",
    }
    row = artifact_row(artifact)
    assert row[:3] == [AID, "notes", "v1"] and row[4] == "Study [2J notes: Solar / Wind!"
    assert file_name(artifact) == "study-2j-notes-solar-wind-v1.md"
    assert file_name({**artifact, "version": 3}) == "study-2j-notes-solar-wind.md"
    assert file_name({"id": AID, "title": "\x1b"}) == "artifact-a77ac4ed.md"
