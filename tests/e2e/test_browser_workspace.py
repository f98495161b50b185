"""The research workspace page (issue 20), in headless Chromium against the local stack: the
first-run sign-in panel (an API key, and Cognito's hosted UI with authorization code + PKCE), the
layout (the composer visible without scrolling with five videos at 1280x800 and 390x844, the
side panel behind a toggle on a phone, keyboard use, the polite live region), every action the
API has through the page (sessions created, renamed, deleted; videos added with live progress,
removed, retried, dismissed, picked for a question; replies stopped and picked up again), links
to the moment, and what a user sees of the network (reconnecting, a 429's wait, a draining
server followed silently). The helpers come from test_browser_page.py; screenshots go to
test-artifacts/screenshots/ (tests/e2e/conftest.py prints where).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from local_run.app import build_local_app
from tests.e2e.test_browser_page import (
    LAST_ASSISTANT,
    MESSAGES,
    SOLAR_QUESTION,
    XSS_TITLE,
    CuttableProxy,
    Page,
    add_ready_video,
    ask,
    launch_chromium,
    open_session,
    wait_reply,
)
from tests.fakes.cognito import CLIENT_ID, FakeCognito
from tests.support.clients import client_for
from tests.support.server import LoopbackServer, serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import load_settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.errors import ConfigurationError
from ytresearch.llm import OfflineChatModel

pytestmark = pytest.mark.slow

FIVE_VIDEOS = ("SoLarP4nels", "s0urd0ughBr", "PrintPr3ss1", "vacc1neImmu", "xssT3stVid0")
MOMENT_LINK = re.compile(r"^https://www\.youtube\.com/watch\?v=([A-Za-z0-9_-]{11})&t=(\d+)$")
# The RFC 7636 (appendix B) example: this verifier's S256 challenge.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
TIDAL_ID = "TidalP0wer1"
TIDAL_SAMPLE = {
    "video_id": TIDAL_ID,
    "title": "Tidal power in ten minutes",
    "channel": "My lectures",
    "duration_seconds": 21,
    "language": "en",
    "segments": [
        {"text": "Tides rise and fall twice a day because of the moon.", "start": 0.0, "duration": 6.5},
        {"text": "A barrage holds the high water back.", "start": 6.5, "duration": 7.0},
        {"text": "Unlike wind, the tides can be predicted years ahead.", "start": 13.5, "duration": 7.5},
    ],
}
NOTHING_RAN = """[document.scripts.length,
    document.querySelectorAll('img, b, iframe, object, embed, script:not([src])').length,
    document.querySelectorAll('[onerror], [onclick], a[href^="javascript:"]').length,
    typeof window.__pwned]"""
VIDEO_IDS = "[...document.querySelectorAll('#video-list .video-card')].map(c => c.dataset.videoId)"
CARD = '#video-list .video-card[data-video-id="{}"]'


# ------------------------------------------------------------------ the local stack


@dataclass
class System:
    base_url: str
    container: Container
    app: FastAPI
    server: LoopbackServer


@contextlib.contextmanager
def local_system(database_url: str, **overrides: Any) -> Iterator[System]:
    """`make run` in miniature (build_local_app, the embedded queue, the offline model slowed to one
    word per 50 ms), on loopback, with settings overrides."""
    settings = test_settings(database_url, **overrides)
    upgrade_to_head(settings)
    container = Container(settings, chat_model=OfflineChatModel(token_delay=0.05))
    app, queue = build_local_app(container)
    queue.start()
    try:
        with serve(app) as server:
            yield System(server.base_url, container, app, server)
    finally:
        queue.stop()
        container.engine.dispose()


def run_in_browser(flow: Callable[[Page], Awaitable[None]]) -> Page:
    """Drive a fresh Chromium with `flow`; no dialogs, no uncaught exceptions, no CSP violations."""
    holder: dict[str, Page] = {}

    async def drive(devtools_url: str) -> None:
        async with connect(devtools_url, max_size=64 * 1024 * 1024, open_timeout=15) as ws:
            page = await Page(ws).start()
            holder["page"] = page
            try:
                await flow(page)
            finally:
                await page.close()

    with launch_chromium() as devtools_url:
        asyncio.run(drive(devtools_url))
    page = holder["page"]
    assert page.dialogs == [], page.dialogs
    assert page.exceptions == [], page.exceptions
    assert page.console_errors == [], page.console_errors
    return page


async def sign_in_with_key(page: Page, base_url: str, key: str) -> None:
    await page.goto(base_url + "/")
    await page.wait_for("!document.getElementById('sign-in').hidden", "the sign-in panel")
    await page.type("#api-key", key)
    await page.click("#key-save")
    await page.wait_for("!document.getElementById('app').hidden", "the workspace")


async def create_session(page: Page, title: str) -> str:
    await page.type("#session-title", title)
    await page.click("#session-create")
    await page.wait_for(
        f"document.getElementById('session-heading').textContent === {json.dumps(title)}", "the new session"
    )
    return str(await page.js("location.hash.slice('#session='.length)"))


async def add_video_through_page(page: Page, video_id: str) -> None:
    await page.type("#video-url", f"https://youtu.be/{video_id}")
    await page.click("#video-add")
    await page.wait_for(
        f"Boolean(document.querySelector('{CARD.format(video_id)}'))", f"the card of {video_id}"
    )


async def in_view(page: Page, selector: str) -> dict[str, Any]:
    """Where an element is, against the window: fully inside it, and the page not scrolled."""
    return dict(
        await page.js(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            const r = e.getBoundingClientRect();
            return {{top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                     width: innerWidth, height: innerHeight, scrollY: scrollY,
                     pageHeight: document.documentElement.scrollHeight,
                     pageWidth: document.documentElement.scrollWidth,
                     inside: r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth
                             && r.height > 0 && r.width > 0,
                     hit: document.elementFromPoint(r.left + r.width / 2,
                                                    r.top + r.height / 2) === e}}; }})()"""
        )
    )


