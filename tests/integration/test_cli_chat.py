"""`ytr chat` against the streaming service: every transport prints the whole answer, Ctrl-C
cancels (upstream closed, partial reply saved as cancelled), a dropped SSE connection is resumed
with no gap or duplicate, and the shell answers line after line over one WebSocket."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply, ToolCall
from tests.support.cli import YTR, System, local_system
from ytresearch.config import Settings
from ytresearch.db.models import Message

ANSWER = "Silicon cells turn photons into current: the field at the junction pushes electrons one way. " * 3
SLOW = "slow " * 400


@pytest.fixture
def system(settings: Settings, claude: Any, tmp_path: Path) -> Iterator[System]:
    # The real anthropic adapter against the fake Claude server, so each answer is known exactly.
    with local_system(settings, tmp_path, chat_model=claude) as s:
        yield s


def new_session(system: System) -> str:
    return str(system.ytr_json("sessions", "create", "--title", "chat")["id"])


def saved(system: System, sid: str) -> list[Message]:
    with system.container.store.transaction() as repo:
        return repo.recent_messages(uuid.UUID(sid), 100)


# Runs argv[1:] with SIGINT at its default. A suite started in the background by a non-interactive
# shell (`&`, nohup) inherits SIGINT ignored, and an ignored signal stays ignored across exec: Ctrl-C
# would never reach `ytr`. Reset in the child before exec, without preexec_fn (unsafe here: this
# process runs threads, uvicorn's among them).
WITH_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


class Running:
    """A `ytr` process whose output is read as it is written; Ctrl-C (SIGINT) reaches it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*WITH_DEFAULT_SIGINT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
        )
        self.stdout, self.stderr = bytearray(), bytearray()
        self.readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _pump(pipe: Any, into: bytearray) -> None:
        while chunk := os.read(pipe.fileno(), 4096):
            into.extend(chunk)

    def wait_for_output(self, chars: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.stdout) < chars:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no output in time: {bytes(self.stdout)!r} {bytes(self.stderr)!r}")
            time.sleep(0.01)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        code = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        return code, self.stdout.decode(), self.stderr.decode()


# ---------------------------------------------------------------------- each transport


@pytest.mark.parametrize("transport", ["sse", "ws", "poll", "sync"])
def test_each_transport_prints_the_whole_answer(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=3, delay_per_chunk=0.002))
    result = system.ytr("chat", sid, "How do panels work?", "--transport", transport)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    messages = saved(system, sid)
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[0].content == "How do panels work?" and messages[1].content == ANSWER


@pytest.mark.parametrize("transport", ["sse", "ws", "poll", "sync"])
def test_json_output_has_message_id_status_and_text(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text=ANSWER, chunk_size=7))
    result = system.ytr("--json", "chat", sid, "q", "--transport", transport)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one JSON document, nothing streamed around it
    assert document["status"] == "complete" and document["text"] == ANSWER
    assert document["message_id"] == str(saved(system, sid)[-1].id)


def test_chat_about_a_video_outside_the_session_is_refused(system: System) -> None:
    sid = new_session(system)
    result = system.ytr("chat", sid, "q", "--video", "SoLarP4nels")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "error: these videos are not in the session: SoLarP4nels (VIDEO_NOT_IN_SESSION)\n"


# ---------------------------------------------------------------------- cancel


@pytest.mark.parametrize("transport", ["sse", "ws", "poll"])
def test_ctrl_c_cancels_the_reply_and_keeps_the_partial_text(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text=SLOW, chunk_size=5, delay_per_chunk=0.02))
    run = Running([YTR, "chat", sid, "q", "--transport", transport], system.env(), system.workdir)
    run.wait_for_output(20)  # some of the answer is on screen
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 130, err
    assert out.endswith("\n[cancelled]\n") and "Traceback" not in err
    partial = out.removesuffix("\n[cancelled]\n")
    assert 20 <= len(partial) < len(SLOW) and SLOW.startswith(partial)
    assert fake_claude.wait_for_disconnect(10)  # the upstream Claude stream was closed
    messages = saved(system, sid)
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "cancelled")]
    assert messages[-1].content == partial  # what was printed is what was saved


# ---------------------------------------------------------------------- resume


