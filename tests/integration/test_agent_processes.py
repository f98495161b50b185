"""The agent across processes sharing PostgreSQL: an approval given on the process that does not
run the reply, a reconnect in the middle of a tool's progress on the other process, and the tool
calls of a reply whose server was killed kept by the one that closes it, and citations resumed
on the other process."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.anthropic_server import DEFAULT_API_KEY, Cited, FakeAnthropic, Reply, ToolCall
from tests.support.clients import client_for
from tests.support.local_service import LocalServiceProcess
from tests.support.processes import service_env
from tests.support.sse import read_stream
from ytr.sse import SSEEvent, SSEParser
from ytresearch.bootstrap import Container
from ytresearch.db.models import Message
from ytresearch.security import generate_api_key
from ytresearch.windows import transcript_windows

pytestmark = pytest.mark.postgres

SAMPLE = "SoLarP4nels"  # a bundled sample: the embedded queue ingests it from the samples


@pytest.fixture(scope="module")
def two_local_processes(
    pg_database: str, fake_anthropic_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LocalServiceProcess]]:
    env = service_env(
        pg_database,
        fake_anthropic_server.base_url,
        DEFAULT_API_KEY,
        YTR_AGENT_INGEST_WAIT_SECONDS=30,
        YTR_DEV_API_KEY=generate_api_key(),
    )
    procs = [LocalServiceProcess(env, log_dir=tmp_path_factory.mktemp("agent-logs")) for _ in range(2)]
    for proc in procs:  # one after the other: each makes the same dev user at start-up
        proc.start()
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture
def pair(
    two_local_processes: list[LocalServiceProcess], pg_url: str, fake_claude: FakeAnthropic
) -> list[str]:
    for proc in two_local_processes:
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()
    return [proc.base_url for proc in two_local_processes]


def session_of(api: httpx.Client) -> str:
    return str(api.post("/v1/sessions", json={"title": "agent"}).json()["id"])


def test_approval_given_on_the_other_process(pair: list[str], key: str, fake_claude: FakeAnthropic) -> None:
    a, b = (client_for(url, key) for url in pair)
    sid = session_of(a)
    fake_claude.enqueue(Reply(tool_calls=(ToolCall("add_video", {"url": SAMPLE}),)), Reply(text="Added."))
    started = a.post(f"/v1/sessions/{sid}/chat", json={"message": "add it", "tools": "confirm"}).json()
    answered: list[httpx.Response] = []
    events: list[SSEEvent] = []
    parser = SSEParser()
    with a.stream("GET", started["stream_url"]) as response:
        for chunk in response.iter_bytes():
            for event in parser.feed(chunk):
                events.append(event)
                if event.event == "approval_required":
                    body = {"call_id": json.loads(event.data)["call_id"], "approve": True}
                    answered.append(b.post(f"/v1/requests/{started['request_id']}/approvals", json=body))
            if events and events[-1].event in ("complete", "error"):
                break

    assert [r.status_code for r in answered] == [200]
    kinds = [e.event for e in events]
    assert kinds.index("approval_required") < kinds.index("approval") < kinds.index("tool_result")
    assert json.loads(next(e.data for e in events if e.event == "approval"))["by"] == "user"
    assert json.loads(next(e.data for e in events if e.event == "tool_result"))["ok"] is True
    assert kinds[-1] == "complete"


def test_reconnect_in_the_middle_of_a_tools_progress_on_the_other_process(
    pair: list[str], key: str, fake_claude: FakeAnthropic
) -> None:
    a, b = (client_for(url, key) for url in pair)
    sid = session_of(a)
    fake_claude.enqueue(
        Reply(text="Adding it.", tool_calls=(ToolCall("add_video", {"url": SAMPLE}),)),
        Reply(text="It is ready; it is about solar panels."),
    )
    started = a.post(f"/v1/sessions/{sid}/chat", json={"message": "add it"}).json()
    # Read from B (it follows A's log) until the first progress line, then drop the connection.
    first: list[SSEEvent] = []
    parser = SSEParser()
    with b.stream("GET", started["stream_url"]) as response:
        for chunk in response.iter_bytes():
            first += parser.feed(chunk)
            if any(e.event == "tool_progress" for e in first):
                break
    cut = next(e for e in first if e.event == "tool_progress")
    first = first[: first.index(cut) + 1]
    _, rest, _ = read_stream(a, "GET", started["stream_url"], headers={"Last-Event-ID": str(cut.id)})

    everything = first + rest
    assert [int(e.id or 0) for e in everything] == list(range(1, len(everything) + 1))
    assert everything[-1].event == "complete"
    stages = [json.loads(e.data)["stage"] for e in everything if e.event == "tool_progress"]
    assert stages[-1] == "done"
    result = json.loads(next(e.data for e in everything if e.event == "tool_result"))
    assert result["ok"] and "ready" in result["summary"]
    assert result["data"]["video"]["summary"]  # the model can talk about it in the same reply


def test_a_killed_servers_reply_keeps_its_tool_calls(
    two_local_processes: list[LocalServiceProcess],
    pair: list[str],
    key: str,
    fake_claude: FakeAnthropic,
    db: Container,
) -> None:
    a, b = (client_for(url, key) for url in pair)
    sid = session_of(a)
    fake_claude.enqueue(
        Reply(text="Looking.", tool_calls=(ToolCall("list_videos", {}),)),
        Reply(text="slow answer " * 400, chunk_size=4, delay_per_chunk=0.01),
    )
    started = a.post(f"/v1/sessions/{sid}/chat", json={"message": "what is here?"}).json()
    _, seen, _ = read_stream(b, "GET", started["stream_url"], stop_after=12)
    assert "tool_result" in [e.event for e in seen]
    two_local_processes[0].kill()  # the owner dies mid-reply; B closes it as orphaned
    deadline = time.monotonic() + 60
    saved: list[Message] = []
    while not saved:
        assert time.monotonic() < deadline, "the orphaned reply was never closed"
        with db.store.transaction() as repo:
            saved = [m for m in repo.recent_messages(uuid.UUID(sid), 10) if m.role == "assistant"]
        time.sleep(0.2)
    reply = saved[0]
    assert reply.status == "failed" and reply.error_code == "REQUEST_INTERRUPTED"
    assert reply.content.startswith("Looking.")
    assert reply.tool_calls is not None and reply.tool_calls[0]["name"] == "list_videos"
    assert reply.tool_calls[0]["at"] == len("Looking.")


def test_citations_resume_on_the_other_process(
    pair: list[str], key: str, fake_claude: FakeAnthropic, db: Container
) -> None:
    a, b = (client_for(url, key) for url in pair)
    sid = session_of(a)
    segments = [{"text": "panels turn light into power", "start": 65.0, "duration": 5.0}]
    with db.store.transaction() as repo:
        video = repo.get_or_add_video("BBBBBBBBBBB")
        video.status, video.title, video.summary = "ready", "Solar", "About panels."
        video.transcript_segments, video.transcript_text = segments, segments[0]["text"]
        repo.replace_windows("BBBBBBBBBBB", "en", transcript_windows(segments))
        repo.link_video(uuid.UUID(sid), "BBBBBBBBBBB", None)
    fake_claude.enqueue(
        Reply(
            cited=(
                Cited("They "),
                Cited("turn light into power.", document_index=0, start=0),
                Cited(" " + "more " * 300),
            ),
            chunk_size=4,
            delay_per_chunk=0.005,
        )
    )
    started = a.post(
        f"/v1/sessions/{sid}/chat", json={"message": "what do panels do?", "tools": "off"}
    ).json()
    _, first, _ = read_stream(b, "GET", started["stream_url"], stop_after=3)
    _, rest, _ = read_stream(a, "GET", started["stream_url"], headers={"Last-Event-ID": str(first[-1].id)})
    everything = first + rest
    assert [int(e.id or 0) for e in everything] == list(range(1, len(everything) + 1))
    citations = [json.loads(e.data) for e in everything if e.event == "citation"]
    assert [(c["video_id"], c["start"]) for c in citations] == [("BBBBBBBBBBB", 65.0)]
    history = b.get(f"/v1/sessions/{sid}/messages").json()["items"]
    assert history[0]["citations"][0]["url"] == "https://www.youtube.com/watch?v=BBBBBBBBBBB&t=65"


def test_an_artifact_draft_survives_its_server_dying(
    two_local_processes: list[LocalServiceProcess],
    pair: list[str],
    key: str,
    fake_claude: FakeAnthropic,
    db: Container,
) -> None:
    """An artifact shown while being written is kept when its reply cannot finish: the process
    that closes the orphaned reply saves the draft exactly as the client was shown it."""
    a, b = (client_for(url, key) for url in pair)
    sid = session_of(a)
    content = "".join(f"| {i} | row {i} of the comparison |\n" for i in range(120))
    draft = ToolCall("create_artifact", {"title": "Rows", "kind": "table", "content": content}, chunk_size=30)
    fake_claude.enqueue(Reply(text="", tool_calls=(draft,), delay_per_chunk=0.03))
    started = a.post(f"/v1/sessions/{sid}/chat", json={"message": "a table"}).json()
    _, seen, _ = read_stream(b, "GET", started["stream_url"], stop_after=4)
    assert [e.event for e in seen] == ["stage", "artifact", "artifact", "artifact"]
    two_local_processes[0].kill()  # the owner dies mid-draft; B closes the reply as orphaned
    _, events, _ = read_stream(b, "GET", started["stream_url"])
    assert events[-1].event == "error" and json.loads(events[-1].data)["code"] == "REQUEST_INTERRUPTED"
    shown = ""
    for event in (json.loads(e.data) for e in events if e.event == "artifact"):
        assert event["status"] == "partial"
        shown = shown[: event["offset"]] + event["content"]
    assert content.startswith(shown) and len(shown) > len(seen) * 30
    (kept,) = b.get(f"/v1/sessions/{sid}/artifacts").json()["items"]
    assert (kept["title"], kept["kind"], kept["content"]) == ("Rows (unfinished)", "table", shown)