async def set_window(page: Page, width: int, height: int, mobile: bool = False) -> None:
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
    )
    await page.wait_for(f"innerWidth === {width} && innerHeight === {height}", f"a {width}x{height} window")
    await asyncio.sleep(0.2)  # a layout pass


async def shot(page: Page, name: str) -> None:
    """A screenshot of the window as it is now (the size set by set_window, if any)."""
    data = await page.send("Page.captureScreenshot", format="png")
    from tests.e2e.test_browser_page import save_png, screenshot_dir

    await asyncio.to_thread(save_png, screenshot_dir() / f"{name}.png", data["data"])


# ------------------------------------------------------------------ first run


def test_first_run_says_where_the_key_is_and_pkce_matches_rfc_7636(tmp_path: Path) -> None:
    """Before any key: a sign-in panel that names the local key file (no Cognito on this server,
    so no account sign-in); the page's PKCE challenge of RFC 7636's example verifier is the RFC's."""
    with local_system(f"sqlite:///{tmp_path}/ytr.db") as system:
        config = httpx.get(system.base_url + "/page-config.json").json()
        assert config == {"local": True, "key_file": ".ytr/dev_api_key", "cognito": None}
        csp = httpx.get(system.base_url + "/").headers["content-security-policy"]
        assert "connect-src 'self' ws: wss:;" in csp
        for name in ("app.js", "auth.js", "chat.js", "core.js", "markdown.js"):
            asset = httpx.get(f"{system.base_url}/static/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
            assert not re.search(
                r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", asset.text
            )
        assert httpx.get(system.base_url + "/static/../page.py").status_code == 404

        async def flow(page: Page) -> None:
            await page.goto(system.base_url + "/")
            await page.wait_for("!document.getElementById('sign-in').hidden", "the sign-in panel")
            assert await page.js("document.getElementById('app').hidden") is True
            assert await page.js("document.getElementById('cognito-sign-in').hidden") is True
            text = await page.text("#sign-in")
            assert ".ytr/dev_api_key" in text and "make run" in text, text
            assert await page.js("document.activeElement.id") == "api-key"
            await shot(page, "30-first-run")
            await set_window(page, 390, 844, mobile=True)
            view = await in_view(page, "#key-save")
            assert view["inside"] and view["pageWidth"] <= 390, view
            await shot(page, "31-first-run-phone")
            # PKCE (S256) computed by the page's own module with WebCrypto.
            challenge = await page.js(
                f"import('/static/auth.js').then(m => m.pkceChallenge({json.dumps(RFC_VERIFIER)}))"
            )
            assert challenge == RFC_CHALLENGE
            verifiers = await page.js(
                "import('/static/auth.js').then(m => [m.randomVerifier(), m.randomVerifier()])"
            )
            assert verifiers[0] != verifiers[1]
            assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", v) for v in verifiers), verifiers
            # A wrong key: told so, still on the panel, nothing kept.
            await page.type("#api-key", "ytr_not_a_real_key")
            await page.click("#key-save")
            await page.wait_for("!document.getElementById('notice').hidden", "the refusal")
            assert "not accepted" in await page.text("#notice-text")
            assert await page.js("document.getElementById('app').hidden") is True
            assert await page.js("sessionStorage.getItem('ytr.apiKey')") is None

        run_in_browser(flow)


# ------------------------------------------------------------------ layout


def test_the_composer_stays_in_view_with_five_videos(tmp_path: Path) -> None:
    """Five videos and a long conversation: at 1280x800 and on a 390x844 phone the page itself
    never scrolls and the question box and Send are in view; the side panel scrolls on its own,
    and on the phone it hides behind a toggle. Keyboard: the tabs move with the arrow keys,
    Escape closes the panel, Enter sends; the reply is told to screen readers politely."""
    with local_system(f"sqlite:///{tmp_path}/ytr.db") as system:
        user, key = make_user(system.container)
        api = client_for(system.base_url, key)
        session_id = str(api.post("/v1/sessions", json={"title": "Five videos"}).json()["id"])
        for video_id in FIVE_VIDEOS:
            add_ready_video(api, session_id, video_id)
        seed_history(system.container, user.id, uuid.UUID(session_id), 12)

        async def flow(page: Page) -> None:
            await open_session(page, system.base_url, key, session_id)
            await page.wait_for(
                "document.querySelectorAll('.video-card .summary-text').length === 5", "summaries"
            )
            await page.wait_for("!document.getElementById('chat-send').disabled", "the history")
            # Summaries are collapsed: a card is a few lines, its summary one click away.
            assert (
                await page.js("[...document.querySelectorAll('.video-summary')].every(d => !d.open)") is True
            )
            for selector in ("#chat-input", "#chat-send", "#chat-stop", "#scope-label"):
                view = await in_view(page, selector)
                assert view["inside"] and view["hit"], (selector, view)
                assert view["scrollY"] == 0 and view["pageHeight"] <= view["height"], view
            side = await page.js(
                "(s => [s.scrollHeight > s.clientHeight, getComputedStyle(s).overflowY])"
                "(document.getElementById('side-panel'))"
            )
            assert side == [True, "auto"], side  # five cards scroll inside the panel
            # The markup sample's title, channel and summary are text (one of the five cards).
            await page.js(
                f"document.querySelector('{CARD.format('xssT3stVid0')} .video-summary').open = true"
            )
            xss = await page.js(
                f"[...document.querySelectorAll('{CARD.format('xssT3stVid0')} .video-title,"
                f" {CARD.format('xssT3stVid0')} .video-channel, {CARD.format('xssT3stVid0')} .summary-text')]"
                ".map(e => [...e.childNodes].every(n => n.nodeType === Node.TEXT_NODE))"
            )
            assert xss == [True, True, True]
            assert await page.js(NOTHING_RAN) == [1, 0, 0, "undefined"]
            await page.js("document.querySelector('.video-summary').open = true")
            await shot(page, "32-workspace-five-videos")

            # ---- keyboard: the tabs, then Enter in the question box sends
            await page.js("document.getElementById('tab-chat').focus()")
            await page.send("Input.dispatchKeyEvent", type="keyDown", key="ArrowRight", code="ArrowRight")
            await page.send("Input.dispatchKeyEvent", type="keyUp", key="ArrowRight", code="ArrowRight")
            assert await page.js("document.activeElement.id") == "tab-artifacts"
            assert await page.js("document.getElementById('artifacts-panel').hidden") is False
            assert await page.js("document.getElementById('chat-panel').hidden") is True
            view = await in_view(page, "#chat-input")
            assert view["inside"], view  # the composer stays, whatever the tab
            await page.click("#tab-chat")
            await page.type("#chat-input", SOLAR_QUESTION)
            await page.send("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter", text="\r")
            await page.send("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter")
            answer = await wait_reply(page, "complete")
            # Screen readers: the reply a sentence at a time in a polite live region.
            live = await page.js(
                "(r => [r.getAttribute('aria-live'), [...r.children].map(p => p.textContent)])"
                "(document.getElementById('reply-live'))"
            )
            assert live[0] == "polite" and live[1], live
            spoken = " ".join(live[1])
            assert spoken.split()[-3:] == answer["text"].split()[-3:], (spoken, answer["text"])

            # ---- a phone: the conversation fills the screen, the panel is behind the toggle
            await set_window(page, 390, 844, mobile=True)
            for selector in ("#chat-input", "#chat-send", "#panel-toggle"):
                view = await in_view(page, selector)
                assert view["inside"] and view["hit"], (selector, view)
                assert view["scrollY"] == 0 and view["pageHeight"] <= 844 and view["pageWidth"] <= 390, view
            assert await page.js("document.getElementById('side-panel').getClientRects().length") == 0
            await shot(page, "33-phone-conversation")
            await page.click("#panel-toggle")
            await page.wait_for(
                "document.getElementById('side-panel').getClientRects().length > 0", "the panel"
            )
            assert (
                await page.js("document.getElementById('panel-toggle').getAttribute('aria-expanded')")
                == "true"
            )
            view = await in_view(page, f"{CARD.format('vacc1neImmu')} .video-pick")
            assert view["width"] == 390, view
            await page.click(f"{CARD.format('vacc1neImmu')} .video-pick")  # usable on the phone
            await shot(page, "34-phone-side-panel")
            await page.send("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape")
            await page.send("Input.dispatchKeyEvent", type="keyUp", key="Escape", code="Escape")
            await page.wait_for(
                "document.getElementById('side-panel').getClientRects().length === 0", "closed"
            )
            assert await page.js("document.activeElement.id") == "panel-toggle"
            assert "1 of 5 videos" in await page.text("#scope-label")
            await page.send("Emulation.clearDeviceMetricsOverride")

        run_in_browser(flow)


def seed_history(container: Container, user_id: uuid.UUID, session_id: uuid.UUID, count: int) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    with container.store.transaction() as repo:
        for i in range(1, count + 1):
            repo.add_message(
                session_id=session_id,
                role="user" if i % 2 else "assistant",
                content=f"An earlier message, number {i}. " * (1 if i % 2 else 12),
                status="complete",
                created_at=start + timedelta(seconds=i),
            )


# ------------------------------------------------------------------ every action


RECORD_PROGRESS = """(id => {
    window.__progress = [];
    new MutationObserver(() => {
        const card = document.querySelector(`.video-card[data-video-id="${id}"]`);
        const bar = card && card.querySelector('progress');
        if (!bar) return;
        const now = [bar.value, bar.max, card.querySelector('.video-status').textContent];
        const last = window.__progress[window.__progress.length - 1];
        if (!last || last.join('|') !== now.join('|')) window.__progress.push(now);
    }).observe(document.getElementById('video-list'),
               {subtree: true, childList: true, attributes: true, characterData: true});
})"""
STAMPS = (
    f"[...{LAST_ASSISTANT}.querySelectorAll('a.timestamp-link')]"
    ".map(a => [a.textContent, a.getAttribute('href'), a.title])"
)
LAST_QUESTION = "[...document.querySelectorAll('#messages li.message.user')].pop()"


def test_every_action_through_the_page(tmp_path: Path) -> None:
    """Through the page only: create a session, add two videos (live progress), ask about one of
    them (video_ids; its timestamps link to that video at that second), stop a reply, pick one up
    after a reload, remove a video, rename the session (markup in the title stays text), and
    delete it; the server agrees at every step."""
    with local_system(f"sqlite:///{tmp_path}/ytr.db") as system:
        _, key = make_user(system.container)
        api = client_for(system.base_url, key)
        found: dict[str, str] = {}

        async def flow(page: Page) -> None:
            await sign_in_with_key(page, system.base_url, key)
            assert (await page.text("#key-label")).startswith("Signed in")
            session_id = found["session"] = await create_session(page, "Energy and bread")
            await page.wait_for("document.activeElement.id === 'video-url'", "the focus in the video box")

            # ---- add: live progress through the stages to ready, then the collapsed summary
            await page.js(f"({RECORD_PROGRESS})('SoLarP4nels')")
            await add_video_through_page(page, "SoLarP4nels")
            solar = CARD.format("SoLarP4nels")
            await page.wait_for(f"document.querySelector('{solar}').dataset.status === 'ready'", "ready")
            await page.wait_for(
                f"document.querySelector('{solar} .summary-text').textContent.length > 40", "summary"
            )
            progress = await page.js("window.__progress")
            values = [p[0] for p in progress]
            assert values == sorted(values) and values[-1] == 5 and len(set(values)) >= 3, progress
            assert any(" of 5)" in p[2] for p in progress) and progress[-1][2] == "Ready", progress
            await add_video_through_page(page, "s0urd0ughBr")
            await page.wait_for(
                f"document.querySelector('{CARD.format('s0urd0ughBr')}').dataset.status === 'ready'", "2"
            )
            assert await page.text("#videos-count") == "2"
            assert "every video" in await page.text("#scope-label")

            # ---- pick one video: the question is about it alone (video_ids), and says so
            await page.click(f"{solar} .video-pick")
            solar_title = await page.text(f"{solar} .video-title")
            assert await page.text("#scope-label") == f"Asking about 1 of 2 videos: {solar_title}"
            await ask(page, SOLAR_QUESTION)
            await wait_reply(page, "complete")
            scope = await page.js(f"{LAST_QUESTION}.querySelector('.message-scope').textContent")
            assert scope == f"About: {solar_title}"
            saved = (await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}/messages?limit=2")).json()[
                "items"
            ]
            question = next(m for m in saved if m["role"] == "user")
            assert question["video_ids"] == ["SoLarP4nels"], question

            # ---- links to the moment: every [mm:ss] opens that video at that second
            stamps = await page.js(STAMPS)
            assert stamps, await page.js(f"({MESSAGES}).pop()")
            for text, href, title in stamps:
                match = MOMENT_LINK.match(href)
                assert match and match[1] == "SoLarP4nels", href
                minutes, seconds = (int(part) for part in text.strip("[]").split(":")[-2:])
                assert int(match[2]) == minutes * 60 + seconds, (text, href)
                assert title.startswith(solar_title + " — "), title  # says which video
            await page.screenshot("35-picked-question")

            # ---- the transcript's moments are links too
            await page.click(f"{solar} .transcript summary")
            await page.wait_for(
                f"document.querySelectorAll('{solar} .segment a.timestamp').length > 10", "lines"
            )
            first = await page.js(
                f"document.querySelector('{solar} .segment a.timestamp').getAttribute('href')"
            )
            assert MOMENT_LINK.match(first) and first.startswith(
                "https://www.youtube.com/watch?v=SoLarP4nels&t="
            )

            # ---- stop a reply (Stop), then pick one up again after a reload
            await page.click("#scope-clear")
            assert "every video" in await page.text("#scope-label")
            await ask(page, SOLAR_QUESTION)
            await page.wait_for(f"{LAST_ASSISTANT}.dataset.tokens === 'yes'", "the reply streaming")
            await page.click("#chat-stop")
            stopped = await wait_reply(page, "cancelled")
            assert stopped["badge"] == "cancelled"
            await ask(page, SOLAR_QUESTION)
            await page.wait_for(f"{LAST_ASSISTANT}.dataset.tokens === 'yes'", "the reply streaming")
            await page.reload()
            await page.wait_for(f"{LAST_ASSISTANT}?.dataset.status === 'complete'", "the reply picked up")
            history = await page.js(MESSAGES)
            statuses = ["complete", "complete", "complete", "cancelled", "complete", "complete"]
            assert [m["status"] for m in history] == statuses, history

            # ---- remove a video: gone from the page and from the session
            await page.click(f"{CARD.format('s0urd0ughBr')} .video-remove")
            await page.wait_for(f"!({VIDEO_IDS}).includes('s0urd0ughBr')", "the removed video to go")
            listed = (await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}/videos")).json()
            assert [v["id"] for v in listed] == ["SoLarP4nels"]
            assert await page.text("#videos-count") == "1"
            assert "Removed" in await page.text("#notice-text")

            # ---- rename: the heading, the list and the server; markup in a title is text
            await page.click("#session-rename")
            await page.wait_for("document.activeElement.id === 'rename-input'", "the title box")
            await page.js("document.getElementById('rename-input').value = ''")
            await page.type("#rename-input", XSS_TITLE)
            await page.click("#rename-save")
            await page.wait_for(
                f"document.getElementById('session-heading').textContent === {json.dumps(XSS_TITLE)}",
                "renamed",
            )
            item = f'#session-list li[data-session-id="{session_id}"] .session-title'
            assert await page.text(item) == XSS_TITLE
            assert (await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}")).json()[
                "title"
            ] == XSS_TITLE
            assert await page.js(NOTHING_RAN) == [1, 0, 0, "undefined"]
            await page.reload()
            await page.wait_for(
                f"document.querySelector({json.dumps(item)})?.textContent === {json.dumps(XSS_TITLE)}", "x"
            )
            await page.screenshot("36-renamed")

            # ---- delete: asked first in the page (Keep keeps it), then gone everywhere
            await page.click("#session-delete")
            await page.wait_for("!document.getElementById('delete-confirm').hidden", "the confirmation")
            await page.click("#session-delete-cancel")
            await page.wait_for("document.getElementById('delete-confirm').hidden", "kept")
            await page.click("#session-delete")
            await page.click("#session-delete-confirm")
            await page.wait_for("!document.getElementById('empty-state').hidden", "the empty state")
            assert await page.js(f"Boolean(document.querySelector('{item}'))") is False
            assert location_hash_empty(await page.js("location.hash"))
            gone = await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}")
            assert gone.status_code == 404

        run_in_browser(flow)


