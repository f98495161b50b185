"""The research agent's audit log and undo over real HTTP, on SQLite and PostgreSQL: actions are
recorded through the repository as the tools record them, then listed and undone through the
routes. Also the storage the agent relies on: the persisted video order, a session's tool mode,
the tool calls kept with a reply, and the migration that adds them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect

from functions.api.app import create_app
from tests.support.clients import client_for
from tests.support.postgres import PostgresServer
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.engine import make_engine
from ytresearch.db.migrations import alembic_config, upgrade_to_head
from ytresearch.db.models import AgentAction, ResearchSession, SessionVideo
from ytresearch.services.sessions import tools_mode_of
from ytresearch.services.users import AuthUser

VIDEOS = ("SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1", "vacc1neImmu")
ACTION_FIELDS = {
    "id",
    "session_id",
    "tool",
    "input",
    "result",
    "status",
    "mutating",
    "undoable",
    "undone_at",
    "duration_ms",
    "request_id",
    "message_id",
    "created_at",
}


@pytest.fixture
def server(container: Container) -> Iterator[LoopbackServer]:
    with serve(create_app(container)) as s:
        yield s


@pytest.fixture
def api(server: LoopbackServer, alice: tuple[AuthUser, str]) -> Iterator[httpx.Client]:
    with client_for(server.base_url, alice[1]) as c:
        yield c


def ready_videos(container: Container, *video_ids: str) -> None:
    with container.store.transaction() as repo:
        for video_id in video_ids:
            video = repo.get_or_add_video(video_id)
            video.status, video.title = "ready", f"Title of {video_id}"


def session_with(api: httpx.Client, container: Container, *video_ids: str) -> str:
    """A new session of the client's user with these (ready) videos linked in this order."""
    ready_videos(container, *video_ids)
    sid = str(api.post("/v1/sessions", json={"title": "research"}).json()["id"])
    for video_id in video_ids:
        assert api.post(f"/v1/sessions/{sid}/videos", json={"url": video_id}).status_code == 200
    return sid


def record(
    container: Container,
    user: AuthUser,
    session_id: str,
    tool: str,
    *,
    undo: dict[str, Any] | None = None,
    status: str = "done",
    input: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    request_id: uuid.UUID | None = None,
) -> str:
    """An action recorded as the agent's tools record them."""
    with container.store.transaction() as repo:
        action = repo.add_action(
            user_id=user.id,
            session_id=uuid.UUID(session_id),
            tool=tool,
            input=input or {},
            status=status,
            result=result or {"ok": status == "done", "summary": f"{tool} ran", "data": {}},
            mutating=tool in ("add_video", "add_playlist", "remove_video", "organize_videos"),
            undo=undo,
            duration_ms=12,
            request_id=request_id,
            message_id=None,
        )
        return str(action.id)


def order(api: httpx.Client, sid: str) -> list[tuple[str, int | None, str | None]]:
    videos = api.get(f"/v1/sessions/{sid}/videos").json()
    return [(v["id"], v["position"], v["group"]) for v in videos]


def undo(api: httpx.Client, sid: str, action_id: str) -> httpx.Response:
    return api.post(f"/v1/sessions/{sid}/actions/{action_id}/undo")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


# ----------------------------------------------------------------- the log