class CuttingProxy:
    """A loopback TCP proxy in front of the server that cuts the first connection whose request
    starts with ``cut_request`` (the SSE stream by default) after ``cut_after`` bytes of its
    response, like a dropped connection."""

    def __init__(self, upstream_port: int, cut_after: int, cut_request: str = "GET /v1/streams/") -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cut_request = cut_request
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        self.cut = threading.Event()
        self._claimed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        state = {"cutting": False, "sent": 0}

        def requests_up() -> None:
            try:
                while data := client.recv(65536):
                    text = data.decode("latin-1")
                    with self._lock:
                        self.requests.append(text)
                        if text.startswith(self.cut_request) and not self._claimed:
                            self._claimed = True
                            state["cutting"] = True  # set before the request goes up
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                _close(upstream)

        threading.Thread(target=requests_up, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                if state["cutting"]:
                    room = self.cut_after - state["sent"]
                    if len(data) >= room:
                        client.sendall(data[:room])
                        self.cut.set()
                        break
                    state["sent"] += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_a_dropped_sse_stream_resumes_without_gap_or_duplicate(
    system: System, fake_claude: FakeAnthropic
) -> None:
    text = ANSWER * 3
    sid = new_session(system)
    # 900 bytes: past the first event (the stage, id 1), well before the end (the complete event
    # alone repeats the 846-character text), whatever the token pacing.
    proxy = CuttingProxy(int(system.base_url.rsplit(":", 1)[1]), cut_after=900)
    try:
        fake_claude.enqueue(Reply(text=text, chunk_size=4, delay_per_chunk=0.003))
        result = system.ytr("chat", sid, "q", YTR_STREAM_URL=proxy.url)
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    assert proxy.cut.is_set()  # the first stream really was cut mid-reply
    streams = [r for r in proxy.requests if r.startswith("GET /v1/streams/")]
    assert len(streams) == 2 and "last-event-id:" not in streams[0].lower()
    assert "last-event-id:" in streams[1].lower()
    assert result.stdout == text + "\n"  # every character once, in order
    assert "resuming" in result.stderr
    assert [(m.role, m.status) for m in saved(system, sid)] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


def test_a_dropped_websocket_finishes_the_reply_over_sse(system: System, fake_claude: FakeAnthropic) -> None:
    text = ANSWER * 3
    sid = new_session(system)
    # As above: the cut falls after the stage frame and before the end of the complete frame.
    proxy = CuttingProxy(
        int(system.base_url.rsplit(":", 1)[1]), cut_after=900, cut_request="GET /v1/sessions/"
    )
    try:
        fake_claude.enqueue(Reply(text=text, chunk_size=4, delay_per_chunk=0.003))
        result = system.ytr("chat", sid, "q", "--transport", "ws", YTR_STREAM_URL=proxy.url)
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    assert proxy.cut.is_set()
    resumed = [r for r in proxy.requests if r.startswith("GET /v1/streams/")]
    assert len(resumed) == 1 and "last-event-id:" in resumed[0].lower()
    assert result.stdout == text + "\n"
    assert [(m.role, m.status) for m in saved(system, sid)] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


# ---------------------------------------------------------------------- the shell


@pytest.mark.parametrize("command", [["shell"], ["chat", "--interactive"]])
def test_the_shell_answers_each_line_over_one_websocket(
    system: System, fake_claude: FakeAnthropic, command: list[str]
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text="First answer.", chunk_size=3), Reply(text="Second answer.", chunk_size=3))
    args = [command[0], sid, *command[1:]]
    result = system.ytr(*args, stdin="first question\n\nsecond question\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "First answer.\nSecond answer.\n"
    contents = [(m.role, m.content) for m in saved(system, sid)]
    assert contents == [
        ("user", "first question"),
        ("assistant", "First answer."),
        ("user", "second question"),
        ("assistant", "Second answer."),
    ]


# ---------------------------------------------------------------------- the research agent's tools

UTF8 = {"PYTHONIOENCODING": "utf-8"}  # the tool lines' symbols, whatever the machine's locale


def tool_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("note:")]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_a_tool_call_shows_on_stderr_and_the_reply_alone_on_stdout(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="Let me look.", tool_calls=(ToolCall("list_videos", {}),)),
        Reply(text=" The session has no videos yet."),
    )
    result = system.ytr("chat", sid, "what is in here?", "--transport", transport, **UTF8)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Let me look. The session has no videos yet.\n"
    assert tool_lines(result.stderr) == ["→ list_videos", "✓ 0 videos in the session"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_json_output_includes_the_tool_calls(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="", tool_calls=(ToolCall("remove_video", {"video": "3"}),)),
        Reply(text="There is no third video."),
    )
    result = system.ytr("--json", "chat", sid, "remove the third video", "--transport", transport)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == "There is no third video." and document["limits"] == []
    (call,) = document["tool_calls"]
    assert call["name"] == "remove_video" and call["input"] == {"video": "3"}
    assert call["result"]["ok"] is False and call["result"]["error"]["code"] == "VIDEO_NOT_FOUND"
    assert result.stderr == ""  # no tool lines around the JSON


