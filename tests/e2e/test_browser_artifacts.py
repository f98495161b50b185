"""Artifacts on the browser page, in headless Chromium through the real local system (the helpers
and the `browser_system` fixture of test_browser_page.py): saved artifacts rendered from Markdown
without executing any markup in it, their versions and Delete in the Artifacts panel, an artifact
the offline model writes streaming into its reply (SSE and WebSocket), and scripted `artifact`
events (partials, a replayed one, a failed draft, the final) reaching a reply.

Screenshots go where test_browser_page.py puts them (test-artifacts/screenshots/).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e import test_browser_page as page_tests
from tests.e2e.test_browser_page import (
    LAST_ASSISTANT,
    Page,
    add_ready_video,
    ask,
    drive_page,
    launch_chromium,
    open_session,
    wait_reply,
)
from tests.support.clients import client_for
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.services import artifacts as artifact_service

pytestmark = pytest.mark.slow

# The local system on loopback (build_local_app, the embedded queue, the offline model).
browser_system = page_tests.browser_system

YOUTUBE_LINK = "https://www.youtube.com/watch?v=SoLarP4nels&t=65"
RAW_IMG = '<img src=x onerror="window.__pwned=1">'
RAW_SCRIPT = "<script>window.__pwned=2</script>"
JS_LINK = "[x](javascript:window.__pwned=3)"
TABLE_HEAD = ["Video", "Channel", "Length", "Key point", "Moment", "Verdict"]
TABLE_ROWS = [
    ["Solar panels", "Energy Explained", "3:00", "light frees electrons in silicon", "[01:05]", "clear"],
    ["Sourdough at home", "Bread Lab", "4:10", "feed the starter every day", "[02:10]", "tasty"],
]
MALICIOUS = f"""# Research artifact

## Comparison of the videos

{RAW_IMG}

{RAW_SCRIPT}

Do not click {JS_LINK}; watch [the moment]({YOUTUBE_LINK}) instead.

| {" | ".join(TABLE_HEAD)} |
|{"---|" * len(TABLE_HEAD)}
| **{TABLE_ROWS[0][0]}** | {" | ".join(TABLE_ROWS[0][1:])} |
| {TABLE_ROWS[1][0]} | {" | ".join(TABLE_ROWS[1][1:])} |

### Key points

- light *frees* electrons
- the starter needs `flour` and water
  - every day