def location_hash_empty(value: Any) -> bool:
    return value in ("", None)


@pytest.mark.parametrize(
    ("environment", "value", "ok"),
    [
        ("prod", "https://ytresearch-prod.auth.eu-west-1.amazoncognito.com/", True),
        ("prod", "http://ytresearch-prod.auth.eu-west-1.amazoncognito.com", False),
        ("prod", "https://ytresearch.auth.eu-west-1.amazoncognito.com/oauth2/authorize", False),
        ("prod", "ytresearch.auth.eu-west-1.amazoncognito.com", False),
        ("test", "http://127.0.0.1:8123", True),
    ],
)
def test_the_hosted_ui_setting_is_an_origin(environment: str, value: str, ok: bool) -> None:
    """YTR_COGNITO_HOSTED_UI_URL: the origin the page sends browsers to and may fetch tokens from
    (its CSP's connect-src): HTTPS, no path; plain http only for local runs and tests."""
    values = {
        "environment": environment,
        "database_url": "sqlite:///:memory:",
        "cognito_issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
        "cognito_client_id": CLIENT_ID,
        "cognito_hosted_ui_url": value,
    }
    if ok:
        assert load_settings(**values).cognito_hosted_ui_url == value.rstrip("/")
    else:
        with pytest.raises(ConfigurationError, match="YTR_COGNITO_HOSTED_UI_URL"):
            load_settings(**values)