def test_an_added_video_shows_its_ingest_progress_and_result(
    system: System, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(system)

    def respond(body: dict[str, Any]) -> Reply:
        if "tools" not in body:  # the ingest's summary of the added video
            return Reply(text="A summary of how solar panels work.")
        answered = any(
            block.get("type") == "tool_result"
            for message in body["messages"]
            if isinstance(message.get("content"), list)
            for block in message["content"]
        )
        if not answered:
            return Reply(
                text="Adding it.",
                tool_calls=(ToolCall("add_video", {"url": "https://youtu.be/SoLarP4nels"}),),
            )
        return Reply(text=" It is in the session.")

    fake_claude.responder = respond
    result = system.ytr("chat", sid, "add https://youtu.be/SoLarP4nels", **UTF8)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Adding it. It is in the session.\n"
    lines = tool_lines(result.stderr)
    assert lines[0] == "→ add_video https://youtu.be/SoLarP4nels"
    progress = lines[1:-1]
    assert progress and all(line.startswith("  … SoLarP4nels: ") for line in progress), lines
    assert progress[-1] == "  … SoLarP4nels: ready"
    assert lines[-1].startswith('✓ added "') and lines[-1].endswith('"; it is ready'), lines
    with system.container.store.transaction() as repo:
        assert [video.id for _, video in repo.session_videos(uuid.UUID(sid))] == ["SoLarP4nels"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
@pytest.mark.parametrize("yes", [True, False])
def test_confirm_mode_asks_and_sends_the_decision(
    system: System, fake_claude: FakeAnthropic, transport: str, yes: bool
) -> None:
    sid = new_session(system)
    organize = ToolCall("organize_videos", {"strategy": "date"})
    fake_claude.enqueue(Reply(text="Sorting.", tool_calls=(organize,)), Reply(text=" Done."))
    args = ["chat", sid, "sort the videos by date", "--tools", "confirm", "--transport", transport]
    # stdin is not a terminal here: without --yes the call is denied, with it allowed.
    result = system.ytr(*args, *(["--yes"] if yes else []), stdin="", **UTF8)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sorting. Done.\n"
    lines = tool_lines(result.stderr)
    call = "→ organize_videos strategy=date"
    if yes:
        assert lines == [
            call,
            "? organize_videos strategy=date needs approval: allowed (--yes)",
            "  ✓ allowed",
            "✓ ordered 0 videos by date",
        ]
    else:
        assert lines == [
            call,
            "? organize_videos strategy=date needs approval: denied (not a terminal to ask on; "
            "--yes allows it)",
            "  ✗ denied",
            "✗ NOT_APPROVED: the person declined this action; it was not done",
        ]


def test_tools_off_offers_the_model_no_tools(system: System, fake_claude: FakeAnthropic) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text="Just an answer."))
    result = system.ytr("chat", sid, "add https://youtu.be/SoLarP4nels", "--tools", "off")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Just an answer.\n" and result.stderr == ""
    assert "tools" not in fake_claude.message_requests[-1].body


def test_the_shell_answers_approvals_with_yes(system: System, fake_claude: FakeAnthropic) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="Sorting.", tool_calls=(ToolCall("organize_videos", {"strategy": "duration"}),)),
        Reply(text=" Sorted."),
        Reply(text="Second answer."),
    )
    result = system.ytr(
        "shell", sid, "--tools", "confirm", "--yes", stdin="sort by duration\nthanks\n", **UTF8
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sorting. Sorted.\nSecond answer.\n"
    assert "  ✓ allowed" in result.stderr.splitlines()
    assert "✓ ordered 0 videos by duration" in result.stderr.splitlines()


def test_sync_shows_the_calls_the_saved_reply_made(system: System, fake_claude: FakeAnthropic) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="Looking.", tool_calls=(ToolCall("list_videos", {}),)),
        Reply(text=" Nothing here."),
    )
    result = system.ytr("chat", sid, "what is in here?", "--transport", "sync", "--tools", "auto", **UTF8)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Looking. Nothing here.\n"
    assert tool_lines(result.stderr) == ["→ list_videos", "✓ 0 videos in the session"]


@pytest.mark.parametrize(("answer", "approved"), [("y", True), ("n", False)])
def test_on_a_terminal_the_call_is_asked_about(
    system: System, fake_claude: FakeAnthropic, answer: str, approved: bool
) -> None:
    sid = new_session(system)
    organize = ToolCall("organize_videos", {"strategy": "date"})
    fake_claude.enqueue(Reply(text="Sorting.", tool_calls=(organize,)), Reply(text=" Done."))
    controller, terminal = pty.openpty()  # stdin is a terminal; stdout and stderr are read here
    try:
        proc = subprocess.Popen(
            [YTR, "chat", sid, "sort by date", "--tools", "confirm"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=system.env(**UTF8),
            cwd=system.workdir,
        )
        assert proc.stderr is not None
        prompt = b""
        while not prompt.endswith(b"[y/N] "):
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, prompt
            prompt += chunk
        os.write(controller, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 0, err
    assert out.decode() == "Sorting. Done.\n"
    assert prompt.decode().splitlines()[-1] == 'Allow organize_videos {"strategy": "date"}? [y/N] '
    assert ("  ✓ allowed" if approved else "  ✗ denied") in err.decode().splitlines()
