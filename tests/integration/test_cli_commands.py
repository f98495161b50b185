"""`ytr` as a user runs it (a real subprocess) against the real local system on loopback:
sessions, videos with ingest progress, history paging, and the error lines and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import YTR, System, local_system
from tests.support.postgres import free_port
from tests.support.settings import test_settings
from ytresearch.config import Settings

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def system(settings: Settings, tmp_path: Path) -> Iterator[System]:
    # The offline model and the bundled sample transcripts: ingest runs with no network.
    with local_system(settings, tmp_path) as s:
        yield s


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ---------------------------------------------------------------------- sessions


def test_sessions_create_list_show_delete(system: System) -> None:
    created = system.ytr("sessions", "create", "--title", "Solar research")
    assert created.returncode == 0, created.stderr
    match = re.fullmatch(rf"created session ({UUID}) \(Solar research\)\n", created.stdout)
    assert match, created.stdout
    first = match.group(1)
    second = system.ytr_json("sessions", "create", "--title", "Bread")["id"]

    listed = system.ytr("sessions", "list")
    assert listed.returncode == 0
    rows = listed.stdout.splitlines()
    assert rows[0].split() == ["SESSION", "CREATED", "TITLE"]
    assert [r.split()[0] for r in rows[1:]] == [second, first]  # newest first
    assert rows[2].endswith("Solar research")

    page = system.ytr("sessions", "list", "--limit", "1")
    assert [r.split()[0] for r in page.stdout.splitlines()[1:2]] == [second]
    cursor = re.search(r"more: ytr sessions list --cursor (\S+)", page.stdout)
    assert cursor, page.stdout
    rest = system.ytr("sessions", "list", "--limit", "1", "--cursor", cursor.group(1))
    assert first in rest.stdout and second not in rest.stdout and "more:" not in rest.stdout

    shown = system.ytr("sessions", "show", first)
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[:2] == ["Solar research", f"id:       {first}"]
    assert "videos:   0" in shown.stdout

    deleted = system.ytr("sessions", "delete", first)
    assert deleted.returncode == 0 and deleted.stdout == f"deleted session {first}\n"
    gone = system.ytr("sessions", "show", first)
    assert gone.returncode == 4
    assert one_line_error(gone) == f"error: session {first} not found (SESSION_NOT_FOUND)"


# ---------------------------------------------------------------------- videos


def test_videos_add_shows_progress_then_the_summary(system: System) -> None:
    sid = system.ytr_json("sessions", "create")["id"]
    added = system.ytr("videos", "add", sid, "https://youtu.be/SoLarP4nels")
    assert added.returncode == 0, added.stderr
    with system.api() as api:
        video = api.get("/v1/videos/SoLarP4nels").json()
    assert video["status"] == "ready" and video["title"] and video["summary"]
    lines = added.stdout.splitlines()
    assert [line for line in lines if line.startswith("[")] == [
        "[1/5] validating",
        "[2/5] fetching transcript",
        "[3/5] fetching metadata",
        "[4/5] summarising",
        "[5/5] storing",
    ]
    # Each stage done says what it found, under its own line.
    found = lines.index("[2/5] fetching transcript") + 1
    assert lines[found].strip().startswith("transcript in en") and "lines" in lines[found]
    assert lines[lines.index("[4/5] summarising") + 1].strip().startswith("summary written:")
    assert video["title"] in lines
    assert added.stdout.rstrip().endswith(video["summary"].rstrip())

    # Already ingested: linked at once (200), the summary right away, no progress.
    other = system.ytr_json("sessions", "create")["id"]
    again = system.ytr("videos", "add", other, "SoLarP4nels")
    assert again.returncode == 0
    assert again.stdout.splitlines()[0] == video["title"] and "[1/5]" not in again.stdout
    assert video["summary"].rstrip() in again.stdout

    listed = system.ytr("videos", "list", sid)
    assert listed.stdout.splitlines()[1].split()[:2] == ["SoLarP4nels", "ready"]
    shown = system.ytr("videos", "show", "https://www.youtube.com/watch?v=SoLarP4nels", "--transcript")
    assert shown.returncode == 0 and "Transcript (" in shown.stdout
    assert system.ytr_json("videos", "show", "SoLarP4nels", "--transcript")["transcript_text"] in shown.stdout

    removed = system.ytr("videos", "remove", sid, "SoLarP4nels")
    assert removed.returncode == 0
    assert system.ytr_json("videos", "list", sid) == []


def test_videos_add_no_follow_and_jobs_show(system: System) -> None:
    sid = system.ytr_json("sessions", "create")["id"]
    queued = system.ytr_json("videos", "add", sid, "s0urd0ughBr", "--no-follow")
    job_id = queued["job_id"]
    assert queued["video"]["id"] == "s0urd0ughBr" and job_id
    job = system.ytr("jobs", "show", job_id)
    assert job.returncode == 0
    assert job.stdout.splitlines()[:2] == [f"job:     {job_id}", "video:   s0urd0ughBr"]
    assert "validating" in job.stdout and "storing" in job.stdout


def test_a_failed_ingest_is_one_error_line(system: System) -> None:
    sid = system.ytr_json("sessions", "create")["id"]
    failed = system.ytr("videos", "add", sid, "AAAAAAAAAAA")
    assert failed.returncode == 1
    assert one_line_error(failed).endswith("(VIDEO_UNAVAILABLE)")


# ---------------------------------------------------------------------- history


def test_history_pages_newest_first_and_reads_oldest_first(system: System) -> None:
    sid = system.ytr_json("sessions", "create")["id"]
    with system.api() as api:
        for n in (1, 2, 3):
            assert (
                api.post(f"/v1/sessions/{sid}/messages", json={"message": f"question {n}"}).status_code == 201
            )

    def questions(text: str) -> list[str]:
        return re.findall(r"^question \d$", text, flags=re.M)

    page = system.ytr("history", sid, "--limit", "4")
    assert page.returncode == 0
    assert questions(page.stdout) == ["question 2", "question 3"]  # the newest 4 messages, in reading order
    heads = [line for line in page.stdout.splitlines() if line.startswith("── ")]
    assert [h.split()[1] for h in heads] == ["you", "assistant", "you", "assistant"]
    cursor = re.search(rf"older messages: ytr history {sid} --cursor (\S+)", page.stdout)
    assert cursor, page.stdout

    older = system.ytr("history", sid, "--limit", "4", "--cursor", cursor.group(1))
    assert questions(older.stdout) == ["question 1"] and "older messages" not in older.stdout

    everything = system.ytr("history", sid, "--all", "--limit", "2")
    assert questions(everything.stdout) == ["question 1", "question 2", "question 3"]

    as_json = system.ytr_json("history", sid, "--limit", "4")
    assert [m["role"] for m in as_json["items"]] == ["assistant", "user", "assistant", "user"]  # API order
    assert as_json["has_more"] is True and as_json["next_cursor"] == cursor.group(1)


# ---------------------------------------------------------------------- errors


def test_a_bad_key_is_exit_3_and_one_line(system: System) -> None:
    for args in (("sessions", "list"), ("chat", str(uuid.uuid4()), "hi", "--transport", "ws")):
        result = system.ytr(*args, YTR_API_KEY="ytr_not_a_real_key")
        assert result.returncode == 3, args
        assert one_line_error(result) == "error: API key is not valid (INVALID_API_KEY)"
        assert result.stdout == ""


def test_an_unknown_session_is_exit_4(system: System) -> None:
    unknown = str(uuid.uuid4())
    for args in (
        ("sessions", "show", unknown),
        ("history", unknown),
        ("chat", unknown, "hi"),
        ("chat", unknown, "hi", "--transport", "ws"),
        ("videos", "add", unknown, "SoLarP4nels"),
    ):
        result = system.ytr(*args)
        assert result.returncode == 4, args
        assert one_line_error(result).endswith("(SESSION_NOT_FOUND)")


def test_a_server_that_is_not_running_is_exit_6(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "YTR_API_URL": down,
        "YTR_STREAM_URL": down,
        "YTR_API_KEY": "ytr_x",
        "YTR_CONFIG": str(tmp_path / "absent.toml"),
    }
    for args in (
        ("sessions", "list"),
        ("chat", str(uuid.uuid4()), "hi"),
        ("chat", str(uuid.uuid4()), "hi", "--transport", "ws"),
    ):
        result = subprocess.run(
            [YTR, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )
        assert result.returncode == 6, args
        assert (
            one_line_error(result)
            == f"error: cannot reach {down}: is `make run` running? (CONNECTION_FAILED)"
        )


def test_json_errors_are_one_document_too(system: System) -> None:
    result = system.ytr("--json", "sessions", "show", str(uuid.uuid4()))
    assert result.returncode == 4
    assert json.loads(result.stdout)["error"]["code"] == "SESSION_NOT_FOUND"


def test_rate_limited_is_exit_5_with_retry_after(database_url: str, tmp_path: Path) -> None:
    settings = test_settings(database_url, chat_posts_per_minute=1)
    with local_system(settings, tmp_path) as system:
        sid = system.ytr_json("sessions", "create")["id"]
        assert system.ytr("chat", sid, "first").returncode == 0
        limited = system.ytr("chat", sid, "second")
        assert limited.returncode == 5
        line = one_line_error(limited)
        assert "retry after 60 s" in line and line.endswith("(RATE_LIMITED)")


def test_configure_saves_the_key_and_the_dev_key_file_stays_local(system: System) -> None:
    (system.workdir / ".ytr").mkdir()
    (system.workdir / ".ytr" / "dev_api_key").write_text(system.key + "\n")
    env = system.env()
    del env["YTR_API_KEY"]
    # The dev key file is read for a local address on any port (`make run PORT=...`) ...
    result = subprocess.run(
        [YTR, "sessions", "list"], capture_output=True, text=True, env=env, cwd=system.workdir, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # ... and never sent anywhere else
    remote = subprocess.run(
        [YTR, "sessions", "list"],
        capture_output=True,
        text=True,
        env={**env, "YTR_API_URL": "http://10.255.255.1:9"},
        cwd=system.workdir,
        timeout=60,
    )
    assert remote.returncode == 3 and "no API key" in remote.stderr
    (system.workdir / ".ytr" / "dev_api_key").unlink()
    configured = subprocess.run(
        [YTR, "configure", "--api-key", system.key],
        capture_output=True,
        text=True,
        env=env,
        cwd=system.workdir,
        timeout=60,
    )
    assert configured.returncode == 0
    result = subprocess.run(
        [YTR, "sessions", "list"], capture_output=True, text=True, env=env, cwd=system.workdir, timeout=60
    )
    assert result.returncode == 0, result.stderr
