"""How `ytr chat` shows the research agent's tool events: one line per call, progress and result on
stderr (redrawn in place on a terminal), never in the reply's text on stdout; UTF-8 symbols or
ASCII stand-ins; untrusted text without escapes; approvals asked on a terminal, allowed with --yes,
denied elsewhere; and every call kept for --json."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ytr.chat import follow_socket
from ytr.errors import CliError
from ytr.render import Output, StreamedText, clean
from ytr.reply import ChatResult, ReplyFollower
from ytr.tool_view import Approvals, ToolView, input_summary

CLEAR = "\r\x1b[2K"
URL = "https://youtu.be/SoLarP4nels"


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal and what it encodes."""

    def __init__(self, *, tty: bool = False, encoding: str | None = "utf-8", answers: str = "") -> None:
        super().__init__(answers)
        self._tty = tty
        self._encoding = encoding

    @property
    def encoding(self) -> Any:  # io.StringIO's is read-only (None)
        return self._encoding

    def isatty(self) -> bool:
        return self._tty


def follower(
    stdout: Stream, stderr: Stream, *, json_mode: bool = False, approvals: Approvals | None = None
) -> ReplyFollower:
    out = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return ReplyFollower(
        "sse", StreamedText(out, show=not json_mode), out, approvals=approvals or Approvals(stdin=Stream())
    )


def feed(f: ReplyFollower, events: list[tuple[str, dict[str, Any]]]) -> ChatResult | None:
    result = None
    for kind, data in events:
        result = f.apply(kind, data)
    return f.done(result) if result is not None else None


ADD_VIDEO = [
    ("token", {"text": "Adding it."}),
    ("tool_call", {"call_id": "c1", "name": "add_video", "input": {"url": URL}}),
    ("tool_progress", {"call_id": "c1", "stage": "queued", "message": "SoLarP4nels: queued for ingest"}),
    ("tool_progress", {"call_id": "c1", "stage": "running", "message": "SoLarP4nels: ingest started"}),
    ("tool_progress", {"call_id": "c1", "stage": "running", "message": "SoLarP4nels: ingest started"}),
    ("tool_progress", {"call_id": "c1", "stage": "fetching_transcript", "video_id": "SoLarP4nels"}),
    (
        "tool_result",
        {
            "call_id": "c1",
            "name": "add_video",
            "ok": True,
            "summary": 'added "Solar panels explained"; it is ready',
            "data": {"video_ids": ["SoLarP4nels"]},
        },
    ),
    ("token", {"text": " It is ready."}),
    ("complete", {"text": "Adding it. It is ready.", "message_id": "m1"}),
]


# ---------------------------------------------------------------------- not a terminal


def test_piped_output_keeps_the_reply_on_stdout_and_one_line_per_step_on_stderr() -> None:
    stdout, stderr = Stream(), Stream()
    result = feed(follower(stdout, stderr), ADD_VIDEO)

    assert stdout.getvalue() == "Adding it. It is ready."  # exactly the reply: nothing mixed in
    assert stderr.getvalue().splitlines() == [
        f"→ add_video {URL}",
        "  … SoLarP4nels: queued for ingest",
        "  … SoLarP4nels: ingest started",  # told once, though the event came twice
        "  … fetching transcript",  # no message: the stage's name
        '✓ added "Solar panels explained"; it is ready',
    ]
    assert result is not None and result.status == "complete"


def test_ascii_stand_ins_when_the_stream_is_not_utf8() -> None:
    stdout, stderr = Stream(encoding="ascii"), Stream(encoding="ascii")
    feed(
        follower(stdout, stderr),
        [
            (
                "tool_call",
                {"call_id": "c1", "name": "add_video", "input": {"url": "https://youtu.be/nope0000000"}},
            ),
            ("tool_progress", {"call_id": "c1", "stage": "queued", "message": "nope0000000: queued"}),
            (
                "tool_result",
                {
                    "call_id": "c1",
                    "name": "add_video",
                    "ok": False,
                    "summary": "video nope0000000 does not exist",
                    "data": {},
                    "error": {"code": "VIDEO_NOT_FOUND", "message": "video nope0000000 does not exist"},
                },
            ),
            ("limit_reached", {"limit": "videos_per_reply", "max": 5, "message": "this reply added enough"}),
            ("complete", {"text": ""}),
        ],
    )
    assert stderr.getvalue().splitlines() == [
        "-> add_video https://youtu.be/nope0000000",
        "  ... nope0000000: queued",
        "[x] VIDEO_NOT_FOUND: video nope0000000 does not exist",
        "! limit reached: this reply added enough (max 5)",
    ]
    assert stdout.getvalue() == ""


