"""`ytr chat` telling the documents the research agent writes, and `ytr artifacts` / `ytr artifact
show|versions|delete` reading them, as a user runs them (a real subprocess) against the local
system on loopback, the real Claude adapter streaming the tool input from the fake Claude."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply, ToolCall
from tests.support.cli import YTR, System, local_system
from ytresearch.config import Settings

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"
UTF8 = {"PYTHONIOENCODING": "utf-8"}  # the lines' symbols, whatever the machine's locale
TABLE = "\n".join(
    ["| # | Video | Key point |", "|---|---|---|"]
    + [f"| {n} | Talk {n} | point {n} at 02:{n:02d} |" for n in range(1, 41)]
)
# What the model wrote from strangers' transcripts: a colour escape, a bell, a bidi override.
UNTRUSTED = "# Notes\n\n- \x1b[31mred\x1b[0m flag\x07 here\n- right\u202eleft"
CLEANED = "# Notes\n\n- red flag here\n- rightleft\n"


@pytest.fixture
def system(settings: Settings, claude: Any, tmp_path: Path) -> Iterator[System]:
    bounded = settings.model_copy(update={"artifact_max_chars": 5_000})
    with local_system(bounded, tmp_path, chat_model=claude) as s:
        yield s


def new_session(system: System) -> str:
    return str(system.ytr_json("sessions", "create", "--title", "artifacts")["id"])


def create(title: str, content: str, kind: str = "table") -> ToolCall:
    return ToolCall("create_artifact", {"title": title, "kind": kind, "content": content}, chunk_size=40)


def tool_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("note:")]


def saved_id(line: str, sid: str) -> str:
    found = re.fullmatch(rf'▣ saved "[^"]*" \(\w+, version \d+\): ytr artifact show {sid} ({UUID})', line)
    assert found, line
    return found.group(1)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("transport", ["sse", "ws", "sync"])
def test_chat_says_where_the_saved_artifact_is_and_the_commands_read_it(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="I will put it in a table.", tool_calls=(create("Talks compared", TABLE),)),
        Reply(text=" Saved."),
    )
    args = ("chat", sid, "compare the talks in a table", "--transport", transport, "--tools", "auto")
    result = system.ytr(*args, **UTF8)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "I will put it in a table. Saved.\n"  # the document is not in the answer
    lines = tool_lines(result.stderr)
    assert lines[0] == '→ create_artifact title="Talks compared" kind=table'  # not the document
    artifact_id = saved_id(lines[1], sid)
    assert lines[1].startswith('▣ saved "Talks compared" (table, version 1): ')
    assert lines[2:] == ['✓ saved "Talks compared" (version 1)']

    listed = system.ytr("artifacts", sid)
    assert listed.returncode == 0, listed.stderr
    head, row, blank, hint = listed.stdout.splitlines()
    assert head.split() == ["ARTIFACT", "KIND", "VERSION", "UPDATED", "TITLE"]
    assert re.fullmatch(rf"{artifact_id}  table  v1       {TIME}  Talks compared", row), row
    assert (blank, hint) == ("", f"read one: ytr artifact show {sid} ARTIFACT_ID")

    shown = system.ytr("artifact", "show", sid, artifact_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == TABLE + "\n" and shown.stderr == ""


def test_show_versions_out_and_delete(system: System, fake_claude: FakeAnthropic, tmp_path: Path) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(text="", tool_calls=(create("Notes", UNTRUSTED, "notes"),)), Reply(text="Done.")
    )
    first = system.ytr("chat", sid, "write study notes", **UTF8)
    assert first.returncode == 0, first.stderr
    artifact_id = saved_id(tool_lines(first.stderr)[1], sid)
    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(
                ToolCall(
                    "revise_artifact",
                    {"artifact_id": artifact_id, "content": TABLE, "title": "Notes \x1b[2Jtable"},
                    chunk_size=40,
                ),
            ),
        ),
        Reply(text="Revised."),
    )
    second = system.ytr("chat", sid, "make it a table", **UTF8)
    assert second.returncode == 0, second.stderr
    revised = tool_lines(second.stderr)
    # The tool line's input as JSON, its escape spelled out (the tool lines' way).
    assert revised[0] == f'→ revise_artifact artifact_id={artifact_id} title="Notes \\u001b[2Jtable"'

    assert revised[1] == f'▣ saved "Notes [2Jtable" (notes, version 2): ytr artifact show {sid} {artifact_id}'

    # The latest version, an earlier one (untrusted: printed without its escapes), the versions.
    assert system.ytr("artifact", "show", sid, artifact_id).stdout == TABLE + "\n"
    old = system.ytr("artifact", "show", sid, artifact_id, "--version", "1")
    assert old.returncode == 0, old.stderr
    assert old.stdout == CLEANED
    assert "\x1b" not in old.stdout and "\x07" not in old.stdout and "\u202e" not in old.stdout
    as_json = system.ytr_json("artifact", "show", sid, artifact_id, "--version", "1")
    assert (as_json["content"], as_json["version"], as_json["latest_version"]) == (UNTRUSTED, 1, 2)
    versions = system.ytr("artifact", "versions", sid, artifact_id)
    assert versions.returncode == 0, versions.stderr
    lines = versions.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "CHARS", "TITLE"]
    assert re.fullmatch(rf"v2       {TIME}  {len(TABLE):,}  Notes \[2Jtable", lines[1]), lines[1]
    assert re.fullmatch(rf"v1       {TIME}  {len(UNTRUSTED)} +Notes", lines[2]), lines[2]
    assert lines[-1] == f"an earlier one: ytr artifact show {sid} {artifact_id} --version N"

    # --out writes the cleaned document; an existing file needs --force.
    target = tmp_path / "notes.md"
    wrote = system.ytr("artifact", "show", sid, artifact_id, "--version", "1", "--out", str(target))
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout == f'saved "Notes" (version 1) to {target} ({len(CLEANED.encode())} bytes)\n'
    assert target.read_text(encoding="utf-8") == CLEANED
    again = system.ytr("artifact", "show", sid, artifact_id, "-o", str(target))
    assert again.returncode == 1 and one_line_error(again).endswith("(FILE_EXISTS)")
    assert target.read_text(encoding="utf-8") == CLEANED
    forced = system.ytr_json("artifact", "show", sid, artifact_id, "-o", str(target), "--force")
    assert forced["version"] == 2 and forced["path"] == str(target)
    assert target.read_text(encoding="utf-8") == TABLE + "\n"
    folder = system.ytr("artifact", "show", sid, artifact_id, "--version", "1", "-o", str(tmp_path))
    assert folder.returncode == 0, folder.stderr
    assert (tmp_path / "notes-v1.md").read_text(encoding="utf-8") == CLEANED

    deleted = system.ytr("artifact", "delete", sid, artifact_id)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == f"deleted artifact {artifact_id} (every version) from session {sid}\n"
    gone = system.ytr("artifact", "show", sid, artifact_id)
    assert gone.returncode == 4 and one_line_error(gone).endswith("(ARTIFACT_NOT_FOUND)")
    assert system.ytr("artifacts", sid).stdout == "no artifacts in this session yet\n"
    assert system.ytr("artifact", "delete", sid, artifact_id).returncode == 4


def test_chat_json_lists_the_artifacts_and_a_draft_not_saved_says_why(
    system: System, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(
        Reply(
            text="",
            tool_calls=(create("Talks", TABLE), create("Long", "word " * 1_200, "notes")),
        ),
        Reply(text="One of two."),
    )
    result = system.ytr("--json", "chat", sid, "two tables")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no lines around the JSON
    document = json.loads(result.stdout)
    saved, refused = document["artifacts"]
    assert saved["status"] == "final" and saved["title"] == "Talks" and saved["chars"] == len(TABLE)
    assert saved["version"] == 1 and saved["kind"] == "table" and "content" not in saved
    assert uuid.UUID(saved["artifact_id"])
    assert refused["status"] == "failed" and refused["message"].startswith("not saved: ")
    assert [a["id"] for a in system.ytr_json("artifacts", sid)["items"]] == [saved["artifact_id"]]

    fake_claude.enqueue(
        Reply(text="", tool_calls=(create("Long", "word " * 1_200, "notes"),)), Reply(text="No.")
    )
    shown = system.ytr("chat", sid, "long notes", **UTF8)
    assert shown.returncode == 0, shown.stderr
    lines = tool_lines(shown.stderr)
    assert lines[0] == "→ create_artifact title=Long kind=notes"
    assert lines[1].startswith("▣ not saved: ") and "not saved: not saved" not in lines[1]
    assert lines[2].startswith("✗ ")


def test_on_a_terminal_the_draft_is_drawn_in_place_while_written(
    system: System, fake_claude: FakeAnthropic
) -> None:
    sid = new_session(system)
    fake_claude.enqueue(Reply(text="", tool_calls=(create("Talks compared", TABLE * 2),)), Reply(text="Ok."))
    controller, terminal = pty.openpty()  # stderr is a terminal; stdout is read here
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [YTR, "chat", sid, "compare them"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=system.env(**UTF8),
            cwd=system.workdir,
            timeout=120,
        )
    finally:
        os.close(terminal)
        reader.join(10)
        os.close(controller)
    assert proc.returncode == 0, bytes(screen)
    assert proc.stdout.decode() == "Ok.\n"
    drawn = bytes(screen).decode().replace("\r\n", "\n").split("\r\x1b[2K")
    writing = [part for part in drawn if part.startswith('▣ writing "Talks compared"… ')]
    assert len(writing) >= 2, drawn  # it grew while the model wrote it
    counts = [int(re.sub(r"\D", "", part.rsplit("…", 1)[1])) for part in writing]
    assert counts == sorted(counts) and counts[-1] <= len(TABLE * 2)
    assert drawn[-1].startswith(
        '→ create_artifact title="Talks compared" kind=table\n▣ saved "Talks compared"'
    )