<iframe src="https://evil.example/"></iframe> [data](data:text/html,<b>x</b>) [vb](vbscript:msgbox)
"""
FIRST_DRAFT = "# First draft\n\nOnly a *sketch* so far."

CARD = "#artifact-list .artifact-item"
EMPTY_PANEL = "document.getElementById('artifacts-empty').textContent.startsWith('No artifacts yet')"
# Every element a rendered artifact may hold: the renderer's own, nothing from the Markdown.
ALLOWED_TAGS = (
    "P H1 H2 H3 H4 H5 H6 UL OL LI TABLE THEAD TBODY TR TH TD DIV A STRONG EM DEL CODE PRE BLOCKQUOTE HR BR"
)
RENDERED = """(card => card && ({
    title: card.querySelector('.artifact-title').textContent,
    kind: card.querySelector('.artifact-kind').textContent,
    version: card.querySelector('.artifact-version').textContent,
    headings: [...card.querySelectorAll('.artifact-body h1, .artifact-body h2, .artifact-body h3')]
        .map(h => [h.tagName, h.textContent]),
    head: [...card.querySelectorAll('.artifact-body table th')].map(c => c.textContent),
    rows: [...card.querySelectorAll('.artifact-body table tbody tr')]
        .map(r => [...r.children].map(c => c.textContent)),
    links: [...card.querySelectorAll('.artifact-body a')].map(a => ({
        text: a.textContent, href: a.getAttribute('href'), target: a.getAttribute('target'),
        rel: a.getAttribute('rel')})),
    items: [...card.querySelectorAll('.artifact-body li')].map(li => [...li.childNodes]
        .filter(n => n.nodeName !== 'UL' && n.nodeName !== 'OL').map(n => n.textContent).join('')),
    text: card.querySelector('.artifact-body').textContent,
    tags: [...new Set([...card.querySelectorAll('.artifact-body *')].map(e => e.tagName))],
    attributes: [...new Set([...card.querySelectorAll('.artifact-body *')]
        .flatMap(e => e.getAttributeNames()))].sort(),
}))"""
NOTHING_INJECTED = """[document.scripts.length,
    document.querySelectorAll('img, iframe, object, embed, style, script:not([src])').length,
    document.body.querySelectorAll(
        '[onerror], [onclick], [src], a[href^="javascript:"], a[href^="data:"]').length,
    typeof window.__pwned]"""


def card_of(artifact_id: str) -> str:
    return f"document.querySelector('{CARD}[data-artifact-id=\"{artifact_id}\"]')"


async def rendered(page: Page, card: str) -> dict[str, Any]:
    return dict(await page.js(f"({RENDERED})({card})"))


# ------------------------------------------------------------------ saved artifacts in the panel


def test_artifacts_render_without_executing_markup(browser_system: tuple[str, Container]) -> None:
    """A saved artifact whose Markdown holds raw HTML, a javascript: link, a table, headings, a
    list and a YouTube link: the panel shows it rendered, the markup as text, nothing run; an
    earlier version is shown on request; Delete (confirmed in the page) removes it for good."""
    base_url, container = browser_system
    user, key = make_user(container)
    api = client_for(base_url, key)
    session_id = uuid.UUID(api.post("/v1/sessions", json={"title": "Artifacts"}).json()["id"])
    first = artifact_service.create_artifact(
        container.store,
        container.settings,
        user,
        session_id,
        title="Draft",
        kind="table",
        content=FIRST_DRAFT,
    )
    title = 'Solar vs <b>sourdough</b> "comparison"'
    saved = artifact_service.revise_artifact(
        container.store, container.settings, user, session_id, first.id, content=MALICIOUS, title=title
    )
    assert saved.version == 2
    artifact_id = str(saved.id)

    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(
                devtools_url,
                lambda page: panel_flow(page, base_url, key, str(session_id), artifact_id, title),
            )
        )
    listed = api.get(f"/v1/sessions/{session_id}/artifacts")
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert api.get(f"/v1/sessions/{session_id}/artifacts/{artifact_id}").status_code == 404


async def panel_flow(
    page: Page, base_url: str, key: str, session_id: str, artifact_id: str, title: str
) -> None:
    await open_session(page, base_url, key, session_id)
    await page.click("#tab-artifacts")  # the Artifacts tab of the main column
    card = card_of(artifact_id)
    await page.wait_for(f"Boolean({card})", "the artifact in the Artifacts panel")
    await asyncio.sleep(0.3)  # time for an onerror handler to have fired, were there an <img>
    shown = await rendered(page, card)
    assert shown["title"] == title  # the title's markup is text too
    assert shown["kind"] == "table" and shown["version"] == "v2"
    assert await page.js(f"{card}.querySelector('.artifact-card').open") is True  # the newest is open
    assert await page.text("#artifacts-count") == "1"
    assert await page.js("document.getElementById('artifacts-empty').hidden") is True
    # Headings, the table with its cells (inline formatting in a cell), the list.
    assert shown["headings"] == [
        ["H1", "Research artifact"],
        ["H2", "Comparison of the videos"],
        ["H3", "Key points"],
    ]
    assert shown["head"] == TABLE_HEAD
    assert shown["rows"] == TABLE_ROWS
    assert await page.js(f"{card}.querySelector('tbody tr td strong').textContent") == TABLE_ROWS[0][0]
    assert shown["items"] == ["light frees electrons", "the starter needs flour and water", "every day"]
    assert await page.js(f"{card}.querySelector('.artifact-body li li').textContent") == "every day"  # nested
    # The one http(s) link is a link, opening a new tab told nothing; the others are text.
    assert shown["links"] == [
        {"text": "the moment", "href": YOUTUBE_LINK, "target": "_blank", "rel": "noopener noreferrer"}
    ]
    for literal in (RAW_IMG, RAW_SCRIPT, JS_LINK, '<iframe src="https://evil.example/"></iframe>'):
        assert literal in shown["text"], literal
    assert "[data](data:text/html,<b>x</b>)" in shown["text"] and "[vb](vbscript:msgbox)" in shown["text"]
    # Nothing but the renderer's own elements and attributes; no markup ran.
    assert set(shown["tags"]) <= set(ALLOWED_TAGS.split()), shown["tags"]
    assert set(shown["attributes"]) <= {
        "aria-label",
        "class",
        "href",
        "rel",
        "role",
        "scope",
        "tabindex",
        "target",
    }
    assert await page.js(f"{card}.querySelectorAll('script, img, iframe, b').length") == 0
    links = await page.js(f"[...{card}.querySelectorAll('a')].map(a => a.href)")
    assert links and all(link.startswith("https://") for link in links), links
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0, "undefined"]
    await page.js(f"{card}.scrollIntoView()")
    await page.screenshot("20-artifact-panel")

    # ---- a narrow window: the wide table scrolls inside its card, the page does not
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=False
    )
    try:
        await page.wait_for("window.innerWidth === 390", "the narrow window")
        await page.js(f"{card}.querySelector('.md-table').scrollIntoView()")
        sizes = await page.js(
            f"""(() => {{ const wrap = {card}.querySelector('.md-table');
                return [wrap.scrollWidth, wrap.clientWidth, document.documentElement.scrollWidth,
                        wrap.getBoundingClientRect().right]; }})()"""
        )
        scroll_width, client_width, page_width, right = sizes
        assert scroll_width > client_width, sizes  # the table scrolls sideways
        assert page_width <= 390 and right <= 390, sizes  # and the page does not
    finally:
        await page.send("Emulation.clearDeviceMetricsOverride")
    await page.screenshot("21-artifact-narrow", width=390, height=844)

    # ---- an earlier version: picked in the card's select (GET .../artifacts/{id}?version=1)
    await page.wait_for(f"{card}.querySelectorAll('.artifact-versions option').length === 2", "the versions")
    await page.wait_for(
        f"{card}.querySelector('.artifact-versions option').textContent.startsWith('v2 (latest) · ')",
        "the versions listed with their dates",
    )
    await page.js(
        f"(() => {{ const s = {card}.querySelector('.artifact-versions'); s.value = '1';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await page.wait_for(f"{card}.querySelector('.artifact-version').textContent === 'v1 of 2'", "version 1")
    first = await rendered(page, card)
    assert first["title"] == "Draft" and first["headings"] == [["H1", "First draft"]]
    assert first["text"] == "First draftOnly a sketch so far."
    assert await page.js(f"{card}.querySelector('.artifact-body em').textContent") == "sketch"
    await page.js(
        f"(() => {{ const s = {card}.querySelector('.artifact-versions'); s.value = '2';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await page.wait_for(f"{card}.querySelector('.artifact-version').textContent === 'v2'", "version 2 again")
    assert (await rendered(page, card))["rows"] == TABLE_ROWS

    # ---- Delete asks first (in the page, no dialog): Keep keeps it, Delete for good removes it
    await page.click(f'{CARD}[data-artifact-id="{artifact_id}"] .artifact-delete')
    await page.wait_for(f"!{card}.querySelector('.artifact-confirm').hidden", "the confirmation")
    assert await page.js(f"{card}.querySelector('.artifact-delete').hidden") is True
    await page.click(f'{CARD}[data-artifact-id="{artifact_id}"] .artifact-delete-cancel')
    await page.wait_for(f"{card}.querySelector('.artifact-confirm').hidden", "the confirmation to close")
    await page.click(f'{CARD}[data-artifact-id="{artifact_id}"] .artifact-delete')
    await page.click(f'{CARD}[data-artifact-id="{artifact_id}"] .artifact-delete-confirm')
    await page.wait_for(f"!{card}", "the deleted artifact to leave the panel")
    assert await page.js("document.getElementById('artifacts-empty').hidden") is False
    assert await page.text("#artifacts-count") == ""
    # Still gone after a reload (the server deleted it).
    await page.reload()
    await page.wait_for("!document.getElementById('session-view').hidden", "the session")
    await page.wait_for(f"{EMPTY_PANEL}", "the empty panel")
    assert await page.js(f"document.querySelectorAll('{CARD}').length") == 0


# ------------------------------------------------------------------ the offline model writes one

RECORD_DRAFTS = """(() => {
    window.__drafts = [];
    new MutationObserver(() => {
        for (const card of document.querySelectorAll('#messages .artifact-live')) {
            const seen = [card.dataset.callId, card.dataset.status,
                          card.querySelector('.artifact-body').textContent.length];
            const last = window.__drafts[window.__drafts.length - 1];
            if (!last || last.join('|') !== seen.join('|')) window.__drafts.push(seen);
        }
    }).observe(document.getElementById('messages'),
               {subtree: true, childList: true, characterData: true, attributes: true});
})()"""
LIVE = f"{LAST_ASSISTANT}.querySelector('.artifact-live')"
TOOL = "c => [c.dataset.tool, c.dataset.state]"


def test_the_offline_model_writes_an_artifact_into_its_reply(browser_system: tuple[str, Container]) -> None:
    """The offline model asked to "make a comparison table of the videos", over SSE, then "write study
    notes" over the WebSocket: each reply shows the artifact as it is written, then saved (its
    version), with the create_artifact tool card; the Artifacts panel follows, newest first; the
    panel shows them again after a reload."""
    base_url, container = browser_system
    _, key = make_user(container)
    api = client_for(base_url, key)
    session_id = str(api.post("/v1/sessions", json={"title": "Written by the model"}).json()["id"])
    for video_id in ("SoLarP4nels", "s0urd0ughBr"):
        add_ready_video(api, session_id, video_id)

    def listed() -> list[dict[str, Any]]:
        response = api.get(f"/v1/sessions/{session_id}/artifacts")
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(devtools_url, lambda page: model_flow(page, base_url, key, session_id, listed))
        )


async def model_flow(page: Page, base_url: str, key: str, session_id: str, listed: Any) -> None:
    await open_session(page, base_url, key, session_id)
    await page.wait_for("document.querySelectorAll('.video-card .summary-text').length === 2", "summaries")
    await page.wait_for("!document.getElementById('chat-send').disabled", "the history")
    await page.wait_for(f"{EMPTY_PANEL}", "the empty panel")

    # ---- over SSE: a comparison table
    await page.js(RECORD_DRAFTS)
    await ask(page, "make a comparison table of the videos")
    await page.wait_for(f"Boolean({LIVE})", "the artifact in the reply")
    await wait_reply(page, "complete")
    table = await saved_in_reply(page, listed, 1)
    assert table["kind"] == "table" and table["rows"] and len(table["head"]) >= 2, table
    drafts = await page.js("window.__drafts")
    # Shown while it was written (growing), then saved once; the offline model writes the input
    # a line every 50 ms and the server tells partials at most every 250 ms, before the final.
    statuses = [status for _, status, _ in drafts]
    assert statuses[0] == "streaming" and statuses[-1] == "saved" and statuses.count("saved") == 1, drafts
    grown = [length for _, status, length in drafts if status == "streaming"]
    assert grown == sorted(grown) and len({call for call, _, _ in drafts}) == 1, drafts
    await page.js(f"{LIVE}.scrollIntoView()")
    await page.screenshot("22-artifact-in-reply")

    # ---- over the WebSocket: study notes; the panel lists both, newest first
    await page.click("#transport-ws")
    await ask(page, "write study notes")
    await page.wait_for(f"Boolean({LIVE})", "the notes in the reply")
    await wait_reply(page, "complete")
    notes = await saved_in_reply(page, listed, 2)
    assert notes["kind"] == "notes" and notes["headings"], notes
    items = await asyncio.to_thread(listed)
    assert [a["title"] for a in items] == [notes["title"], table["title"]]
    await page.click("#tab-artifacts")
    await page.screenshot("23-artifacts-panel-two")

    # ---- after a reload: the panel from the server (the replies' tool cards are in the history)
    await page.reload()
    await page.wait_for(f"document.querySelectorAll('{CARD}').length === 2", "both artifacts")
    titles = await page.js(
        f"[...document.querySelectorAll('{CARD} .artifact-title')].map(t => t.textContent)"
    )
    assert titles == [notes["title"], table["title"]]
    # The history loads beside the panel: wait for its replies too.
    await page.wait_for(
        "document.querySelectorAll('#messages li.message.assistant').length === 2", "the history"
    )
    tools = await page.js(f"[...document.querySelectorAll('#messages .tool-card')].map({TOOL})")
    assert tools == [["create_artifact", "ok"], ["create_artifact", "ok"]]
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0, "undefined"]


async def saved_in_reply(page: Page, listed: Any, count: int) -> dict[str, Any]:
    """The last reply's artifact card, saved: as the server has it, and in the panel too."""
    live = await rendered(page, LIVE)
    assert live["version"] == "v1 saved", live
    assert await page.js(f"{LIVE}.dataset.status") == "saved"
    artifact_id = str(await page.js(f"{LIVE}.dataset.artifactId"))
    tool = await page.js(f"[...{LAST_ASSISTANT}.querySelectorAll('.tool-card')].map({TOOL})")
    assert tool == [["create_artifact", "ok"]], tool
    items = await asyncio.to_thread(listed)
    assert len(items) == count and str(items[0]["id"]) == artifact_id, items
    assert live["title"] == items[0]["title"] and live["kind"] == items[0]["kind"]
    await page.wait_for(f"Boolean({card_of(artifact_id)})", "the new artifact in the panel")
    await page.wait_for(f"document.querySelectorAll('{CARD}').length === {count}", "the panel")
    in_panel = await rendered(page, card_of(artifact_id))
    assert {k: in_panel[k] for k in ("title", "kind", "headings", "head", "rows", "links", "text")} == {
        k: live[k] for k in ("title", "kind", "headings", "head", "rows", "links", "text")
    }
    assert in_panel["version"] == "v1"
    assert await page.js(f"{card_of(artifact_id)}.querySelector('.artifact-card').open") is True
    return live