def test_unicode_failure_and_limit_lines() -> None:
    stderr = Stream()
    view = ToolView(Output(stdout=Stream(), stderr=stderr))
    view.apply("tool_call", {"call_id": "c", "name": "remove_video", "input": {"video": "7"}})
    view.apply(
        "tool_result", {"call_id": "c", "ok": False, "error": {"code": "VIDEO_NOT_FOUND", "message": "no 7"}}
    )
    view.apply("limit_reached", {"limit": "tool_rounds", "max": 8, "message": "enough rounds"})
    assert (
        stderr.getvalue()
        == "→ remove_video 7\n✗ VIDEO_NOT_FOUND: no 7\n! limit reached: enough rounds (max 8)\n"
    )


# ---------------------------------------------------------------------- a terminal


def test_on_a_terminal_progress_is_redrawn_in_place_and_the_answer_never_shares_a_line() -> None:
    screen = Stream(tty=True)  # stdout and stderr are the same terminal
    feed(follower(screen, screen), ADD_VIDEO)

    assert screen.getvalue() == (
        "Adding it.\n"  # the answer's line is ended before the tool lines
        f"→ add_video {URL}\n"
        f"{CLEAR}  … SoLarP4nels: queued for ingest"
        f"{CLEAR}  … SoLarP4nels: ingest started"
        f"{CLEAR}  … fetching transcript"
        f'{CLEAR}✓ added "Solar panels explained"; it is ready\n'  # the result replaces the progress
        " It is ready."
    )


def test_a_progress_line_is_ended_when_something_else_comes() -> None:
    screen = Stream(tty=True)
    f = follower(screen, screen)
    feed(
        f,
        [
            ("tool_call", {"call_id": "c1", "name": "add_video", "input": {"url": URL}}),
            ("tool_progress", {"call_id": "c1", "stage": "queued", "message": "queued"}),
            ("limit_reached", {"limit": "tokens_per_reply", "max": 1000, "message": "enough tokens"}),
            ("token", {"text": "Stopping here."}),
        ],
    )
    assert screen.getvalue() == (
        f"→ add_video {URL}\n{CLEAR}  … queued\n! limit reached: enough tokens (max 1000)\nStopping here."
    )


def test_a_terminal_on_stderr_only_leaves_the_piped_answer_untouched() -> None:
    stdout, stderr = Stream(), Stream(tty=True)
    feed(follower(stdout, stderr), ADD_VIDEO)
    assert stdout.getvalue() == "Adding it. It is ready."
    assert stderr.getvalue().startswith(f"→ add_video {URL}\n{CLEAR}  … SoLarP4nels: queued for ingest")


# ---------------------------------------------------------------------- untrusted text


def test_titles_and_inputs_are_shown_without_escapes_or_line_breaks() -> None:
    stderr = Stream()
    view = ToolView(Output(stdout=Stream(), stderr=stderr))
    view.apply(
        "tool_call", {"call_id": "c", "name": "search_youtube", "input": {"query": "solar\x1b[2J\nnow"}}
    )
    view.apply(
        "tool_result", {"call_id": "c", "ok": True, "summary": 'added "\x1b]0;pwned\x07Evil\u202etitle"'}
    )
    text = stderr.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text.splitlines() == ["→ search_youtube solar [2J now", '✓ added " ]0;pwned Evil title"']


def test_input_summaries() -> None:
    assert input_summary({}) == ""
    assert input_summary({"url": URL}) == URL
    assert input_summary({"video": 3}) == "3"
    assert input_summary({"query": "solar panels"}) == "solar panels"
    assert input_summary({"strategy": "date"}) == "strategy=date"
    assert input_summary({"url": URL, "limit": 5}) == f"url={URL} limit=5"
    assert input_summary({"query": "a b", "max_results": 3}) == 'query="a b" max_results=3'
    assert input_summary({"strategy": "topic", "groups": [{"label": "A", "video_ids": ["x"]}]}) == (
        '{"strategy": "topic", "groups": [{"label": "A", "video_ids": ["x"]}]}'
    )
    long = input_summary({"query": "word " * 100}, width=20)
    assert len(long) == 20 and long.endswith("…")
    assert input_summary({"query": "word " * 100}, width=20, more="...").endswith("...")
    assert clean("a\r\n\tb\x00c") == "a b c"


def test_a_call_with_no_input_is_just_its_name() -> None:
    stderr = Stream()
    view = ToolView(Output(stdout=Stream(), stderr=stderr))
    view.apply("tool_call", {"call_id": "c", "name": "list_videos", "input": {}})
    view.apply("tool_result", {"call_id": "c", "ok": True, "summary": "2 videos in the session"})
    assert stderr.getvalue() == "→ list_videos\n✓ 2 videos in the session\n"


# ---------------------------------------------------------------------- --json


