"""`ytr actions` and `ytr undo` as a user runs them (a real subprocess) against the local system on
loopback, with the agent's actions recorded through the repository as its tools record them."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import System, local_system
from ytresearch.config import Settings
from ytresearch.services.users import AuthUser, authenticate

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"


@pytest.fixture
def system(settings: Settings, tmp_path: Path) -> Iterator[System]:
    with local_system(settings, tmp_path) as s:
        yield s


def owner(system: System) -> AuthUser:
    return authenticate(system.container.store, system.key)


def session_with(system: System, *video_ids: str) -> str:
    with system.container.store.transaction() as repo:
        for video_id in video_ids:
            video = repo.get_or_add_video(video_id)
            video.status, video.title = "ready", f"Title of {video_id}"
    sid = str(system.ytr_json("sessions", "create")["id"])
    with system.api() as api:
        for video_id in video_ids:
            assert api.post(f"/v1/sessions/{sid}/videos", json={"url": video_id}).status_code == 200
    return sid


def record(
    system: System,
    sid: str,
    tool: str,
    input: dict[str, Any],
    *,
    undo: dict[str, Any] | None = None,
    status: str = "done",
    result: dict[str, Any] | None = None,
) -> str:
    with system.container.store.transaction() as repo:
        action = repo.add_action(
            user_id=owner(system).id,
            session_id=uuid.UUID(sid),
            tool=tool,
            input=input,
            status=status,
            result=result or {"ok": status == "done", "summary": "", "data": {}},
            mutating=undo is not None,
            undo=undo,
            duration_ms=5,
            request_id=None,
            message_id=None,
        )
        return str(action.id)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_actions_lists_newest_first_with_the_undo_command(system: System) -> None:
    sid = session_with(system, "SoLarP4nels")
    searched = record(system, sid, "search_youtube", {"query": "solar panels", "max_results": 5})
    added = record(
        system,
        sid,
        "add_video",
        {"url": "https://youtu.be/SoLarP4nels"},
        undo={"kind": "unlink_video", "video_id": "SoLarP4nels"},
        result={"ok": True, "summary": "added", "data": {"video_ids": ["SoLarP4nels"]}},
    )
    refused = record(
        system,
        sid,
        "add_video",
        {"url": "s0urd0ughBr"},
        status="refused",
        result={
            "ok": False,
            "summary": "",
            "data": {},
            "error": {"code": "VIDEO_LIMIT_REACHED", "message": ""},
        },
    )

    listed = system.ytr("actions", sid)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(re.match(TIME + "  ", line) for line in lines if not line.startswith("    "))
    assert [line if line.startswith("    ") else line[18:] for line in lines] == [
        "add_video       refused  url: s0urd0ughBr  (VIDEO_LIMIT_REACHED)",
        "add_video       done     url: https://youtu.be/SoLarP4nels",
        f"    undo: ytr undo {sid} {added}",
        "search_youtube  done     query: solar panels, max_results: 5",
    ]
    as_json = system.ytr_json("actions", sid)
    assert [a["id"] for a in as_json["items"]] == [refused, added, searched]
    assert as_json["has_more"] is False


def test_actions_pages_with_limit_and_cursor(system: System) -> None:
    sid = session_with(system)
    ids = [record(system, sid, "search_youtube", {"query": f"q{i}"}) for i in range(3)]

    first = system.ytr("actions", sid, "--limit", "2")

    assert [line.split()[-1] for line in first.stdout.splitlines()[:2]] == ["q2", "q1"]
    cursor = re.search(rf"older actions: ytr actions {sid} --cursor (\S+)", first.stdout)
    assert cursor, first.stdout
    rest = system.ytr_json("actions", sid, "--limit", "2", "--cursor", cursor.group(1))
    assert [a["id"] for a in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    empty = system.ytr("actions", session_with(system))
    assert empty.returncode == 0 and empty.stdout == "no agent actions in this session yet\n"


def test_tool_input_cannot_write_terminal_escapes(system: System) -> None:
    sid = session_with(system)
    record(system, sid, "search_youtube", {"query": "evil\x1b[2J\x1b]0;owned\x07 title\nnext"})

    listed = system.ytr("actions", sid)

    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert len(listed.stdout.splitlines()) == 1


def test_undo_says_what_it_reversed_and_refuses_a_second_time(system: System) -> None:
    sid = session_with(system, "SoLarP4nels", "s0urd0ughBr")
    added = record(
        system,
        sid,
        "add_video",
        {"url": "s0urd0ughBr"},
        undo={"kind": "unlink_video", "video_id": "s0urd0ughBr"},
        result={"ok": True, "summary": "added", "data": {"video_ids": ["s0urd0ughBr"]}},
    )

    undone = system.ytr("undo", sid, added)

    assert undone.returncode == 0, undone.stderr
    assert undone.stdout == f"undid add_video ({added}): s0urd0ughBr is no longer in the session\n"
    assert [v["id"] for v in system.ytr_json("videos", "list", sid)] == ["SoLarP4nels"]
    listed = system.ytr("actions", sid)
    assert "[undone " in listed.stdout and "undo: ytr undo" not in listed.stdout

    again = system.ytr("undo", sid, added)
    assert again.returncode == 1
    assert one_line_error(again) == f"error: action {added} was undone already (ACTION_ALREADY_UNDONE)"


def test_undo_of_a_removal_and_of_an_organize_as_json(system: System) -> None:
    sid = session_with(system, "SoLarP4nels", "s0urd0ughBr")
    with system.api() as api:
        assert api.delete(f"/v1/sessions/{sid}/videos/SoLarP4nels").status_code == 204
    removed = record(
        system,
        sid,
        "remove_video",
        {"video": "1"},
        undo={
            "kind": "relink_video",
            "video_id": "SoLarP4nels",
            "language": None,
            "position": 0,
            "group": None,
        },
        result={"ok": True, "summary": "removed", "data": {"video_id": "SoLarP4nels", "position": 1}},
    )
    organized = record(
        system, sid, "organize_videos", {"strategy": "date"}, undo={"kind": "restore_order", "order": []}
    )

    back = system.ytr("undo", sid, removed)
    assert back.stdout == f"undid remove_video ({removed}): SoLarP4nels is back in the session\n"
    assert [v["id"] for v in system.ytr_json("videos", "list", sid)] == ["SoLarP4nels", "s0urd0ughBr"]
    as_json = system.ytr_json("undo", sid, organized)
    assert as_json["id"] == organized and as_json["undone_at"] and as_json["undoable"] is False


def test_undo_errors_are_one_line_with_their_exit_codes(system: System) -> None:
    sid = session_with(system)
    read_only = record(system, sid, "list_videos", {})

    not_undoable = system.ytr("undo", sid, read_only)
    assert not_undoable.returncode == 1
    assert one_line_error(not_undoable).endswith("(ACTION_NOT_UNDOABLE)")

    unknown = system.ytr("undo", sid, str(uuid.uuid4()))
    assert unknown.returncode == 4 and one_line_error(unknown).endswith("(ACTION_NOT_FOUND)")

    for args in (("undo", str(uuid.uuid4()), read_only), ("actions", str(uuid.uuid4()))):
        result = system.ytr(*args)
        assert result.returncode == 4 and one_line_error(result).endswith("(SESSION_NOT_FOUND)")

    malformed = system.ytr("undo", sid, "not-an-id")
    assert malformed.returncode == 1 and one_line_error(malformed).endswith("(INVALID_ID)")