# ------------------------------------------------------------------ failed videos, 429


def test_a_failed_video_says_why_and_can_be_retried_or_dismissed(tmp_path: Path) -> None:
    """A video whose ingest fails shows the error's message (after a reload too: the list carries
    it); Retry ingests it again (here once its transcript exists) and Dismiss takes a failed one
    away. A question over the per-minute limit (429) says when to try again."""
    samples = tmp_path / "samples"
    samples.mkdir()
    with local_system(f"sqlite:///{tmp_path}/ytr.db", samples_dir=samples, chat_posts_per_minute=1) as system:
        _, key = make_user(system.container)
        api = client_for(system.base_url, key)

        async def flow(page: Page) -> None:
            await sign_in_with_key(page, system.base_url, key)
            session_id = await create_session(page, "Failures")
            tidal = CARD.format(TIDAL_ID)
            await add_video_through_page(page, TIDAL_ID)
            await page.wait_for(
                f"document.querySelector('{tidal}').dataset.status === 'failed'", "the failure"
            )
            status = await page.text(f"{tidal} .video-status")
            assert (
                status.startswith("Failed: No sample transcript for video")
                and "(VIDEO_UNAVAILABLE)" in status
            )
            assert await page.js(f"document.querySelector('{tidal} .video-pick').disabled") is True
            assert await page.text(f"{tidal} .video-remove") == "Dismiss"
            listed = (await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}/videos")).json()
            assert listed[0]["error_message"].startswith("No sample transcript"), listed
            await page.reload()
            await page.wait_for(
                f"document.querySelector('{tidal}')?.dataset.status === 'failed'", "after reload"
            )
            assert await page.text(f"{tidal} .video-status") == status  # the message, not just a code
            await page.screenshot("37-failed-video")

            # ---- Retry, once the transcript is there: a new ingest, followed live, ready
            (samples / f"{TIDAL_ID}.json").write_text(json.dumps(TIDAL_SAMPLE), encoding="utf-8")
            await page.click(f"{tidal} .video-retry")
            await page.wait_for(f"document.querySelector('{tidal}').dataset.status === 'ready'", "the retry")
            assert await page.text(f"{tidal} .video-title") == TIDAL_SAMPLE["title"]
            assert await page.js(f"document.querySelector('{tidal} .video-retry').hidden") is True

            # ---- Dismiss a failed one
            await add_video_through_page(page, "n0SuchVid01")
            missing = CARD.format("n0SuchVid01")
            await page.wait_for(f"document.querySelector('{missing}').dataset.status === 'failed'", "failed")
            await page.click(f"{missing} .video-remove")
            await page.wait_for(f"!({VIDEO_IDS}).includes('n0SuchVid01')", "dismissed")
            listed = (await asyncio.to_thread(api.get, f"/v1/sessions/{session_id}/videos")).json()
            assert [v["id"] for v in listed] == [TIDAL_ID]

            # ---- a 429: when to try again, and the question back in the box
            await ask(page, "What do tides depend on?")
            await wait_reply(page, "complete")
            await page.type("#chat-input", "And the barrage?")
            await page.click("#chat-send")
            await page.wait_for(
                "document.getElementById('notice').dataset.kind === 'rate-limited'", "the 429"
            )
            notice = await page.text("#notice-text")
            assert re.search(r"You can try again in (\d+ s|1 min)\.$", notice), notice
            assert await page.js("document.getElementById('chat-input').value") == "And the barrage?"
            user = await page.js(f"{LAST_QUESTION}.dataset.status")
            assert user == "failed"
            await page.screenshot("38-rate-limited")

        run_in_browser(flow)


