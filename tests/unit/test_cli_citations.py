"""How `ytr chat` and `ytr shell` show a reply's sources: after its text, on stderr (stdout carries
only the answer), numbered in the order of first use and de-duplicated by (video, start), each with
its title, time and link and its quote shortened below; UTF-8 or ASCII; untrusted titles and quotes
without escapes or line breaks; every citation kept for --json, on every transport."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from ytr.chat import chat_sync, follow_socket
from ytr.citations_view import Citations, SourcesView, clock, watch_url
from ytr.render import Output, StreamedText
from ytr.reply import ChatResult, ReplyFollower

SOLAR = "SoLarP4nels"
BREAD = "s0urd0ughBr"
LONG_QUOTE = (
    "Photons knock electrons loose in the silicon, and the electric field at the junction pushes "
    "them one way, which is the current"
)


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal and what it encodes."""

    def __init__(self, *, tty: bool = False, encoding: str | None = "utf-8") -> None:
        super().__init__()
        self._tty = tty
        self._encoding = encoding

    @property
    def encoding(self) -> Any:  # io.StringIO's is read-only (None)
        return self._encoding

    def isatty(self) -> bool:
        return self._tty


def cite(video_id: str, start: float, title: str, quote: str, **extra: Any) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "title": title,
        "start": start,
        "end": start + 12,
        "quote": quote,
        "url": f"https://www.youtube.com/watch?v={video_id}&t={int(start)}",
        **extra,
    }


def follower(stdout: Stream, stderr: Stream, *, json_mode: bool = False) -> ReplyFollower:
    out = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return ReplyFollower("sse", StreamedText(out, show=not json_mode), out)


def feed(f: ReplyFollower, events: list[tuple[str, dict[str, Any]]]) -> ChatResult:
    result = None
    for kind, data in events:
        result = f.apply(kind, data)
    assert result is not None
    return f.done(result)


ANSWER = "Panels work like this. Light frees electrons. Unrelated, but bread. And again. Inverters."
CITED_REPLY = [
    ("token", {"text": "Panels work like this. "}),
    ("citation", cite(SOLAR, 65.4, "Solar panels explained", LONG_QUOTE)),
    ("token", {"text": "Light frees electrons. "}),
    ("citation", cite(BREAD, 3725, "Sourdough at home", "Feed the starter twice a day.")),
    ("token", {"text": "Unrelated, but bread. "}),
    ("citation", cite(SOLAR, 65.9, "Solar panels explained", "the same second, quoted again")),
    ("token", {"text": "And again."}),
    ("citation", cite(SOLAR, 120, "Solar panels explained", "Inverters turn DC into AC.")),
    ("token", {"text": " Inverters."}),
    (
        "complete",
        {
            "text": ANSWER,
            "message_id": "m1",
        },
    ),
]

SOURCES = [
    "Sources:",
    f"[1] Solar panels explained — 01:05  https://www.youtube.com/watch?v={SOLAR}&t=65",
    '    "Photons knock electrons loose in the silicon, and the electric field at the…"',
    f"[2] Sourdough at home — 1:02:05  https://www.youtube.com/watch?v={BREAD}&t=3725",
    '    "Feed the starter twice a day."',
    f"[3] Solar panels explained — 02:00  https://www.youtube.com/watch?v={SOLAR}&t=120",
    '    "Inverters turn DC into AC."',
]


# ---------------------------------------------------------------------- not a terminal


def test_piped_the_answer_alone_is_on_stdout_and_the_sources_follow_on_stderr() -> None:
    stdout, stderr = Stream(), Stream()
    result = feed(follower(stdout, stderr), CITED_REPLY)

    assert stdout.getvalue() == ANSWER  # no markers, no line added to a piped answer
    assert stderr.getvalue().splitlines() == SOURCES
    assert result.status == "complete"


