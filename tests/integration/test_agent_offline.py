"""The whole agent with no API key, as `make run` serves it: the offline model maps plain requests
to tools, the embedded queue ingests the bundled samples, the offline catalog answers searches and
playlists, and every change can be undone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_run.app import build_local_app
from tests.support.clients import client_for
from tests.support.server import serve
from tests.support.sse import read_stream
from tests.support.users import make_user
from ytr.sse import SSEEvent
from ytresearch.bootstrap import Container
from ytresearch.config import Settings

PLAYLIST = "https://www.youtube.com/playlist?list=PLytrSampleScienceAndHistory"


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    container = Container(settings.model_copy(update={"agent_ingest_wait_seconds": 30}))
    app, queue = build_local_app(container)
    queue.start()
    with serve(app) as server:
        yield client_for(server.base_url, make_user(container)[1])
    queue.stop()
    container.engine.dispose()


def ask(api: httpx.Client, sid: str, text: str) -> list[SSEEvent]:
    started = api.post(f"/v1/sessions/{sid}/chat", json={"message": text})
    assert started.status_code == 201, started.text
    status, events, _ = read_stream(api, "GET", started.json()["stream_url"])
    assert status == 200 and events[-1].event == "complete", events[-1:]
    return events


def results(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.event == "tool_result"]


def video_ids(api: httpx.Client, sid: str) -> list[str]:
    return [v["id"] for v in api.get(f"/v1/sessions/{sid}/videos").json()]


def test_offline_intents_end_to_end(api: httpx.Client) -> None:
    sid = api.post("/v1/sessions", json={"title": "offline agent"}).json()["id"]

    # A pasted link: added, ingested while the reply waits (its stages shown), reported ready.
    events = ask(api, sid, "https://youtu.be/SoLarP4nels")
    assert [json.loads(e.data)["name"] for e in events if e.event == "tool_call"] == ["add_video"]
    stages = [json.loads(e.data)["stage"] for e in events if e.event == "tool_progress"]
    assert stages and stages[-1] == "done"
    (added,) = results(events)
    assert added["ok"] and "ready" in added["summary"]
    assert video_ids(api, sid) == ["SoLarP4nels"]

    # A playlist link: the sample playlist's other videos join.
    (listed,) = results(ask(api, sid, f"add this playlist {PLAYLIST}"))
    assert listed["ok"] and set(video_ids(api, sid)) == {"SoLarP4nels", "vacc1neImmu", "PrintPr3ss1"}

    # A search finds only what the samples hold, and adds nothing.
    (found,) = results(ask(api, sid, "find videos about sourdough bread"))
    assert [r["video_id"] for r in found["data"]["results"]][:1] == ["s0urd0ughBr"]
    assert "s0urd0ughBr" not in video_ids(api, sid)

    # Organise, then remove by position; both can be undone from the action log.
    before = video_ids(api, sid)
    (ordered,) = results(ask(api, sid, "organise the videos by duration"))
    assert ordered["ok"]
    after = api.get(f"/v1/sessions/{sid}/videos").json()
    assert [v["position"] for v in after] == list(range(len(after)))
    (removed,) = results(ask(api, sid, "remove the second video"))
    assert removed["ok"] and len(video_ids(api, sid)) == len(before) - 1

    log = api.get(f"/v1/sessions/{sid}/actions").json()["items"]
    assert [a["tool"] for a in log][:3] == ["remove_video", "organize_videos", "search_youtube"]
    assert log[0]["undoable"] and not log[2]["undoable"]
    assert api.post(f"/v1/sessions/{sid}/actions/{log[0]['id']}/undo").status_code == 200
    assert [v["id"] for v in api.get(f"/v1/sessions/{sid}/videos").json()] == [v["id"] for v in after]
    again = api.post(f"/v1/sessions/{sid}/actions/{log[0]['id']}/undo")
    assert again.status_code == 409 and again.json()["error"]["code"] == "ACTION_ALREADY_UNDONE"

    # And a plain question still gets the honest quoting answer, with no tool call.
    events = ask(api, sid, "how efficient are solar panels?")
    assert not results(events) and "Offline model" in "".join(
        json.loads(e.data).get("text", "") for e in events if e.event == "token"
    )