# ------------------------------------------------------------------ resilience


RECORD_CONNECTION = """(() => {
    window.__connection = [];
    window.__notes = [];
    const line = document.getElementById('connection');
    const record = () => {
        const now = line.hidden ? '' : document.getElementById('connection-text').textContent;
        if (window.__connection[window.__connection.length - 1] !== now) window.__connection.push(now);
        const note = [...document.querySelectorAll('#messages .message-note')].pop();
        if (note && window.__notes[window.__notes.length - 1] !== note.textContent)
            window.__notes.push(note.textContent);
    };
    new MutationObserver(record).observe(document.body,
        {subtree: true, childList: true, attributes: true, characterData: true});
})()"""


def test_dropped_connections_and_a_draining_server(tmp_path: Path) -> None:
    """A reply running on another task, followed over SSE through a relay: a cut connection
    shows "reconnecting" and resumes with Last-Event-ID; then the server the page reads from
    drains (retry + `reconnect`): the page follows it to another server silently, with
    Last-Event-ID, and the reply ends complete with every word once."""
    database = f"sqlite:///{tmp_path}/ytr.db"
    with local_system(database) as first, local_system(database) as second:
        drained = threading.Event()

        async def drain() -> dict[str, bool]:
            # What SIGTERM does (streaming_service/serve.py): the manager's drain (readers are
            # told to reconnect), then uvicorn's graceful exit, which closes idle connections.
            await first.app.state.manager.drain(0.1)
            first.server.server.should_exit = True
            drained.set()
            return {"draining": True}

        first.app.add_api_route("/test-only/drain", drain, methods=["POST"])
        user, key = make_user(first.container)
        session_id = uuid.UUID(
            client_for(first.base_url, key).post("/v1/sessions", json={"title": "Drain"}).json()["id"]
        )
        later = datetime.now(UTC) + timedelta(hours=1)
        with first.container.store.transaction() as repo:
            request_id = repo.add_chat_request(
                user_id=user.id,
                session_id=session_id,
                expires_at=later,
                status="streaming",
                owner="another-task",
                heartbeat_at=later,
            ).id
        words = [f"word{n} " for n in range(1, 31)]
        seq = iter(range(1, 1000))

        def write(events: list[tuple[str, dict[str, Any]]]) -> None:
            with second.container.store.transaction() as repo:
                repo.add_chat_events([(request_id, next(seq), kind, data) for kind, data in events])

        write([("stage", {"stage": "generating", "pending_video_ids": []})])
        write([("token", {"text": w}) for w in words[:10]])
        pending = json.dumps({"sessionId": str(session_id), "requestId": str(request_id)})

        async def flow(page: Page) -> None:
            proxy = await CuttableProxy(int(first.base_url.rsplit(":", 1)[1])).start()
            try:
                await open_session(page, proxy.base_url, key, str(session_id), pending)
                await page.js(RECORD_CONNECTION)
                shown = f"{LAST_ASSISTANT}?.querySelector('.message-text')?.textContent ?? ''"
                await page.wait_for(f"{shown} === {json.dumps(''.join(words[:10]))}", "the first words")

                # ---- a cut: "reconnecting", then back, nothing lost or repeated
                assert proxy.cut() >= 1
                await page.wait_for(
                    "window.__connection.includes('Connection lost: reconnecting…')", "the line"
                )
                await page.screenshot("39-reconnecting")
                await asyncio.to_thread(write, [("token", {"text": w}) for w in words[10:20]])
                await page.wait_for(
                    f"{shown} === {json.dumps(''.join(words[:20]))}", "the words after the cut"
                )
                await page.wait_for("document.getElementById('connection').hidden", "the line gone")
                assert "Connection lost; reconnecting…" in await page.js("window.__notes")

                # ---- a draining server: followed to the other one without a word to the user
                await page.js("window.__connection = []; window.__notes = []")
                proxy.target_port = int(second.base_url.rsplit(":", 1)[1])  # new connections go there
                drain_answer = await asyncio.to_thread(httpx.post, first.base_url + "/test-only/drain")
                assert drain_answer.status_code == 200 and drained.is_set()
                await asyncio.to_thread(write, [("token", {"text": w}) for w in words[20:]])
                text = "".join(words)
                await asyncio.to_thread(write, [("complete", {"text": text, "stop_reason": "end_turn"})])
                await page.wait_for(
                    f"{LAST_ASSISTANT}.dataset.status === 'complete'", "the end, from the other server"
                )
                assert await page.js(shown) == text
                assert [c for c in await page.js("window.__connection") if c] == [], "a drain is silent"
                assert not any("lost" in n.lower() for n in await page.js("window.__notes"))
                gets = proxy.stream_requests(str(request_id))
                assert gets[0] == "" and all(g.isdigit() for g in gets[1:]) and len(gets) >= 3, gets
                assert int(gets[-1]) >= 21, gets  # the last reconnect resumed after the drained words
            finally:
                await proxy.close()

        run_in_browser(flow)