def test_json_mode_prints_no_tool_lines_and_the_result_carries_every_call() -> None:
    stdout, stderr = Stream(), Stream()
    f = follower(stdout, stderr, json_mode=True, approvals=Approvals(assume_yes=True))
    f.respond = lambda call_id, approve: None
    result = feed(
        f,
        [
            *ADD_VIDEO[:-1],
            ("tool_call", {"call_id": "c2", "name": "remove_video", "input": {"video": "1"}}),
            ("approval_required", {"call_id": "c2", "name": "remove_video", "input": {"video": "1"}}),
            ("approval", {"call_id": "c2", "approved": True, "by": "user"}),
            (
                "tool_result",
                {"call_id": "c2", "name": "remove_video", "ok": True, "summary": "removed", "data": {}},
            ),
            ("limit_reached", {"limit": "videos_per_reply", "max": 5, "message": "enough"}),
            ("complete", {"text": "Adding it. It is ready.", "message_id": "m1"}),
        ],
    )
    assert stdout.getvalue() == stderr.getvalue() == ""
    assert result is not None
    document = result.as_json()
    first, second = document["tool_calls"]
    assert first["name"] == "add_video" and first["input"] == {"url": URL}
    assert [p["stage"] for p in first["progress"]] == ["queued", "running", "fetching_transcript"]
    assert first["result"]["ok"] is True and first["result"]["data"] == {"video_ids": ["SoLarP4nels"]}
    assert first["approval"] is None
    assert second["approval"] == {"required": True, "approved": True, "by": "user"}
    assert document["limits"] == [{"limit": "videos_per_reply", "max": 5, "message": "enough"}]


# ---------------------------------------------------------------------- approvals

ASK = ("approval_required", {"call_id": "c9", "name": "add_video", "input": {"url": URL}})


def approving(stdin: Stream, *, yes: bool = False) -> tuple[ReplyFollower, Stream, list[tuple[str, bool]]]:
    stderr = Stream()
    f = follower(Stream(), stderr, approvals=Approvals(assume_yes=yes, stdin=stdin))
    sent: list[tuple[str, bool]] = []
    f.respond = lambda call_id, approve: sent.append((call_id, approve))
    return f, stderr, sent


@pytest.mark.parametrize(("answer", "approved"), [("y\n", True), ("YES\n", True), ("\n", False), ("", False)])
def test_a_terminal_is_asked(answer: str, approved: bool) -> None:
    f, stderr, sent = approving(Stream(tty=True, answers=answer))
    f.apply(*ASK)
    assert stderr.getvalue() == f'Allow add_video {{"url": "{URL}"}}? [y/N] '
    assert sent == [("c9", approved)]


def test_no_terminal_denies_and_says_how_to_allow() -> None:
    f, stderr, sent = approving(Stream(answers="y\n"))  # a pipe is never read for an answer
    f.apply(*ASK)
    assert sent == [("c9", False)]
    assert stderr.getvalue() == (
        f"? add_video {URL} needs approval: denied (not a terminal to ask on; --yes allows it)\n"
    )


def test_yes_allows_without_asking() -> None:
    f, stderr, sent = approving(Stream(tty=True), yes=True)
    f.apply(*ASK)
    assert sent == [("c9", True)]
    assert stderr.getvalue() == f"? add_video {URL} needs approval: allowed (--yes)\n"


def test_each_call_is_answered_once_and_the_outcome_is_shown() -> None:
    f, stderr, sent = approving(Stream(), yes=True)
    f.apply(*ASK)
    f.apply(*ASK)  # told again (a replay): not answered twice
    f.apply("approval", {"call_id": "c9", "approved": True, "by": "user"})
    f.apply("approval_required", {"call_id": "c10", "name": "remove_video", "input": {"video": "2"}})
    f.apply("approval", {"call_id": "c10", "approved": False, "by": "timeout"})
    assert sent == [("c9", True), ("c10", True)]
    lines = stderr.getvalue().splitlines()
    assert lines[1] == "  ✓ allowed" and lines[3] == "  ✗ denied: no answer in time"


def test_an_answer_the_server_refuses_is_a_note_not_a_failure() -> None:
    f, stderr, _ = approving(Stream(), yes=True)

    def refuse(call_id: str, approve: bool) -> None:
        raise CliError("ALREADY_DECIDED", "the call was decided already")

    f.respond = refuse
    assert f.apply(*ASK) is None
    assert stderr.getvalue().splitlines()[-1] == (
        "note: the answer was not taken: the call was decided already (ALREADY_DECIDED)"
    )


def test_a_transport_that_cannot_answer_does_not_ask() -> None:
    stdin = Stream(tty=True, answers="y\n")
    f, stderr, _ = approving(stdin)
    f.respond = None
    f.apply(*ASK)
    assert stdin.read() == "y\n"  # nothing was read
    assert "cannot answer approvals" in stderr.getvalue()