# ------------------------------------------------------------------ scripted artifact events

SUN = "# Sun 🌞 power\n\n- one 🌞\n- two\n\n| Video | Point |\n|---|---|\n| Solar | light |\n"


def code_points(text: str) -> int:
    return len(text)  # Python counts code points, as the server does in `offset`


def test_scripted_artifact_events_reach_the_reply(browser_system: tuple[str, Container]) -> None:
    """`artifact` events written to the real server's event log (a reply running on another task)
    reach the page over its stream: partials grow the draft (an offset that rewrites the end, a
    replayed partial, offsets in code points past an emoji), a failed draft disappears with its
    message, the final one is the saved artifact, which the panel then lists."""
    base_url, container = browser_system
    user, key = make_user(container)
    api = client_for(base_url, key)
    session_id = uuid.UUID(api.post("/v1/sessions", json={"title": "Scripted artifacts"}).json()["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    with container.store.transaction() as repo:
        request_id = repo.add_chat_request(
            user_id=user.id,
            session_id=session_id,
            expires_at=later,
            status="streaming",
            owner="another-task",
            heartbeat_at=later,
        ).id
    cut = SUN.index("- two")
    head = {
        "call_id": "toolu_a",
        "status": "partial",
        "artifact_id": None,
        "title": "Sun notes",
        "kind": "notes",
    }
    rewrite = {**head, "offset": code_points(SUN[: cut - 5]), "content": SUN[cut - 5 : cut + 5]}
    first = [
        ("stage", {"stage": "generating", "pending_video_ids": []}),
        ("token", {"text": "Writing it down."}),
        ("artifact", {**head, "title": "Sun", "offset": 0, "content": SUN[: cut - 3]}),
        # The end rewritten from an earlier offset (past the emoji: code points, not UTF-16 units).
        ("artifact", rewrite),
        ("artifact", rewrite),  # told again (as after a reconnection): nothing changes
        (
            "artifact",
            {
                "call_id": "toolu_b",
                "status": "partial",
                "artifact_id": None,
                "title": "Doomed",
                "kind": "table",
                "offset": 0,
                "content": "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
            },
        ),
    ]
    saved = artifact_service.create_artifact(
        container.store, container.settings, user, session_id, title="Sun notes", kind="notes", content=SUN
    )
    final = {
        "call_id": "toolu_a",
        "status": "final",
        "artifact_id": str(saved.id),
        "version": 1,
        "title": "Sun notes",
        "kind": "notes",
        "offset": 0,
        "content": SUN,
    }
    then = [
        ("artifact", {**head, "offset": code_points(SUN[: cut + 5]), "content": SUN[cut + 5 :]}),
        (
            "artifact",
            {
                "call_id": "toolu_b",
                "status": "failed",
                "artifact_id": None,
                "message": "too many <b>artifacts</b>",
            },
        ),
        (
            "tool_call",
            {
                "call_id": "toolu_a",
                "name": "create_artifact",
                "input": {"title": "Sun notes", "kind": "notes", "content": SUN},
            },
        ),
        ("artifact", final),
        (
            "tool_result",
            {
                "call_id": "toolu_a",
                "name": "create_artifact",
                "ok": True,
                "summary": 'saved "Sun notes" (version 1)',
                "data": {},
            },
        ),
        ("token", {"text": " Done."}),
        ("complete", {"text": "Writing it down. Done.", "stop_reason": "end_turn"}),
    ]

    def write(events: list[tuple[str, dict[str, Any]]], start: int) -> None:
        with container.store.transaction() as repo:
            repo.add_chat_events(
                [(request_id, start + i, kind, data) for i, (kind, data) in enumerate(events)]
            )

    write(first, 1)
    pending = json.dumps({"sessionId": str(session_id), "requestId": str(request_id)})
    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(
                devtools_url,
                lambda page: scripted_flow(
                    page,
                    base_url,
                    key,
                    str(session_id),
                    pending,
                    str(saved.id),
                    lambda: write(then, len(first) + 1),
                ),
            )
        )


async def scripted_flow(
    page: Page, base_url: str, key: str, session_id: str, pending: str, artifact_id: str, write_the_rest: Any
) -> None:
    await open_session(page, base_url, key, session_id, pending)
    drafts = f"{LAST_ASSISTANT}?.querySelectorAll('.artifact-live')"
    await page.wait_for(f"{drafts}?.length === 2", "two drafts")
    sun = f"{LAST_ASSISTANT}.querySelector('.artifact-live[data-call-id=\"toolu_a\"]')"
    await page.wait_for(f"{sun}.querySelectorAll('li').length === 2", "the draft rendered")
    draft = await rendered(page, sun)
    assert draft["title"] == "Sun notes" and draft["kind"] == "notes" and draft["version"] == "Writing…"
    assert draft["headings"] == [["H1", "Sun 🌞 power"]]
    assert draft["items"] == ["one 🌞", "two"]  # "- two" whole: the rewrite landed at the right place
    assert draft["head"] == [] and await page.js(f"{sun}.dataset.status") == "streaming"
    doomed = f"{LAST_ASSISTANT}.querySelector('.artifact-live[data-call-id=\"toolu_b\"]')"
    await page.wait_for(f"{doomed}.querySelectorAll('td').length === 1", "the second draft")
    assert "<img src=x onerror=alert(1)>" in await page.text(
        "#messages .artifact-live[data-call-id='toolu_b'] td"
    )
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0, "undefined"]
    await page.screenshot("24-artifact-drafts")

    await asyncio.to_thread(write_the_rest)
    await wait_reply(page, "complete")
    assert await page.js(f"Boolean({doomed})") is False  # the failed draft is gone
    assert await page.text(f"{'#messages > li.message.assistant:last-child'} .artifact-failed") == (
        "The artifact was not saved: too many <b>artifacts</b>"
    )
    done = await rendered(page, sun)
    assert done["version"] == "v1 saved" and await page.js(f"{sun}.dataset.artifactId") == artifact_id
    assert done["head"] == ["Video", "Point"] and done["rows"] == [["Solar", "light"]]
    order = await page.js(
        f"[...{LAST_ASSISTANT}.querySelector('.message-body').children]"
        ".filter(n => !n.matches('.message-text:empty')).map(n => n.className)"
    )
    assert order == [
        "message-text",
        "artifact-card artifact-live",
        "artifact-failed",
        "tool-card",
        "message-text",
    ], order
    await page.wait_for(f"Boolean({card_of(artifact_id)})", "the saved artifact in the panel")
    assert (await rendered(page, card_of(artifact_id)))["text"] == done["text"]
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0, "undefined"]
    await page.screenshot("25-artifact-saved")
