"""`GET /v1/sessions/{id}/export` over real HTTP and `ytr export` as a user runs it, on SQLite and
PostgreSQL: the Markdown holds the videos, their summaries, every message, the citations as
timestamp links where the cited text starts and the tool calls; untrusted text stays text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from functions.api.app import create_app
from tests.support.cli import System, local_system
from tests.support.clients import client_for
from tests.support.server import LoopbackServer, serve
from ytresearch.bootstrap import Container
from ytresearch.config import Settings
from ytresearch.db.models import utcnow
from ytresearch.services.users import AuthUser

WATCH = "https://www.youtube.com/watch?v="
ANSWER = "Panels are made of silicon. Photons knock electrons loose, and that flow is the current."
CITED_AT = ANSWER.index("Photons")


@pytest.fixture
def server(container: Container) -> Iterator[LoopbackServer]:
    with serve(create_app(container)) as s:
        yield s


@pytest.fixture
def api(server: LoopbackServer, alice: tuple[AuthUser, str]) -> Iterator[httpx.Client]:
    with client_for(server.base_url, alice[1]) as c:
        yield c


def video(container: Container, video_id: str, **fields: Any) -> None:
    values = {"status": "ready", "title": "Solar", "channel": "Sun TV", "summary": "A summary."} | fields
    with container.store.transaction() as repo:
        row = repo.get_or_add_video(video_id)
        for name, value in values.items():
            setattr(row, name, value)


def session_with(container: Container, user: AuthUser, title: str, video_ids: list[str]) -> uuid.UUID:
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, title)
        for video_id in video_ids:
            repo.link_video(session.id, video_id, None)
        return session.id


def add_message(container: Container, session_id: uuid.UUID, second: int, **fields: Any) -> None:
    values: dict[str, Any] = {"role": "user", "content": f"message {second}"} | fields
    with container.store.transaction() as repo:
        repo.add_message(session_id=session_id, created_at=utcnow() + timedelta(seconds=second), **values)


def citation(at: int, start: float = 65.4, **fields: Any) -> dict[str, Any]:
    return {
        "video_id": "SoLarP4nels",
        "title": "Solar",
        "start": start,
        "end": start + 25,
        "quote": "Photons knock electrons loose",
        "url": f"{WATCH}SoLarP4nels&t={int(start)}",
        "at": at,
    } | fields


def export(api: httpx.Client, session_id: uuid.UUID, **params: str) -> httpx.Response:
    return api.get(f"/v1/sessions/{session_id}/export", params=params)


def shown(inline: Token) -> str:
    """What a reader sees of an inline token: its text, without the escapes."""
    return "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))


def tokens(markdown: str) -> list[Token]:
    """Every token CommonMark (raw HTML allowed, as most renderers do) makes of the document."""
    found: list[Token] = []
    for token in MarkdownIt("commonmark").parse(markdown):
        found.append(token)
        found += token.children or []
    return found


# ---------------------------------------------------------------------- the document


def test_export_holds_the_videos_in_order_and_every_message(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    video(
        container,
        "SoLarP4nels",
        title="How solar panels work",
        duration_seconds=332,
        summary="Sun in.\n\nPower out.",
    )
    video(container, "s0urd0ughBr", title="Sourdough", channel="Bakery", summary="Flour and water.")
    sid = session_with(container, alice[0], "Solar research: part 2!", ["SoLarP4nels", "s0urd0ughBr"])
    with container.store.transaction() as repo:
        repo.set_video_order(sid, [("s0urd0ughBr", "Food"), ("SoLarP4nels", "Energy")])
    for second in range(205):  # more than one page of the repository's reads
        add_message(container, sid, second, role="user" if second % 2 == 0 else "assistant")

    r = export(api, sid)

    assert r.status_code == 200
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="solar-research-part-2.md"'
    text = r.text
    assert text.startswith("# Solar research: part 2\\!\n")
    bread, solar = text.index(f"[Sourdough]({WATCH}s0urd0ughBr)"), text.index(f"({WATCH}SoLarP4nels)")
    assert bread < solar < text.index("## Conversation")  # the list order an organize set
    assert "- Channel: Bakery" in text and "- Group: Food" in text and "- Group: Energy" in text
    assert "- Duration: 05:32" in text and "- Status: ready" in text
    assert "> Sun in.\n>\n> Power out." in text and "> Flour and water." in text
    said = re.findall(r"^> message (\d+)$", text, flags=re.MULTILINE)
    assert said == [str(i) for i in range(205)]  # every one, oldest first
    assert text.count("### You · ") == 103 and text.count("### Claude · ") == 102


def test_citations_are_timestamp_links_where_the_cited_text_starts(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    video(container, "SoLarP4nels")
    sid = session_with(container, alice[0], "Solar", ["SoLarP4nels"])
    add_message(container, sid, 0, content="How do panels work?")
    add_message(
        container,
        sid,
        1,
        role="assistant",
        content=ANSWER,
        citations=[citation(CITED_AT), citation(len(ANSWER), start=130, quote="the current")],
        tool_calls=[
            {"call_id": "c1", "name": "list_videos", "input": {}, "ok": True, "summary": "1 video", "at": 0},
            {
                "name": "add_video",
                "input": {"url": "https://youtu.be/xxxxxxxxxxx"},
                "ok": False,
                "summary": "No such video",
            },
        ],
    )

    text = export(api, sid).text

    first = f'[¹]({WATCH}SoLarP4nels&t=65 "Solar 01:05")'
    second = f'[²]({WATCH}SoLarP4nels&t=130 "Solar 02:10")'
    assert f"> Panels are made of silicon. {first} Photons knock electrons loose" in text
    assert f"that flow is the current.{second}\n" in text
    assert "Sources:\n\n" in text
    assert f"1. [Solar at 01:05 to 01:30]({WATCH}SoLarP4nels&t=65): “Photons knock electrons loose”" in text
    assert f"2. [Solar at 02:10 to 02:35]({WATCH}SoLarP4nels&t=130): “the current”" in text
    assert "Actions:\n\n- `list_videos`: done, 1 video\n" in text
    assert "- `add_video` (url: https://youtu.be/xxxxxxxxxxx): failed, No such video" in text
    links = [t.attrGet("href") for t in tokens(text) if t.type == "link_open"]
    assert f"{WATCH}SoLarP4nels&t=65" in links and f"{WATCH}SoLarP4nels&t=130" in links


def test_the_same_moment_keeps_its_number_and_a_bad_video_id_is_left_out(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(container, alice[0], "Solar", [])
    cites = [
        citation(0),
        citation(CITED_AT, start=65.9),
        citation(5, video_id="../../etc", url="javascript:alert(1)"),
    ]
    add_message(container, sid, 0, role="assistant", content=ANSWER, citations=cites)

    text = export(api, sid).text

    assert text.count(f'[¹]({WATCH}SoLarP4nels&t=65 "Solar 01:05")') == 2 and "[²]" not in text
    assert "javascript" not in text and "../../etc" not in text


def test_failed_and_cancelled_replies_are_marked(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(container, alice[0], "Solar", [])
    add_message(container, sid, 0, role="assistant", content="Half an", status="cancelled")
    add_message(
        container, sid, 1, role="assistant", content="", status="failed", error_code="MODEL_OVERLOADED"
    )
    add_message(container, sid, 2, role="assistant", content="All done.")

    text = export(api, sid).text

    assert re.search(r"### Claude · .* · cancelled\n\n_This reply was cancelled before it finished", text)
    assert re.search(
        r"### Claude · .* · failed\n\n_This reply failed .*\(error MODEL\\_OVERLOADED\)\._", text
    )
    assert "> Half an" in text and "(no text)" in text
    assert text.count(" · cancelled") == 1 and text.count(" · failed") == 1  # not the complete one


def test_an_empty_session_exports_too(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(container, alice[0], "日本語", [])

    r = export(api, sid, format="md")

    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="session-{str(sid)[:8]}.md"'
    assert "No videos." in r.text and "No messages." in r.text


# ---------------------------------------------------------------------- refusals


def test_another_users_or_an_unknown_session_is_404(
    server: LoopbackServer, container: Container, alice: tuple[AuthUser, str], bob: tuple[AuthUser, str]
) -> None:
    sid = session_with(container, alice[0], "Alice's", [])
    with client_for(server.base_url, bob[1]) as b:
        for session_id in (sid, uuid.uuid4()):
            r = export(b, session_id)
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "SESSION_NOT_FOUND"
            assert "Alice" not in r.text


@pytest.mark.parametrize("fmt", ["pdf", "MD", "", "md; rm -rf /"])
def test_an_unknown_format_is_400(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str], fmt: str
) -> None:
    sid = session_with(container, alice[0], "Solar", [])

    r = export(api, sid, format=fmt)

    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_FORMAT" and error["details"] == {"formats": ["md"]}


def test_the_export_needs_a_key(
    server: LoopbackServer, container: Container, alice: tuple[AuthUser, str]
) -> None:
    sid = session_with(container, alice[0], "Solar", [])
    assert httpx.get(f"{server.base_url}/v1/sessions/{sid}/export").status_code == 401


# ---------------------------------------------------------------------- hostile text


HOSTILE = (
    "x](javascript:alert(1)) <script>alert(1)</script> ![i](https://evil.example/t.png) `\x1b[31m\u202e#"
)


def test_hostile_text_cannot_make_links_html_images_or_headings(
    api: httpx.Client, container: Container, alice: tuple[AuthUser, str]
) -> None:
    video(
        container,
        "SoLarP4nels",
        title=HOSTILE,
        channel=HOSTILE,
        summary=f"{HOSTILE}\n# Fake heading\n```\nan unclosed fence\n[ref]: https://evil.example/\n[ref]",
    )
    sid = session_with(container, alice[0], f"{HOSTILE}\n## Injected", ["SoLarP4nels"])
    with container.store.transaction() as repo:
        repo.set_video_order(sid, [("SoLarP4nels", HOSTILE)])
    add_message(container, sid, 0, content=f"<img src=x onerror=alert(2)>\n\n{HOSTILE}\n```")
    content = f"{HOSTILE}\n---\n# Fake\n[a](https://evil.example/) <https://evil.example/> \\"
    cites = [citation(len(content), title=f'{HOSTILE}" onmouseover="x'), citation(3, title="\\")]
    tool_calls = [{"name": "add_video`<b>", "input": {HOSTILE: HOSTILE}, "ok": True, "summary": HOSTILE}]
    add_message(container, sid, 1, role="assistant", content=content, citations=cites, tool_calls=tool_calls)

    r = export(api, sid)

    assert r.status_code == 200 and r.headers["content-disposition"].startswith(
        'attachment; filename="x-javascript'
    )
    text = r.text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", text)
    found = tokens(text)
    assert not [t for t in found if t.type in ("html_inline", "html_block", "image")]
    links = [t.attrGet("href") for t in found if t.type == "link_open"]
    # The video, the two citations where they were placed, and the one source they share.
    assert links == [WATCH + "SoLarP4nels", *[f"{WATCH}SoLarP4nels&t=65"] * 3]
    headings = [(t.tag, shown(found[i + 1])) for i, t in enumerate(found) if t.type == "heading_open"]
    assert [tag for tag, _ in headings] == ["h1", "h2", "h3", "h2", "h3", "h3"]
    assert headings[0][1].startswith("x](javascript:alert(1)) <script>")  # the title, as text
    assert [content for tag, content in headings if tag == "h2"] == ["Videos", "Conversation"]
    # The unclosed fences ended with their quotes: the conversation and the lists came after them.
    assert [t.type for t in found if t.type == "fence"] == ["fence", "fence"]
    assert "Sources:" in [t.content for t in found if t.type == "inline"]


# ---------------------------------------------------------------------- ytr export


@pytest.fixture
def system(settings: Settings, tmp_path: Path) -> Iterator[System]:
    with local_system(settings, tmp_path) as s:
        yield s


def test_ytr_export_writes_the_file_and_never_overwrites_unasked(system: System) -> None:
    sid = system.ytr_json("sessions", "create", "--title", "Solar research")["id"]
    video(system.container, "SoLarP4nels", title="How solar panels work")
    with system.api() as api:
        assert api.post(f"/v1/sessions/{sid}/videos", json={"url": "SoLarP4nels"}).status_code == 200
        served = export(api, uuid.UUID(sid)).text

    written = system.ytr("export", sid)

    path = system.workdir / "solar-research.md"
    assert written.returncode == 0, written.stderr
    assert written.stdout == f"exported session {sid} to solar-research.md ({len(served.encode())} bytes)\n"
    assert path.read_text(encoding="utf-8").split("\n", 3)[3] == served.split("\n", 3)[3]  # after the date
    assert f"[How solar panels work]({WATCH}SoLarP4nels)" in path.read_text(encoding="utf-8")

    path.write_text("my notes", encoding="utf-8")
    again = system.ytr("export", sid)
    assert again.returncode == 1
    assert again.stderr == "error: solar-research.md exists: pass --force to overwrite it (FILE_EXISTS)\n"
    assert path.read_text(encoding="utf-8") == "my notes"

    forced = system.ytr("export", sid, "--force")
    assert forced.returncode == 0 and path.read_text(encoding="utf-8").startswith("# Solar research\n")


def test_ytr_export_to_a_file_a_folder_or_stdout(system: System) -> None:
    sid = system.ytr_json("sessions", "create", "--title", "Bread")["id"]
    (system.workdir / "out").mkdir()

    to_stdout = system.ytr("export", sid, "-o", "-")
    named = system.ytr_json("export", sid, "-o", "bread notes.md")
    into_folder = system.ytr("export", sid, "--output", "out")
    nowhere = system.ytr("export", sid, "-o", "missing/bread.md")

    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("# Bread\n\nExported from")
    assert not list(system.workdir.glob("bread.md"))
    assert named["path"] == "bread notes.md" and named["session_id"] == sid
    assert (system.workdir / "bread notes.md").stat().st_size == named["bytes"]
    assert into_folder.returncode == 0 and (system.workdir / "out" / "bread.md").is_file()
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("error: cannot write missing/bread.md")
    unknown = system.ytr("export", str(uuid.uuid4()))
    assert unknown.returncode == 4 and "(SESSION_NOT_FOUND)" in unknown.stderr