def test_sources_are_numbered_by_first_use_and_one_moment_is_listed_once() -> None:
    citations = Citations()
    numbers = [citations.add(data) for kind, data in CITED_REPLY if kind == "citation"]

    assert numbers == [1, 2, 1, 3]  # the same video at the same second: the same source
    assert [(s.video_id, s.at) for s in citations.sources] == [
        (SOLAR, "01:05"),
        (BREAD, "1:02:05"),
        (SOLAR, "02:00"),
    ]
    assert len(citations.received) == 4  # --json keeps every one as received


def test_the_quote_is_shortened_to_about_80_characters() -> None:
    line = SourcesView(Output(stdout=Stream(), stderr=Stream())).lines(_one(cite(SOLAR, 0, "T", LONG_QUOTE)))[
        1
    ]
    quoted = line.strip().strip('"')
    assert quoted.endswith("…") and len(quoted) <= 80
    assert LONG_QUOTE.startswith(quoted[:-1])


def test_a_reply_without_citations_prints_no_sources() -> None:
    stdout, stderr = Stream(), Stream()
    feed(follower(stdout, stderr), [("token", {"text": "Hi."}), ("complete", {"text": "Hi."})])
    assert stdout.getvalue() == "Hi." and stderr.getvalue() == ""


# ---------------------------------------------------------------------- a terminal


def test_on_one_terminal_the_answers_line_is_ended_before_the_sources() -> None:
    stdout, stderr = Stream(tty=True), Stream(tty=True)
    f = follower(stdout, stderr)
    feed(f, CITED_REPLY)

    assert stdout.getvalue() == ANSWER + "\n"  # ended once: the caller's end_line adds nothing
    f.text.end_line()
    assert stdout.getvalue() == ANSWER + "\n"
    assert stderr.getvalue().splitlines() == SOURCES


def test_a_terminal_on_stderr_only_leaves_the_piped_answer_untouched() -> None:
    stdout, stderr = Stream(), Stream(tty=True)
    feed(follower(stdout, stderr), CITED_REPLY)
    assert stdout.getvalue() == ANSWER and stderr.getvalue().splitlines() == SOURCES


# ---------------------------------------------------------------------- ASCII and untrusted text


def test_ascii_stand_ins_when_the_stream_is_not_utf8() -> None:
    stdout, stderr = Stream(encoding="ascii"), Stream(encoding="ascii")
    feed(
        follower(stdout, stderr),
        [
            ("citation", cite(SOLAR, 65, "Énergie solaire — “explained” ☀", LONG_QUOTE)),
            ("token", {"text": "Sun."}),
            ("complete", {"text": "Sun."}),
        ],
    )
    lines = stderr.getvalue().splitlines()
    assert lines == [
        "Sources:",
        f"[1] Energie solaire ? ?explained? ? - 01:05  https://www.youtube.com/watch?v={SOLAR}&t=65",
        '    "Photons knock electrons loose in the silicon, and the electric field at the..."',
    ]
    assert stderr.getvalue().isascii()


def test_titles_and_quotes_are_shown_without_escapes_or_line_breaks() -> None:
    stdout, stderr = Stream(), Stream()
    evil_title = "\x1b[31mRed\x1b[0m title\n\rwith \u202eflipped\u202c text\x07"
    evil_quote = "line one\nline two\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\x00"
    feed(
        follower(stdout, stderr),
        [("citation", cite(SOLAR, 5, evil_title, evil_quote)), ("complete", {"text": "Ok."})],
    )
    shown = stderr.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\x00" not in shown
    assert "\u202e" not in shown
    lines = shown.splitlines()
    assert lines[1].startswith("[1] [31mRed [0m title with flipped text — 00:05  https://")
    assert lines[2] == '    "line one line two ]8;;https://evil.example link ]8;;"'