# ------------------------------------------------------------------ Cognito's hosted UI


class FakeHostedUI:
    """Cognito's hosted UI in miniature, on its own origin: /oauth2/authorize shows a sign-in form,
    whose POST sends the browser back to the redirect URI with a one-time code; /oauth2/token
    exchanges the code (checking the PKCE verifier against the S256 challenge, the client and the
    redirect URI) or a refresh token for tokens signed by `cognito`, with CORS like the real
    endpoint; /logout sends the browser back."""

    def __init__(self, cognito: FakeCognito) -> None:
        self.cognito = cognito
        self.redirect_uri = ""  # the page, set once its server is up
        self.codes: dict[str, dict[str, str]] = {}
        self.refresh: dict[str, str] = {}  # refresh token -> username
        self.authorizations: list[dict[str, str]] = []
        self.exchanges: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHostedUI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def tokens(self, username: str) -> dict[str, Any]:
        user = self.cognito.users[username]
        refresh = "refresh-" + uuid.uuid4().hex
        self.refresh[refresh] = username
        return {
            "access_token": self.cognito.token(sub=user.sub, username=user.sub),
            "id_token": self.cognito.token(
                sub=user.sub, token_use="id", aud=CLIENT_ID, email=username, client_id=None, scope=None
            ),
            "refresh_token": refresh,
            "expires_in": 3600,
            "token_type": "Bearer",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                origin = fake.redirect_uri.rstrip("/")
                self._send(
                    status,
                    json.dumps(body).encode(),
                    "application/json",
                    Access_Control_Allow_Origin=origin,
                )

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/oauth2/authorize":
                    fake.authorizations.append(query)
                    ok = (
                        query.get("response_type") == "code"
                        and query.get("client_id") == CLIENT_ID
                        and query.get("redirect_uri") == fake.redirect_uri
                        and query.get("code_challenge_method") == "S256"
                        and len(query.get("code_challenge", "")) == 43
                    )
                    if not ok:
                        self._send(400, b"bad authorize request", "text/plain")
                        return
                    hidden = "".join(
                        f'<input type="hidden" name="{k}" value="{v}">'
                        for k, v in query.items()
                        if re.fullmatch(r"[A-Za-z0-9_./:~ -]*", v)
                    )
                    page = (
                        "<!doctype html><title>Sign in</title><form method=post action=/login>"
                        f"{hidden}<input id=username name=username><input id=password name=password "
                        "type=password><button id=signin>Sign in</button></form>"
                    )
                    self._send(200, page.encode(), "text/html")
                elif url.path == "/logout":
                    fake.logouts.append(query)
                    self._send(302, b"", "text/plain", Location=query.get("logout_uri", "/"))
                else:
                    self._send(404, b"not found", "text/plain")

            def _form(self) -> dict[str, str]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                form = self._form()
                if url.path == "/login":
                    user = fake.cognito.users.get(form.get("username", ""))
                    if user is None or user.password != form.get("password"):
                        self._send(401, b"wrong password", "text/plain")
                        return
                    code = uuid.uuid4().hex
                    fake.codes[code] = {**form, "username": user.username}
                    target = (
                        form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
                    )
                    self._send(302, b"", "text/plain", Location=target)
                elif url.path == "/oauth2/token":
                    fake.exchanges.append(form)
                    if form.get("client_id") != CLIENT_ID:
                        self._json(400, {"error": "invalid_client"})
                    elif form.get("grant_type") == "authorization_code":
                        issued = fake.codes.pop(form.get("code", ""), None)
                        verifier = form.get("code_verifier", "")
                        digest = hashlib.sha256(verifier.encode()).digest()
                        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                        if issued is None or issued["redirect_uri"] != form.get("redirect_uri"):
                            self._json(400, {"error": "invalid_grant"})
                        elif challenge != issued["code_challenge"]:
                            self._json(400, {"error": "invalid_grant", "error_description": "PKCE failed"})
                        else:
                            self._json(200, fake.tokens(issued["username"]))
                    elif form.get("grant_type") == "refresh_token":
                        username = fake.refresh.get(form.get("refresh_token", ""))
                        if username is None:
                            self._json(400, {"error": "invalid_grant"})
                        else:
                            tokens = fake.tokens(username)
                            del tokens["refresh_token"]  # Cognito keeps the refresh token
                            self._json(200, tokens)
                    else:
                        self._json(400, {"error": "unsupported_grant_type"})
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler


async def navigated(page: Page, origin: str, what: str) -> None:
    """Wait for a navigation to `origin` (evaluations fail while a page is being replaced)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await page.js("document.readyState === 'complete' && location.origin") == origin:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_signing_in_through_the_hosted_ui_with_pkce(tmp_path: Path) -> None:
    """On a server with Cognito: the panel offers the account sign-in; the page sends the browser
    to the hosted UI with an S256 challenge and a state, takes the code back, exchanges it with the
    verifier (which the token endpoint checks), removes it from the address bar, and calls the API
    and the WebSocket with the access token; a refused token is refreshed once; Sign out goes
    through the hosted UI's logout and back to the panel."""
    with FakeCognito() as cognito, FakeHostedUI(cognito) as hosted:
        cognito.add_user("ada@example.com", "Correct-Horse-9")
        overrides = {
            "cognito_issuer": cognito.issuer,
            "cognito_client_id": CLIENT_ID,
            "cognito_hosted_ui_url": hosted.url,
        }
        with local_system(f"sqlite:///{tmp_path}/ytr.db", **overrides) as system:
            hosted.redirect_uri = system.base_url + "/"
            config = httpx.get(system.base_url + "/page-config.json").json()
            assert config["cognito"] == {
                "hosted_ui_url": hosted.url,
                "client_id": CLIENT_ID,
                "scope": "openid email ytresearch/api",
            }
            csp = httpx.get(system.base_url + "/").headers["content-security-policy"]
            assert f"connect-src 'self' ws: wss: {hosted.url};" in csp

            async def flow(page: Page) -> None:
                await page.goto(system.base_url + "/")
                await page.wait_for(
                    "!document.getElementById('cognito-sign-in').hidden", "the account sign-in"
                )
                await shot(page, "40-sign-in-with-cognito")
                await page.click("#cognito-login")
                await navigated(page, hosted.url, "the hosted UI")
                await page.type("#username", "ada@example.com")
                await page.type("#password", "Correct-Horse-9")
                await page.click("#signin")
                await navigated(page, system.base_url, "the page again")
                await page.wait_for("document.body.dataset.ready === 'yes'", "the page")
                await page.wait_for("!document.getElementById('app').hidden", "the workspace")
                assert await page.text("#key-label") == "Signed in as ada@example.com"
                assert await page.js("location.search") == ""  # the code left the address bar
                stored = await page.js("Object.keys(sessionStorage).sort()")
                assert stored == ["ytr.tokens"], stored  # no key, no verifier left behind
                assert await page.js("JSON.stringify(localStorage)") == "{}"

                (authorize,) = hosted.authorizations
                exchange = next(e for e in hosted.exchanges if e["grant_type"] == "authorization_code")
                assert authorize["scope"] == "openid email ytresearch/api" and len(authorize["state"]) == 43
                assert exchange["redirect_uri"] == system.base_url + "/"
                assert re.fullmatch(r"[A-Za-z0-9_-]{43}", exchange["code_verifier"])

                # ---- the API with the token: a session, a question over the WebSocket
                session_id = await create_session(page, "Signed in")
                await page.click("#transport-ws")
                await ask(page, "What is in this session?")
                await wait_reply(page, "complete")
                tokens = json.loads(await page.js("sessionStorage.getItem('ytr.tokens')"))
                bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
                url = f"{system.base_url}/v1/sessions/{session_id}"
                mine = await asyncio.to_thread(httpx.get, url, headers=bearer)
                assert mine.status_code == 200 and mine.json()["title"] == "Signed in"

                # ---- a refused access token: refreshed once with the refresh token, then used
                await page.js(
                    "(() => { const t = JSON.parse(sessionStorage.getItem('ytr.tokens'));"
                    " t.access_token = 'not.a.token';"
                    " sessionStorage.setItem('ytr.tokens', JSON.stringify(t)); })()"
                )
                await page.reload()
                await page.wait_for("!document.getElementById('session-view').hidden", "the session again")
                assert any(e["grant_type"] == "refresh_token" for e in hosted.exchanges)
                refreshed = json.loads(await page.js("sessionStorage.getItem('ytr.tokens')"))
                assert refreshed["access_token"] != "not.a.token"
                assert refreshed["refresh_token"] == tokens["refresh_token"]

                # ---- sign out: through the hosted UI's logout, back to the panel
                await page.click("#key-forget")
                deadline = time.monotonic() + 20
                while not hosted.logouts:
                    assert time.monotonic() < deadline, "the hosted UI's logout was not visited"
                    await asyncio.sleep(0.05)
                assert hosted.logouts == [{"client_id": CLIENT_ID, "logout_uri": system.base_url + "/"}]
                await navigated(page, system.base_url, "the page after signing out")
                await page.wait_for("document.body?.dataset.ready === 'yes'", "the page")
                await page.wait_for("!document.getElementById('sign-in').hidden", "the sign-in panel")
                assert await page.js("sessionStorage.getItem('ytr.tokens')") is None

            run_in_browser(flow)