# ---------------------------------------------------------------------- a saved reply (sync)


def test_a_saved_reply_shows_the_calls_it_made() -> None:
    stderr = Stream()
    view = ToolView(Output(stdout=Stream(), stderr=stderr))
    view.replay(
        [
            {"call_id": "a", "name": "list_videos", "input": {}, "ok": True, "summary": "0 videos", "at": 0},
            {
                "call_id": "b",
                "name": "add_video",
                "input": {"url": URL},
                "ok": False,
                "summary": "no such video",
                "content": '{"ok": false, "error": {"code": "VIDEO_NOT_FOUND", "message": "no such video"}}',
                "at": 0,
            },
        ]
    )
    assert stderr.getvalue().splitlines() == [
        "→ list_videos",
        "✓ 0 videos",
        f"→ add_video {URL}",
        "✗ VIDEO_NOT_FOUND: no such video",
    ]
    assert [c["result"]["ok"] for c in view.as_json()] == [True, False]


# ---------------------------------------------------------------------- the WebSocket


class FakeSocket:
    """Scripted frames in, frames out recorded (what `follow_socket` reads and sends)."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = list(frames)
        self.sent: list[dict[str, Any]] = []

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        return self.frames.pop(0) if self.frames else None

    def approve(self, call_id: str, approve: bool) -> bool:
        self.sent.append({"type": "approve", "call_id": call_id, "approve": approve})
        return True

    def cancel(self) -> bool:
        self.sent.append({"type": "cancel"})
        return True


def test_over_the_websocket_the_answer_is_an_approve_frame_and_a_refusal_is_a_note() -> None:
    rid = "11111111-1111-1111-1111-111111111111"
    sock = FakeSocket(
        [
            {"type": "accepted", "request_id": rid},
            {
                "type": "tool_call",
                "id": 2,
                "request_id": rid,
                "call_id": "c1",
                "name": "add_video",
                "input": {"url": URL},
            },
            {
                "type": "approval_required",
                "id": 3,
                "request_id": rid,
                "call_id": "c1",
                "name": "add_video",
                "input": {"url": URL},
            },
            {
                "type": "error",
                "code": "APPROVAL_NOT_PENDING",
                "message": "not waiting",
            },  # the server's answer
            {"type": "session_update", "session_id": "s", "change": "video_added", "video_id": "SoLarP4nels"},
            {
                "type": "approval",
                "id": 4,
                "request_id": rid,
                "call_id": "c1",
                "approved": False,
                "by": "timeout",
            },
            {
                "type": "tool_result",
                "id": 5,
                "request_id": rid,
                "call_id": "c1",
                "name": "add_video",
                "ok": False,
                "error": {"code": "APPROVAL_DENIED", "message": "not approved"},
            },
            {"type": "token", "id": 6, "request_id": rid, "text": "Not added."},
            {"type": "complete", "id": 7, "request_id": rid, "text": "Not added.", "message_id": "m"},
        ]
    )
    stdout, stderr = Stream(), Stream()
    f = follower(stdout, stderr, approvals=Approvals(assume_yes=True))
    result = f.done(follow_socket(None, sock, f))  # type: ignore[arg-type]  # no REST needed

    assert sock.sent == [{"type": "approve", "call_id": "c1", "approve": True}]
    assert result.status == "complete" and stdout.getvalue() == "Not added."
    assert stderr.getvalue().splitlines() == [
        f"→ add_video {URL}",
        f"? add_video {URL} needs approval: allowed (--yes)",
        "note: the answer was not taken: not waiting (APPROVAL_NOT_PENDING)",
        "  ✗ denied: no answer in time",
        "✗ APPROVAL_DENIED: not approved",
    ]
    assert result.tool_calls[0]["approval"] == {"required": True, "approved": False, "by": "timeout"}


def test_a_streamed_answer_never_writes_a_terminal_escape() -> None:
    """Model text quotes strangers: its escape sequences and control characters never reach the
    terminal, even split over two deltas; line breaks and tabs stay, and what was shown is kept
    as it came (a resume compares with the server's text)."""
    stdout = io.StringIO()
    text = StreamedText(Output(stdout=stdout, stderr=io.StringIO()))
    for delta in ["Title: \x1b]0;pwned\x07ok\n", "red \x1b", "[31mtext\x1b[0m\t", "end\u202e\r\n"]:
        text.add(delta)
    written = stdout.getvalue()
    assert "\x1b" not in written and "\x07" not in written and "\u202e" not in written
    assert written == "Title: ok\nred [31mtext\tend\n"
    assert text.shown.endswith("end\u202e\r\n")