def test_the_link_is_built_from_the_video_and_the_second() -> None:
    assert watch_url({"video_id": SOLAR, "start": 65.9, "url": "https://evil.example/"}) == (
        f"https://www.youtube.com/watch?v={SOLAR}&t=65"
    )
    # Not a sound id or second: the given link, only when it is a web link, cleaned.
    assert (
        watch_url({"video_id": "../x", "start": 3, "url": "https://youtu.be/x\x1b[2J"})
        == "https://youtu.be/x [2J"
    )
    assert watch_url({"video_id": SOLAR, "start": -1, "url": "javascript:alert(1)"}) == ""
    assert watch_url({"video_id": SOLAR, "start": math.nan}) == ""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "00:00"),
        (65.7, "01:05"),
        (599, "09:59"),
        (3725, "1:02:05"),
        (-3, ""),
        (math.inf, ""),
        ("65", ""),
        (True, ""),
    ],
)
def test_times_read_like_the_servers(seconds: Any, shown: str) -> None:
    assert clock(seconds) == shown


def test_a_citation_without_a_video_is_kept_for_json_but_not_listed() -> None:
    citations = Citations()
    assert citations.add({"title": "no video", "start": 3}) is None
    assert citations.sources == [] and citations.received == [{"title": "no video", "start": 3}]


# ---------------------------------------------------------------------- --json and transports


def test_json_mode_prints_no_sources_and_the_result_carries_the_citations_as_received() -> None:
    stdout, stderr = Stream(), Stream()
    framed = {"type": "citation", "id": 2, "request_id": "r", **cite(SOLAR, 65, "Solar", "q")}
    result = feed(
        follower(stdout, stderr, json_mode=True),
        [("citation", framed), ("token", {"text": "A."}), ("complete", {"text": "A."})],
    )
    assert stdout.getvalue() == "" and stderr.getvalue() == ""
    assert result.as_json()["citations"] == [cite(SOLAR, 65, "Solar", "q")]  # without the frame's fields


class FakeClient:
    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply

    def send_message(self, *args: Any) -> dict[str, Any]:
        return self.reply


def test_a_synchronous_reply_lists_the_sources_it_was_saved_with() -> None:
    stdout, stderr = Stream(), Stream()
    saved = [cite(SOLAR, 65, "Solar panels explained", "Light frees electrons.", at=0)]
    f = follower(stdout, stderr)
    reply = {"id": "m1", "status": "complete", "content": "Light frees electrons.", "citations": saved}
    result = f.done(chat_sync(FakeClient(reply), "s", "q", None, f))  # type: ignore[arg-type]

    assert stdout.getvalue() == "Light frees electrons."
    assert stderr.getvalue().splitlines() == [
        "Sources:",
        f"[1] Solar panels explained — 01:05  https://www.youtube.com/watch?v={SOLAR}&t=65",
        '    "Light frees electrons."',
    ]
    assert result.as_json()["citations"] == saved  # `at` included


class FakeSocket:
    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = list(frames)

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        return self.frames.pop(0) if self.frames else None


def test_over_the_websocket_citation_frames_are_sources() -> None:
    rid = "11111111-1111-1111-1111-111111111111"
    sock = FakeSocket(
        [
            {"type": "accepted", "request_id": rid},
            {"type": "citation", "id": 1, "request_id": rid, **cite(SOLAR, 65, "Solar", "Light.")},
            {"type": "token", "id": 2, "request_id": rid, "text": "Light."},
            {"type": "complete", "id": 3, "request_id": rid, "text": "Light.", "message_id": "m"},
        ]
    )
    stdout, stderr = Stream(), Stream()
    f = follower(stdout, stderr)
    result = f.done(follow_socket(None, sock, f))  # type: ignore[arg-type]  # no REST needed

    assert stdout.getvalue() == "Light."
    assert stderr.getvalue().splitlines()[1].startswith("[1] Solar — 01:05  https://")
    assert result.citations == [cite(SOLAR, 65, "Solar", "Light.")]


def _one(data: dict[str, Any]) -> Citations:
    citations = Citations()
    citations.add(data)
    return citations