def test_actions_list_newest_first_in_pages_that_cover_everything_once(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container)
    recorded = [
        record(container, alice[0], sid, "search_youtube", input={"query": f"q{i}"}) for i in range(7)
    ]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/v1/sessions/{sid}/actions", params=params).json()
        seen += [a["id"] for a in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if not cursor:
            break

    assert pages == 3
    assert seen == list(reversed(recorded))


def test_an_action_shows_what_the_tool_did_and_whether_it_can_be_undone(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels")
    request_id = uuid.uuid4()
    result = {"ok": True, "summary": "added", "data": {"video_ids": ["SoLarP4nels"]}}
    action_id = record(
        container,
        alice[0],
        sid,
        "add_video",
        undo={"kind": "unlink_video", "video_id": "SoLarP4nels"},
        input={"url": "https://youtu.be/SoLarP4nels"},
        result=result,
        request_id=request_id,
    )
    read_only = record(container, alice[0], sid, "list_videos")

    items = api.get(f"/v1/sessions/{sid}/actions").json()["items"]

    assert [a["id"] for a in items] == [read_only, action_id]
    added = items[1]
    assert set(added) == ACTION_FIELDS
    assert added["session_id"] == sid and added["tool"] == "add_video"
    assert added["input"] == {"url": "https://youtu.be/SoLarP4nels"} and added["result"] == result
    assert added["status"] == "done" and added["mutating"] is True and added["undoable"] is True
    assert added["undone_at"] is None and added["duration_ms"] == 12
    assert added["request_id"] == str(request_id) and added["message_id"] is None
    assert items[0]["undoable"] is False and items[0]["mutating"] is False


# ----------------------------------------------------------------- undo, each kind


def test_undoing_an_added_video_unlinks_it(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels", "s0urd0ughBr")
    action_id = record(
        container, alice[0], sid, "add_video", undo={"kind": "unlink_video", "video_id": "s0urd0ughBr"}
    )

    response = undo(api, sid, action_id)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == action_id and body["undone_at"] is not None and body["undoable"] is False
    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels"]
    listed = api.get(f"/v1/sessions/{sid}/actions").json()["items"][0]
    assert listed["undone_at"] == body["undone_at"] and listed["undoable"] is False


def test_undoing_an_added_playlist_unlinks_the_videos_it_added(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, *VIDEOS)
    action_id = record(
        container,
        alice[0],
        sid,
        "add_playlist",
        undo={"kind": "unlink_videos", "video_ids": ["s0urd0ughBr", "vacc1neImmu"]},
    )

    assert undo(api, sid, action_id).status_code == 200

    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels", "PrintPr3ss1"]


def test_undoing_a_removal_puts_the_video_back_at_its_place_with_its_group(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, *VIDEOS)
    with container.store.transaction() as repo:
        repo.set_video_order(
            uuid.UUID(sid),
            [
                ("vacc1neImmu", "Health"),
                ("PrintPr3ss1", "History"),
                ("SoLarP4nels", "Energy"),
                ("s0urd0ughBr", None),
            ],
        )
    assert api.delete(f"/v1/sessions/{sid}/videos/PrintPr3ss1").status_code == 204
    undo_body = {
        "kind": "relink_video",
        "video_id": "PrintPr3ss1",
        "language": "en",
        "position": 1,
        "group": "History",
    }
    action_id = record(container, alice[0], sid, "remove_video", undo=undo_body)

    assert undo(api, sid, action_id).status_code == 200

    assert order(api, sid) == [
        ("vacc1neImmu", 0, "Health"),
        ("PrintPr3ss1", 1, "History"),
        ("SoLarP4nels", 2, "Energy"),
        ("s0urd0ughBr", 3, None),
    ]
    with container.store.transaction() as repo:
        link = repo.session.get(SessionVideo, (uuid.UUID(sid), "PrintPr3ss1"))
        assert link is not None and link.language == "en"


def test_a_video_put_back_in_a_never_organized_session_keeps_the_others_in_their_order(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1")
    assert api.delete(f"/v1/sessions/{sid}/videos/s0urd0ughBr").status_code == 204
    undo_body = {
        "kind": "relink_video",
        "video_id": "s0urd0ughBr",
        "language": None,
        "position": 1,
        "group": None,
    }
    action_id = record(container, alice[0], sid, "remove_video", undo=undo_body)

    assert undo(api, sid, action_id).status_code == 200

    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1"]


def test_undoing_an_organize_restores_the_previous_order_and_groups(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1")
    before = order(api, sid)
    with container.store.transaction() as repo:
        # What organize_videos does: read the order, store it as the undo, set the new one.
        saved = [{"video_id": v, "position": p, "group": g} for v, p, g in repo.video_order(uuid.UUID(sid))]
        repo.set_video_order(uuid.UUID(sid), [("PrintPr3ss1", "Print"), ("SoLarP4nels", "Science")])
    assert order(api, sid) == [
        ("PrintPr3ss1", 0, "Print"),
        ("SoLarP4nels", 1, "Science"),
        ("s0urd0ughBr", None, None),
    ]
    action_id = record(
        container, alice[0], sid, "organize_videos", undo={"kind": "restore_order", "order": saved}
    )

    assert undo(api, sid, action_id).status_code == 200

    assert (
        order(api, sid)
        == before
        == [("SoLarP4nels", None, None), ("s0urd0ughBr", None, None), ("PrintPr3ss1", None, None)]
    )


def test_undoing_an_add_of_a_video_removed_by_hand_succeeds_and_changes_nothing(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels", "s0urd0ughBr")
    action_id = record(
        container, alice[0], sid, "add_video", undo={"kind": "unlink_video", "video_id": "s0urd0ughBr"}
    )
    assert api.delete(f"/v1/sessions/{sid}/videos/s0urd0ughBr").status_code == 204

    response = undo(api, sid, action_id)

    assert response.status_code == 200 and response.json()["undone_at"] is not None
    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels"]


# ----------------------------------------------------------------- refusals


def test_undoing_twice_is_409_already_undone(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels")
    action_id = record(
        container, alice[0], sid, "add_video", undo={"kind": "unlink_video", "video_id": "SoLarP4nels"}
    )
    assert undo(api, sid, action_id).status_code == 200
    assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 200  # re-added

    assert_error(undo(api, sid, action_id), 409, "ACTION_ALREADY_UNDONE")
    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels"]  # the second undo changed nothing


def test_concurrent_undos_of_one_action_reverse_it_once(
    api: httpx.Client, server: LoopbackServer, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container, "SoLarP4nels")
    action_id = record(
        container, alice[0], sid, "add_video", undo={"kind": "unlink_video", "video_id": "SoLarP4nels"}
    )
    statuses: list[int] = []
    start = threading.Barrier(4)

    def one() -> None:
        with client_for(server.base_url, alice[1]) as client:
            start.wait()
            statuses.append(undo(client, sid, action_id).status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(statuses) == [200, 409, 409, 409]


@pytest.mark.parametrize(
    ("tool", "status", "undo_body"),
    [
        ("list_videos", "done", None),  # read-only
        ("add_video", "failed", None),
        ("add_video", "refused", None),
        ("add_video", "done", None),  # the video was in the session already: nothing to reverse
    ],
)
def test_an_action_with_nothing_to_reverse_is_409_not_undoable(
    api: httpx.Client,
    container: Container,
    alice: tuple[AuthUser, str],
    tool: str,
    status: str,
    undo_body: dict[str, Any] | None,
) -> None:
    sid = session_with(api, container, "SoLarP4nels")
    action_id = record(container, alice[0], sid, tool, status=status, undo=undo_body)

    assert_error(undo(api, sid, action_id), 409, "ACTION_NOT_UNDOABLE")
    assert api.get(f"/v1/sessions/{sid}/actions").json()["items"][0]["undone_at"] is None


def test_putting_a_video_back_in_a_full_session_is_409_and_leaves_the_action_undoable(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    container.settings = container.settings.model_copy(update={"max_videos_per_session": 2})
    sid = session_with(api, container, "SoLarP4nels", "s0urd0ughBr")
    assert api.delete(f"/v1/sessions/{sid}/videos/s0urd0ughBr").status_code == 204
    undo_body = {
        "kind": "relink_video",
        "video_id": "s0urd0ughBr",
        "language": None,
        "position": 1,
        "group": None,
    }
    action_id = record(container, alice[0], sid, "remove_video", undo=undo_body)
    ready_videos(container, "PrintPr3ss1")
    assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "PrintPr3ss1"}).status_code == 200

    assert_error(undo(api, sid, action_id), 409, "TOO_MANY_VIDEOS")

    assert [v for v, _, _ in order(api, sid)] == ["SoLarP4nels", "PrintPr3ss1"]
    assert api.get(f"/v1/sessions/{sid}/actions").json()["items"][0]["undoable"] is True
    assert api.delete(f"/v1/sessions/{sid}/videos/PrintPr3ss1").status_code == 204
    assert undo(api, sid, action_id).status_code == 200  # room again: it goes back


def test_another_users_session_or_action_is_404_and_untouched(
    server: LoopbackServer, container: Container, alice: tuple[AuthUser, str], bob: tuple[AuthUser, str]
) -> None:
    a, b = client_for(server.base_url, alice[1]), client_for(server.base_url, bob[1])
    sid = session_with(a, container, "SoLarP4nels")
    action_id = record(
        container, alice[0], sid, "add_video", undo={"kind": "unlink_video", "video_id": "SoLarP4nels"}
    )
    bobs_session = session_with(b, container)

    assert_error(b.get(f"/v1/sessions/{sid}/actions"), 404, "SESSION_NOT_FOUND")
    assert_error(undo(b, sid, action_id), 404, "SESSION_NOT_FOUND")
    assert_error(undo(b, bobs_session, action_id), 404, "ACTION_NOT_FOUND")
    assert_error(undo(a, sid, str(uuid.uuid4())), 404, "ACTION_NOT_FOUND")
    assert_error(undo(a, str(uuid.uuid4()), action_id), 404, "SESSION_NOT_FOUND")

    assert b.get(f"/v1/sessions/{bobs_session}/actions").json()["items"] == []
    assert a.get(f"/v1/sessions/{sid}/actions").json()["items"][0]["undoable"] is True
    assert [v for v, _, _ in order(a, sid)] == ["SoLarP4nels"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/sessions/not-a-uuid/actions"),
        ("POST", "/v1/sessions/not-a-uuid/actions/00000000-0000-0000-0000-000000000000/undo"),
        ("POST", "/v1/sessions/00000000-0000-0000-0000-000000000000/actions/123/undo"),
    ],
)
def test_malformed_ids_are_400_in_the_error_format(api: httpx.Client, method: str, path: str) -> None:
    assert_error(api.request(method, path), 400, "INVALID_ID")


def test_bad_page_parameters_are_400(api: httpx.Client, container: Container) -> None:
    sid = session_with(api, container)
    assert_error(api.get(f"/v1/sessions/{sid}/actions", params={"cursor": "garbage!"}), 400, "INVALID_CURSOR")
    assert_error(api.get(f"/v1/sessions/{sid}/actions", params={"limit": 0}), 400, "VALIDATION_ERROR")
    assert_error(api.get(f"/v1/sessions/{sid}/actions", params={"limit": 101}), 400, "VALIDATION_ERROR")


def test_deleting_the_session_deletes_its_actions(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container)
    record(container, alice[0], sid, "list_videos")
    assert api.delete(f"/v1/sessions/{sid}").status_code == 204
    with container.store.transaction() as repo:
        assert repo.session.query(AgentAction).count() == 0


# ----------------------------------------------------------------- what the agent reads


def test_agent_added_videos_count_done_adds_not_undone(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(api, container)
    other = session_with(api, container)

    def added(session_id: str, tool: str, ids: list[str], status: str = "done") -> str:
        result = {"ok": status == "done", "summary": "", "data": {"video_ids": ids}}
        return record(container, alice[0], session_id, tool, status=status, result=result)

    added(sid, "add_video", ["SoLarP4nels"])
    added(sid, "add_playlist", ["s0urd0ughBr", "PrintPr3ss1"])
    added(sid, "add_video", ["vacc1neImmu"], status="failed")
    added(sid, "add_video", [])  # was in the session already
    added(other, "add_video", ["vacc1neImmu"])
    undone = added(sid, "add_playlist", ["AAAAAAAAAAA", "BBBBBBBBBBB"])
    with container.store.transaction() as repo:
        assert repo.mark_action_undone(uuid.UUID(undone)) is True
        assert repo.mark_action_undone(uuid.UUID(undone)) is False

        assert repo.count_agent_added_videos(uuid.UUID(sid)) == 3
        assert repo.count_agent_added_videos(uuid.UUID(other)) == 1


def test_session_videos_come_in_list_order_with_position_and_group(
    api: httpx.Client, container: Container
) -> None:
    sid = session_with(api, container, *VIDEOS)
    with container.store.transaction() as repo:
        repo.set_video_order(
            uuid.UUID(sid), [("PrintPr3ss1", "B"), ("vacc1neImmu", "A"), ("PrintPr3ss1", "C")]
        )
        assert repo.video_order(uuid.UUID(sid)) == [
            ("PrintPr3ss1", 0, "B"),
            ("vacc1neImmu", 1, "A"),
            ("SoLarP4nels", None, None),
            ("s0urd0ughBr", None, None),
        ]

    expected = [
        ("PrintPr3ss1", 0, "B"),
        ("vacc1neImmu", 1, "A"),
        ("SoLarP4nels", None, None),
        ("s0urd0ughBr", None, None),
    ]
    assert order(api, sid) == expected
    detail = api.get(f"/v1/sessions/{sid}").json()["videos"]
    assert [(v["id"], v["position"], v["group"]) for v in detail] == expected

    ready_videos(container, "AAAAAAAAAAA")
    assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "AAAAAAAAAAA"}).status_code == 200
    assert order(api, sid)[-1] == ("AAAAAAAAAAA", None, None)  # a new video follows the placed ones


def test_a_session_keeps_its_tool_mode(api: httpx.Client, container: Container) -> None:
    created = api.post("/v1/sessions", json={"title": "careful", "tools": "confirm"})
    assert created.status_code == 201 and created.json()["tools"] == "confirm"
    sid = created.json()["id"]
    assert api.get(f"/v1/sessions/{sid}").json()["tools"] == "confirm"
    assert api.get("/v1/sessions").json()["items"][0]["tools"] == "confirm"

    default = api.post("/v1/sessions").json()
    assert default["tools"] is None
    assert_error(api.post("/v1/sessions", json={"tools": "sometimes"}), 400, "VALIDATION_ERROR")

    settings = container.settings.model_copy(update={"agent_tools_default": "off"})
    with container.store.transaction() as repo:
        chosen = repo.session.get(ResearchSession, uuid.UUID(sid))
        unset = repo.session.get(ResearchSession, uuid.UUID(default["id"]))
        assert chosen is not None and unset is not None
        assert tools_mode_of(chosen, settings) == "confirm"
        assert tools_mode_of(unset, settings) == "off"


def test_a_reply_keeps_its_tool_calls(api: httpx.Client, container: Container) -> None:
    sid = session_with(api, container)
    calls = [{"call_id": "toolu_1", "name": "list_videos", "input": {}, "ok": True, "summary": "0 videos"}]
    with container.store.transaction() as repo:
        repo.add_message(session_id=uuid.UUID(sid), role="user", content="what do I have?")
    with container.store.transaction() as repo:
        repo.add_message(
            session_id=uuid.UUID(sid), role="assistant", content="Nothing yet.", tool_calls=calls
        )

    history = api.get(f"/v1/sessions/{sid}/messages").json()["items"]

    assert [(m["role"], m["tool_calls"]) for m in history] == [("assistant", calls), ("user", None)]


# ----------------------------------------------------------------- the migration


def _migrate_down_and_up(url: str) -> None:
    upgrade_to_head(test_settings(url))
    engine = make_engine(test_settings(url))
    try:
        container = Container(test_settings(url))
        user, _ = make_user(container)
        with container.store.transaction() as repo:
            session = repo.add_session(user.id, "kept", "auto")
            repo.get_or_add_video("SoLarP4nels")
            repo.link_video(session.id, "SoLarP4nels", None)
            repo.add_message(session_id=session.id, role="user", content="kept too")
            repo.add_action(
                user_id=user.id,
                session_id=session.id,
                tool="list_videos",
                input={},
                status="done",
                result={},
                mutating=False,
                undo=None,
                duration_ms=1,
                request_id=None,
                message_id=None,
            )
        container.engine.dispose()

        command.downgrade(alembic_config(engine), "0003")
        schema = inspect(engine)
        assert "agent_actions" not in schema.get_table_names()
        assert "tools_mode" not in {c["name"] for c in schema.get_columns("sessions")}
        assert not {"position", "group_label"} & {c["name"] for c in schema.get_columns("session_videos")}
        assert "tool_calls" not in {c["name"] for c in schema.get_columns("messages")}
        with engine.connect() as conn:  # nothing cascaded away with the dropped columns
            for table in ("sessions", "session_videos", "messages"):
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 1, table

        upgrade_to_head(test_settings(url), engine)
        schema = inspect(engine)
        indexes = {ix["name"] for ix in schema.get_indexes("agent_actions")}
        assert "ix_agent_actions_session_created" in indexes
    finally:
        engine.dispose()


def test_the_migration_downgrades_and_upgrades_on_sqlite(tmp_path: Path) -> None:
    _migrate_down_and_up(f"sqlite:///{tmp_path}/m.db")


@pytest.mark.postgres
def test_the_migration_downgrades_and_upgrades_on_postgres(pg_server: PostgresServer) -> None:
    _migrate_down_and_up(pg_server.create_database(f"act_{uuid.uuid4().hex[:8]}"))
