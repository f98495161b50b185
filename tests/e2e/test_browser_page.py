"""The browser page at `/`, driven in headless Chromium (Debian's /usr/bin/chromium) over the
Chrome DevTools Protocol with the `websockets` client: no Selenium, no Playwright download.

The whole local system runs on loopback (SQLite, the embedded queue feeding the real ingest
handler, sample transcripts, the offline model slowed to one word per 50 ms so a reply can be
stopped mid-stream). The test clicks and types like a person (Input.dispatchMouseEvent /
Input.insertText) and reads the DOM; it records JavaScript dialogs, uncaught exceptions and CSP
violations and requires none.

Screenshots of the main states (1280x800 and a narrow 390px window) are saved under
test-artifacts/screenshots/ at the repository root (YTR_SCREENSHOT_DIR names another folder);
the run's summary says where (tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from local_run.app import build_local_app
from tests.support.clients import client_for
from tests.support.server import serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.llm import OfflineChatModel

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
XSS_TITLE = '<script>alert(1)</script> Untrusted <b>markup</b> test & "quotes"'
XSS_SEGMENT = "Here is a script tag: <script>alert(1)</script>"
SOLAR_QUESTION = "How do solar panels turn sunlight into electricity?"
NO_MATCH_QUESTION = "What about quantum zebras?"
WAIT = 20.0
REPORTED_LOG_SOURCES = ("security", "javascript", "violation")


# ------------------------------------------------------------------ the browser


def ensure_chromium() -> str:
    """Chromium is a test dependency: install it (scripts/ensure-test-deps.sh) rather than skip."""
    if not os.access(CHROMIUM, os.X_OK):
        subprocess.run([str(ROOT / "scripts" / "ensure-test-deps.sh")], check=True, timeout=900)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing and scripts/ensure-test-deps.sh could not install it")
    return CHROMIUM


@contextlib.contextmanager
def launch_chromium() -> Iterator[str]:
    """Start headless Chromium on a fresh profile; yield the DevTools URL of its first page."""
    binary = ensure_chromium()
    profile = Path(tempfile.mkdtemp(prefix="ytr-chromium-"))
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--mute-audio",
        "--window-size=1280,800",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    log = (profile.parent / f"{profile.name}.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (see {log.name})")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        yield str(page["webSocketDebuggerUrl"])
    finally:
        # Our own process group (start_new_session): the browser and its helper processes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)


class Page:
    """A tiny DevTools client for one page: commands, recorded events, user-like input."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.dialogs: list[dict[str, Any]] = []
        self.exceptions: list[str] = []
        self.console_errors: list[str] = []
        self.loads = 0
        self.reader: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> Page:
        self.reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        return self

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._dispatch(json.loads(raw))
        except ConnectionClosed:
            pass
        for future in self.pending.values():
            if not future.done():
                future.set_exception(RuntimeError("the browser closed the DevTools connection"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" not in message:
            self._event(message["method"], message.get("params", {}))
            return
        future = self.pending.pop(message["id"], None)
        if future is None or future.done():
            return
        if "error" in message:
            future.set_exception(RuntimeError(f"CDP error: {message['error']}"))
        else:
            future.set_result(message.get("result", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params)
            task = asyncio.create_task(self.send("Page.handleJavaScriptDialog", accept=False))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif method == "Page.loadEventFired":
            self.loads += 1
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            self.exceptions.append(str(exception.get("description") or details.get("text")))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            # "security" carries Content-Security-Policy violations (inline script/style refused).
            if entry.get("level") == "error" and entry.get("source") in REPORTED_LOG_SOURCES:
                self.console_errors.append(str(entry.get("text")))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return await asyncio.wait_for(future, 30)

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}\n{expression}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                state = await self.js("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(f"timed out waiting for {what}; page text:\n{state}")
            await asyncio.sleep(0.05)

    async def goto(self, url: str) -> None:
        loads = self.loads
        await self.send("Page.navigate", url=url)
        await self._loaded(loads)

    async def reload(self) -> None:
        loads = self.loads
        await self.send("Page.reload", ignoreCache=True)
        await self._loaded(loads)

    async def _loaded(self, loads_before: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.loads <= loads_before:
            if time.monotonic() > deadline:
                raise AssertionError("the page did not load")
            await asyncio.sleep(0.02)
        await self.wait_for("document.body && document.body.dataset.ready === 'yes'", "app start")

    async def click(self, selector: str) -> None:
        point = await self.wait_for(
            f"""(() => {{
                const e = document.querySelector({json.dumps(selector)});
                if (!e || e.disabled || !e.getClientRects().length) return null;
                e.scrollIntoView({{block: 'center', inline: 'center'}});
                const r = e.getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2];
            }})()""",
            f"{selector} to be clickable",
        )
        x, y = point
        await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", text=text)

    async def text(self, selector: str) -> str:
        return str(await self.js(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"))

    async def screenshot(self, name: str, width: int = 1280, height: int = 800) -> None:
        target = screenshot_dir()
        size = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        await self.send("Emulation.setDeviceMetricsOverride", **size)
        shot = await self.send("Page.captureScreenshot", format="png")
        await self.send("Emulation.clearDeviceMetricsOverride")
        await asyncio.to_thread(save_png, Path(target) / f"{name}.png", shot["data"])

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


def screenshot_dir() -> Path:
    """Where the browser tests keep their screenshots (CI keeps this folder)."""
    return Path(os.environ.get("YTR_SCREENSHOT_DIR") or ROOT / "test-artifacts" / "screenshots")


def save_png(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(data))


class CuttableProxy:
    """A TCP relay between the browser and the server, so the test can drop the browser's
    connections mid-stream (as a flaky network or a load balancer would) and see what the page
    asks for when it reconnects."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.requests: list[str] = []  # the first bytes of every HTTP request the browser sent
        self.server: asyncio.Server | None = None
        self.base_url = ""

    async def start(self) -> CuttableProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        link = (writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, record=True), self._pipe(up_reader, writer))
        finally:
            self.links.discard(link)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                if record and data[:4] in (b"GET ", b"POST"):
                    self.requests.append(data[:4096].decode("latin-1"))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def cut(self) -> int:
        """Reset every open connection; returns how many there were."""
        links = list(self.links)
        for client, upstream in links:
            client.transport.abort()
            upstream.transport.abort()
        return len(links)

    def stream_requests(self, request_id: str) -> list[str]:
        """The Last-Event-ID header (or "") of each GET of this chat stream, in order."""
        found = []
        for head in self.requests:
            if head.startswith(f"GET /v1/streams/{request_id} "):
                headers = [line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line]
                found.append(next((v.strip() for k, v in headers if k.lower() == "last-event-id"), ""))
        return found

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.cut()


# ------------------------------------------------------------------ the local system


@pytest.fixture
def browser_system(tmp_path: Path) -> Iterator[tuple[str, Container]]:
    """`make run` in miniature: build_local_app + the embedded queue, served on loopback."""
    url = f"sqlite:///{tmp_path}/ytr.db"
    settings = test_settings(url)
    upgrade_to_head(settings)
    container = Container(settings, chat_model=OfflineChatModel(token_delay=0.05))
    app, queue = build_local_app(container)
    queue.start()
    try:
        with serve(app) as server:
            yield server.base_url, container
    finally:
        queue.stop()
        container.engine.dispose()


def seed_long_history(container: Container, user_id: uuid.UUID, count: int) -> uuid.UUID:
    """A session with more messages than one history page, oldest first."""
    start = datetime.now(UTC) - timedelta(days=1)
    with container.store.transaction() as repo:
        session = repo.add_session(user_id, "Long history")
        for i in range(1, count + 1):
            repo.add_message(
                session_id=session.id,
                role="user" if i % 2 else "assistant",
                content=f"history message {i:02d}",
                status="complete",
                created_at=start + timedelta(seconds=i),
            )
        return session.id


# ------------------------------------------------------------------ page helpers (JavaScript)

RECORD_PROGRESS = """(() => {
    window.__progress = [];
    new MutationObserver(() => {
        const card = document.querySelector('.video-card[data-video-id="SoLarP4nels"]');
        const bar = card && card.querySelector('progress');
        if (!bar) return;
        const last = window.__progress[window.__progress.length - 1];
        const now = [bar.value, bar.max, card.querySelector('.video-status').textContent];
        if (!last || last.join('|') !== now.join('|')) window.__progress.push(now);
    }).observe(document.getElementById('video-list'),
               {subtree: true, childList: true, attributes: true, characterData: true});
})()"""

RECORD_STREAM = """(() => {
    window.__partials = [];
    new MutationObserver(() => {
        const items = document.querySelectorAll('#messages li.message.assistant');
        const last = items[items.length - 1];
        if (last && last.dataset.status === 'streaming')
            window.__partials.push(last.querySelector('.message-text').textContent);
    }).observe(document.getElementById('messages'),
               {subtree: true, childList: true, characterData: true, attributes: true});
})()"""

LAST_ASSISTANT = "[...document.querySelectorAll('#messages li.message.assistant')].pop()"

MESSAGES = """[...document.querySelectorAll('#messages li.message')].map(m => ({
    role: m.dataset.role, status: m.dataset.status,
    text: m.querySelector('.message-text').textContent,
    badge: m.querySelector('.message-badge').textContent}))"""


async def ask(page: Page, question: str) -> None:
    count = await page.js("document.querySelectorAll('#messages li.message.assistant').length")
    await page.type("#chat-input", question)
    await page.click("#chat-send")
    await page.wait_for(
        f"document.querySelectorAll('#messages li.message.assistant').length === {count + 1}",
        "the reply bubble",
    )


async def wait_reply(page: Page, status: str) -> dict[str, Any]:
    await page.wait_for(f"{LAST_ASSISTANT}.dataset.status === {json.dumps(status)}", f"a {status} reply")
    await page.wait_for("!document.getElementById('chat-send').disabled", "Send to be enabled again")
    return dict(await page.js(f"({MESSAGES}).pop()"))


async def stop_while_streaming(page: Page, question: str) -> dict[str, Any]:
    await ask(page, question)
    # Tokens are on screen and the reply is still going: that is when a person clicks Stop.
    await page.wait_for(
        f"{LAST_ASSISTANT}.dataset.tokens === 'yes' && {LAST_ASSISTANT}.dataset.status === 'streaming'",
        "the reply to start streaming",
    )
    await page.click("#chat-stop")
    return await wait_reply(page, "cancelled")


# ------------------------------------------------------------------ the test


def test_browser_page_full_flow(browser_system: tuple[str, Container]) -> None:
    base_url, container = browser_system
    user, key = make_user(container)
    api = client_for(base_url, key)
    assert api.post("/v1/sessions", json={"title": "Older session"}).status_code == 201
    long_session = seed_long_history(container, user.id, 25)
    # The page and its assets carry the strict CSP (no inline script or style may run).
    index = httpx.get(base_url + "/")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert "<script>" not in index.text and "style=" not in index.text and " on" + "click" not in index.text

    with launch_chromium() as devtools_url:
        asyncio.run(drive(devtools_url, base_url, key, str(long_session)))


async def drive(devtools_url: str, base_url: str, key: str, long_session: str) -> None:
    proxy = await CuttableProxy(int(base_url.rsplit(":", 1)[1])).start()
    async with connect(devtools_url, max_size=64 * 1024 * 1024, open_timeout=15) as ws:
        page = await Page(ws).start()
        try:
            await flow(page, proxy, key, long_session)
        finally:
            await page.close()
            await proxy.close()


async def flow(page: Page, proxy: CuttableProxy, key: str, long_session: str) -> None:
    await page.goto(proxy.base_url + "/")
    await page.wait_for("!document.getElementById('key-form').hidden", "the API key form")
    await page.screenshot("01-key")

    # ---- enter the key: kept in sessionStorage, never in the URL or localStorage
    await page.type("#api-key", key)
    await page.click("#key-save")
    await page.wait_for("!document.getElementById('app').hidden", "the app after entering the key")
    assert await page.js("sessionStorage.getItem('ytr.apiKey')") == key
    assert await page.js("JSON.stringify(localStorage)") == "{}"
    assert await page.js("document.getElementById('api-key').value") == ""

    # ---- create a session: it is selected and listed first (newest first)
    await page.type("#session-title", "Solar research")
    await page.click("#session-create")
    await page.wait_for(
        "document.getElementById('session-heading').textContent === 'Solar research'", "the new session"
    )
    titles = await page.js("[...document.querySelectorAll('.session-title')].map(e => e.textContent)")
    assert titles == ["Solar research", "Long history", "Older session"]
    assert key not in str(await page.js("location.href"))
    solar_session = str(await page.js("location.hash.slice('#session='.length)"))
    assert uuid.UUID(solar_session)

    # ---- add a video: the progress bar moves through the stages to done, then the summary shows
    await page.js(RECORD_PROGRESS)
    await page.type("#video-url", "https://youtu.be/SoLarP4nels")
    await page.click("#video-add")
    card = '.video-card[data-video-id="SoLarP4nels"]'
    await page.wait_for(f"document.querySelector('{card}')?.dataset.status === 'ready'", "the video")
    await page.wait_for(f"document.querySelector('{card} .summary-text')?.textContent.length > 40", "summary")
    progress = await page.js("window.__progress")
    values = [p[0] for p in progress]
    assert values == sorted(values), progress  # never goes backwards
    assert values[0] < progress[0][1] and values[-1] == progress[-1][1] == 5, progress
    assert progress[-1][2] == "Ready"
    assert await page.text(f"{card} .video-title") not in ("", "SoLarP4nels")
    assert await page.js("document.getElementById('video-url').value") == ""
    await page.screenshot("02-video-ready")

    # ---- ask a question over SSE (fetch streaming): the answer appears token by token
    await page.js(RECORD_STREAM)
    await ask(page, SOLAR_QUESTION)
    answer = await wait_reply(page, "complete")
    partials = await page.js("window.__partials")
    assert len({p for p in partials if p}) > 3, partials  # many partial renders before the end
    assert all(answer["text"].startswith(p) for p in partials), partials
    assert len(answer["text"].split()) > 30 and answer["badge"] == ""
    await page.screenshot("03-answer")

    # ---- the connection drops mid-reply: the page waits the server's retry time, reconnects with
    # Last-Event-ID and gets exactly the missing events (no gap, no repeated text)
    await page.js(RECORD_STREAM)
    await ask(page, SOLAR_QUESTION)
    await page.wait_for(
        f"{LAST_ASSISTANT}.dataset.tokens === 'yes' && {LAST_ASSISTANT}.dataset.status === 'streaming'",
        "the reply to start streaming",
    )
    request_id = str(await page.js(f"{LAST_ASSISTANT}.dataset.requestId"))
    assert proxy.cut() >= 1
    resumed = await wait_reply(page, "complete")
    assert resumed["text"] == answer["text"]
    partials = await page.js("window.__partials")
    assert all(answer["text"].startswith(p) for p in partials), partials
    gets = proxy.stream_requests(request_id)
    assert len(gets) >= 2 and gets[0] == "" and all(g.isdigit() and int(g) >= 1 for g in gets[1:]), gets

    # ---- stop a reply over SSE: the REST cancel endpoint; the partial reply is kept as cancelled
    stopped = await stop_while_streaming(page, SOLAR_QUESTION)
    assert stopped["badge"] == "cancelled" and stopped["text"] != answer["text"]
    assert answer["text"].startswith(stopped["text"])
    await page.screenshot("04-stopped")

    # ---- the WebSocket transport: a full reply, then Stop (the ws cancel frame)
    await page.click("#transport-ws")
    await ask(page, NO_MATCH_QUESTION)
    ws_answer = await wait_reply(page, "complete")
    assert "could not find" in ws_answer["text"]
    ws_stopped = await stop_while_streaming(page, SOLAR_QUESTION)
    assert ws_stopped["badge"] == "cancelled" and answer["text"].startswith(ws_stopped["text"])
    assert await page.js("sessionStorage.getItem('ytr.transport')") == "ws"

    # ---- reload while a reply streams: the key and the session survive in this tab, the reply is
    # finished (a closed connection is not a stop) and shown once, the history comes back in order
    await ask(page, SOLAR_QUESTION)
    await page.wait_for(f"{LAST_ASSISTANT}.dataset.tokens === 'yes'", "the reply to start streaming")
    await page.reload()
    await page.wait_for("document.querySelectorAll('#messages li.message').length === 12", "the history")
    await page.wait_for(f"{LAST_ASSISTANT}.dataset.status === 'complete'", "the reply after the reload")
    history = await page.js(MESSAGES)
    assert [m["role"] for m in history] == ["user", "assistant"] * 6
    assert all(m["status"] == "complete" for m in history[::2])
    questions = [SOLAR_QUESTION] * 3 + [NO_MATCH_QUESTION, SOLAR_QUESTION, SOLAR_QUESTION]
    assert [m["text"] for m in history[::2]] == questions
    replies = [
        (r["badge"] or "complete", r["text"]) for r in (answer, resumed, stopped, ws_answer, ws_stopped)
    ]
    assert [(m["status"], m["text"]) for m in history[1::2]] == [*replies, ("complete", answer["text"])]
    assert [m["badge"] for m in history[1::2]] == ["", "", "cancelled", "", "cancelled", ""]
    assert await page.js("document.getElementById('transport-ws').checked") is True
    assert await page.text(f"{card} .summary-text") != ""
    await page.screenshot("05-reloaded")
    await page.screenshot("06-narrow", width=390, height=844)

    # ---- a long history: newest page first, "load older" fills in the rest, oldest to newest
    await page.click(f'.session-button[data-session-id="{long_session}"]')
    await page.wait_for("document.querySelectorAll('#messages li.message').length === 20", "the newest page")
    texts = await page.js("[...document.querySelectorAll('#messages .message-text')].map(e => e.textContent)")
    assert texts == [f"history message {i:02d}" for i in range(6, 26)]
    await page.click("#history-older")
    await page.wait_for("document.querySelectorAll('#messages li.message').length === 25", "the older page")
    texts = await page.js("[...document.querySelectorAll('#messages .message-text')].map(e => e.textContent)")
    assert texts == [f"history message {i:02d}" for i in range(1, 26)]
    assert await page.js("document.getElementById('history-older').hidden") is True

    # ---- untrusted text from YouTube and the model renders as text, never as markup
    await page.click(f'.session-button[data-session-id="{solar_session}"]')
    await page.wait_for(
        "document.querySelectorAll('#messages li.message').length === 12", "the solar session"
    )
    await page.type("#video-url", "xssT3stVid0")
    await page.click("#video-add")
    xss = '.video-card[data-video-id="xssT3stVid0"]'
    await page.wait_for(f"document.querySelector('{xss}')?.dataset.status === 'ready'", "the markup sample")
    await page.wait_for(f"document.querySelector('{xss} .summary-text')?.textContent.length > 0", "summary")
    await page.click(f"{xss} .transcript summary")
    await page.wait_for(f"document.querySelectorAll('{xss} .segment').length === 6", "its transcript")
    assert await page.text(f"{xss} .video-title") == XSS_TITLE
    assert "<img src=x onerror=alert(3)>" in await page.text(f"{xss} .video-channel")
    segments = await page.js(f"[...document.querySelectorAll('{xss} .segment-text')].map(e => e.textContent)")
    assert XSS_SEGMENT in segments
    # Only text nodes inside the rendered fields; no element was created from the data.
    parts = (".video-title", ".video-channel", ".summary-text", ".segment-text")
    fields = ", ".join(f"{xss} {part}" for part in parts)
    only_text = await page.js(
        f"[...document.querySelectorAll({json.dumps(fields)})]"
        ".every(e => [...e.childNodes].every(n => n.nodeType === Node.TEXT_NODE))"
    )
    assert only_text is True
    injected = await page.js(
        """[document.scripts.length,
            document.querySelectorAll('img, b, iframe, object, embed').length,
            document.querySelectorAll('[onerror], [onclick], a[href^="javascript:"]').length]"""
    )
    assert injected == [1, 0, 0]  # the one script is /static/app.js
    # A question with markup in it, and the model's answer quoting this transcript: text as well.
    question = "What does the <script>alert(5)</script> tag and the <img src=x onerror=alert(6)> handler say?"
    await ask(page, question)
    quoted = await wait_reply(page, "complete")
    assert "Here is a script tag" in quoted["text"]
    shown = await page.js(f"({MESSAGES}).slice(-2)")
    assert shown[0]["text"] == question
    # The only elements in a reply's text are the page's own links to the moments it cites.
    assert await page.js(f"({ONLY_MOMENT_LINKS})(document.getElementById('messages'))") is True
    assert await page.js("document.querySelectorAll('img, script:not([src])').length") == 0
    await page.screenshot("07-untrusted-chat")
    await page.js(f"document.querySelector('{xss}').scrollIntoView()")
    await page.screenshot("08-untrusted-video")

    assert page.dialogs == [], page.dialogs
    assert page.exceptions == [], page.exceptions
    assert page.console_errors == [], page.console_errors


# ------------------------------------------------------------------ the research agent's tool calls

TOOL_CARD = f"{LAST_ASSISTANT}.querySelector('.tool-card')"
LAST_REPLY = "#messages > li.message.assistant:last-child"

RECORD_TOOL_PROGRESS = """(() => {
    window.__toolProgress = [];
    new MutationObserver(() => {
        for (const p of document.querySelectorAll('#messages .tool-progress')) {
            const text = p.textContent;
            if (!p.hidden && text && window.__toolProgress[window.__toolProgress.length - 1] !== text)
                window.__toolProgress.push(text);
        }
    }).observe(document.getElementById('messages'),
               {subtree: true, childList: true, characterData: true, attributes: true});
})()"""

CARD_INFO = """(card => card && ({
    name: card.querySelector('.tool-name').textContent,
    input: card.querySelector('.tool-input').textContent,
    state: card.dataset.state,
    approval: card.dataset.approval || null,
    result: card.querySelector('.tool-result').hidden ? null : card.querySelector('.tool-result').textContent,
    outcome: card.querySelector('.tool-approval-outcome')?.textContent ?? null,
    buttons: [...card.querySelectorAll('.tool-approval button')].map(b => [b.textContent, b.disabled]),
}))"""

REPLY_TEXT = f"[...{LAST_ASSISTANT}.querySelectorAll('.message-text')].map(p => p.textContent).join('')"
VIDEO_IDS = "[...document.querySelectorAll('#video-list .video-card')].map(c => c.dataset.videoId)"
ACTIONS = """[...document.querySelectorAll('#action-list .action-item')].map(a => ({
    tool: a.dataset.tool, status: a.dataset.status, undo: Boolean(a.querySelector('.action-undo'))}))"""


async def card_info(page: Page, card: str = TOOL_CARD) -> dict[str, Any]:
    return dict(await page.js(f"({CARD_INFO})({card})"))


async def sign_in_and_create(page: Page, base_url: str, key: str, title: str) -> str:
    await page.goto(base_url + "/")
    await page.type("#api-key", key)
    await page.click("#key-save")
    await page.wait_for("!document.getElementById('app').hidden", "the app after entering the key")
    await page.type("#session-title", title)
    await page.click("#session-create")
    await page.wait_for(
        f"document.getElementById('session-heading').textContent === {json.dumps(title)}", "the new session"
    )
    return str(await page.js("location.hash.slice('#session='.length)"))


async def only_text_rendered(page: Page) -> None:
    """No element was made from untrusted text: cards and actions hold only our own elements."""
    fields = (
        "#messages .tool-input, #messages .tool-result, #messages .tool-progress, #messages .message-text"
    )
    only_text = await page.js(
        f"[...document.querySelectorAll({json.dumps(fields)})]"
        ".every(e => [...e.childNodes].every(n => n.nodeType === Node.TEXT_NODE))"
    )
    assert only_text is True
    injected = await page.js(
        """[document.scripts.length,
            document.querySelectorAll('img, b, iframe, object, embed').length,
            document.querySelectorAll('[onerror], [onclick], a[href^="javascript:"]').length]"""
    )
    assert injected == [1, 0, 0]


def test_browser_page_shows_the_agents_tool_calls(browser_system: tuple[str, Container]) -> None:
    """The offline model as the agent, through the real server: tool cards with live progress and
    results (an untrusted title as text), approvals in confirm mode over the WebSocket, the video
    list following tool results and session updates, and Undo in the Actions panel."""
    base_url, container = browser_system
    _, key = make_user(container)
    with launch_chromium() as devtools_url:
        asyncio.run(drive_page(devtools_url, lambda page: agent_flow(page, base_url, key)))


async def drive_page(devtools_url: str, flow_of: Any) -> None:
    async with connect(devtools_url, max_size=64 * 1024 * 1024, open_timeout=15) as ws:
        page = await Page(ws).start()
        try:
            await flow_of(page)
        finally:
            await page.close()
    assert page.dialogs == [], page.dialogs
    assert page.exceptions == [], page.exceptions
    assert page.console_errors == [], page.console_errors


async def agent_flow(page: Page, base_url: str, key: str) -> None:
    session_id = await sign_in_and_create(page, base_url, key, "Agent research")
    await page.wait_for("!document.getElementById('actions-empty').hidden", "the empty Actions panel")
    assert await page.js("document.getElementById('tools-mode').value") == "auto"

    # ---- auto, over SSE: a card for the call, its progress while the video ingests, its result;
    # the untrusted title in the result is text, and the video list picks up the added video
    await page.js(RECORD_TOOL_PROGRESS)
    await ask(page, "add https://youtu.be/xssT3stVid0")
    await page.wait_for(f"{TOOL_CARD}?.dataset.state === 'running'", "the running tool card")
    await wait_reply(page, "complete")
    card = await card_info(page)
    assert card["name"] == "add_video" and card["input"].endswith("xssT3stVid0"), card
    assert card["state"] == "ok" and card["result"] == f'added "{XSS_TITLE}"; it is ready', card
    assert card["buttons"] == [] and card["approval"] is None
    progress = await page.js("window.__toolProgress")
    assert progress and all(p.startswith("xssT3stVid0: ") for p in progress), progress
    text = await page.js(REPLY_TEXT)
    assert XSS_TITLE in text  # the offline model repeats what the tool said, as text
    await only_text_rendered(page)
    xss = '.video-card[data-video-id="xssT3stVid0"]'
    await page.wait_for(f"document.querySelector('{xss}')?.dataset.status === 'ready'", "the added video")
    assert await page.text(f"{xss} .video-title") == XSS_TITLE
    await page.wait_for(f"({ACTIONS}).length === 1", "the action in the Actions panel")
    assert await page.js(ACTIONS) == [{"tool": "add_video", "status": "done", "undo": True}]
    await page.screenshot("09-tool-call")

    # ---- confirm, over the WebSocket: Approve and Deny buttons; Approve lets the call run
    await page.click("#transport-ws")
    await page.js(
        "(() => { const s = document.getElementById('tools-mode'); s.value = 'confirm';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await ask(page, "add https://youtu.be/SoLarP4nels")
    await page.wait_for(f"Boolean({TOOL_CARD}?.querySelector('.tool-approve'))", "the Approve button")
    card = await card_info(page)
    assert card["buttons"] == [["Approve", False], ["Deny", False]], card
    assert card["state"] == "waiting" and card["outcome"] == "Waiting for your approval."
    await page.screenshot("10-approval")
    await page.click(f"{LAST_REPLY} .tool-approve")
    await page.wait_for(f"{TOOL_CARD}.dataset.approval === 'approved'", "the approval")
    assert [b[1] for b in (await card_info(page))["buttons"]] == [True, True]  # decided: disabled
    await wait_reply(page, "complete")
    card = await card_info(page)
    assert card["state"] == "ok" and card["outcome"] == "Approved.", card
    assert card["result"].startswith('added "') and card["result"].endswith('"; it is ready'), card
    await page.wait_for(f"({VIDEO_IDS}).includes('SoLarP4nels')", "the approved video in the list")

    # ---- a change made elsewhere reaches the page as a session_update on its WebSocket
    api = client_for(base_url, key)
    removed = await asyncio.to_thread(api.delete, f"/v1/sessions/{session_id}/videos/xssT3stVid0")
    assert removed.status_code == 204
    await page.wait_for(f"!({VIDEO_IDS}).includes('xssT3stVid0')", "the removed video to leave the list")
    assert await page.js(VIDEO_IDS) == ["SoLarP4nels"]

    # ---- Deny: the call is not made, the card says why
    await ask(page, "sort the videos by date")
    await page.wait_for(f"Boolean({TOOL_CARD}?.querySelector('.tool-deny'))", "the Deny button")
    await page.click(f"{LAST_REPLY} .tool-deny")
    await wait_reply(page, "complete")
    card = await card_info(page)
    assert card["name"] == "organize_videos" and card["input"] == "strategy=date", card
    assert card["approval"] == "denied" and card["outcome"] == "Denied." and card["state"] == "failed", card
    assert card["result"].startswith("NOT_APPROVED: "), card

    # ---- Undo in the Actions panel (newest first): the approved add is reversed, the list follows
    await page.wait_for(f"({ACTIONS}).length === 3", "three actions")
    await page.click("#tab-actions")
    actions = await page.js(ACTIONS)
    assert [a["tool"] for a in actions] == ["organize_videos", "add_video", "add_video"], actions
    assert actions[0]["status"] == "refused" and not actions[0]["undo"]
    await page.click("#action-list .action-item:nth-child(2) .action-undo")
    await page.wait_for(f"({VIDEO_IDS}).length === 0", "the undone video to leave the list")
    await page.wait_for(f"({ACTIONS})[1].status === 'undone'", "the action marked undone")
    assert not (await page.js(ACTIONS))[1]["undo"]

    # ---- the history shows the calls where they happened, after a reload
    await page.reload()
    await page.wait_for("document.querySelectorAll('#messages li.message').length === 6", "the history")
    saved = await page.js(
        "[...document.querySelectorAll('#messages li.message.assistant')].map(m =>"
        " [...m.querySelectorAll('.tool-card')].map(c => [c.dataset.tool, c.dataset.state]))"
    )
    assert saved == [[["add_video", "ok"]], [["add_video", "ok"]], [["organize_videos", "failed"]]]
    assert (
        await page.text("#messages li.message.assistant .tool-result") == f'added "{XSS_TITLE}"; it is ready'
    )
    await only_text_rendered(page)
    await page.screenshot("11-history-with-tools")


def test_browser_page_renders_a_scripted_tool_sequence(browser_system: tuple[str, Container]) -> None:
    """A reply's tool events written to the real server's event log (as a reply running on
    another task would) reach the page over its stream: cards, progress, results, an approval the
    page answers through the approvals route, a timeout, a limit notice; untrusted text as text."""
    base_url, container = browser_system
    user, key = make_user(container)
    api = client_for(base_url, key)
    session_id = uuid.UUID(api.post("/v1/sessions", json={"title": "Scripted"}).json()["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    with container.store.transaction() as repo:
        # "streaming" on a process that keeps its heartbeat fresh: readers follow its log.
        request_id = repo.add_chat_request(
            user_id=user.id,
            session_id=session_id,
            expires_at=later,
            status="streaming",
            owner="another-task",
            heartbeat_at=later,
        ).id
    first = [
        ("stage", {"stage": "generating", "pending_video_ids": []}),
        ("token", {"text": "Let me add it."}),
        (
            "tool_call",
            {"call_id": "toolu_a", "name": "add_video", "input": {"url": "https://youtu.be/xssT3stVid0"}},
        ),
        (
            "tool_progress",
            {"call_id": "toolu_a", "stage": "queued", "message": "xssT3stVid0: queued for ingest"},
        ),
        ("tool_progress", {"call_id": "toolu_a", "stage": "fetching_transcript", "message": XSS_SEGMENT}),
        (
            "tool_result",
            {
                "call_id": "toolu_a",
                "name": "add_video",
                "ok": True,
                "summary": f'added "{XSS_TITLE}"; it is ready',
                "data": {"video_ids": ["xssT3stVid0"]},
            },
        ),
        (
            "tool_call",
            {
                "call_id": "toolu_b",
                "name": "remove_video",
                "input": {"video": "<img src=x onerror=alert(8)>"},
            },
        ),
        (
            "approval_required",
            {"call_id": "toolu_b", "name": "remove_video", "input": {"video": "<img src=x>"}},
        ),
    ]
    then = [
        ("approval", {"call_id": "toolu_b", "approved": True, "by": "user"}),
        (
            "tool_result",
            {
                "call_id": "toolu_b",
                "name": "remove_video",
                "ok": False,
                "summary": "video <b>x</b> is not in this session",
                "data": {},
                "error": {"code": "VIDEO_NOT_FOUND", "message": "video <b>x</b> is not in this session"},
            },
        ),
        ("tool_call", {"call_id": "toolu_c", "name": "organize_videos", "input": {"strategy": "date"}}),
        (
            "approval_required",
            {"call_id": "toolu_c", "name": "organize_videos", "input": {"strategy": "date"}},
        ),
        ("approval", {"call_id": "toolu_c", "approved": False, "by": "timeout"}),
        (
            "tool_result",
            {
                "call_id": "toolu_c",
                "name": "organize_videos",
                "ok": False,
                "summary": "no approval came in time",
                "data": {},
                "error": {"code": "NOT_APPROVED", "message": "no approval came in time"},
            },
        ),
        (
            "limit_reached",
            {"limit": "videos_per_reply", "max": 5, "message": "this reply added enough <i>videos</i>"},
        ),
        ("token", {"text": " Done."}),
        ("complete", {"text": "Let me add it. Done.", "stop_reason": "end_turn"}),
    ]

    def write(events: list[tuple[str, dict[str, Any]]], start: int) -> None:
        with container.store.transaction() as repo:
            repo.add_chat_events(
                [(request_id, start + i, kind, data) for i, (kind, data) in enumerate(events)]
            )

    write(first, 1)
    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(
                devtools_url,
                lambda page: scripted_flow(
                    page, base_url, key, str(session_id), str(request_id), lambda: write(then, len(first) + 1)
                ),
            )
        )
    with container.store.transaction() as repo:
        decided = repo.approval(request_id, "toolu_b")
        assert decided is not None and decided.approved is True and decided.decided_by == "user"


async def scripted_flow(
    page: Page, base_url: str, key: str, session_id: str, request_id: str, write_the_rest: Any
) -> None:
    # The page picks up a reply it was streaming (as after a reload), from its first event.
    await page.goto(base_url + "/")
    pending = json.dumps({"sessionId": session_id, "requestId": request_id})
    await page.js(
        f"sessionStorage.setItem('ytr.apiKey', {json.dumps(key)});"
        f"sessionStorage.setItem('ytr.pendingReply', {json.dumps(pending)});"
        f"location.hash = '#session={session_id}'"
    )
    await page.reload()
    await page.wait_for(f"{LAST_ASSISTANT}?.querySelectorAll('.tool-card').length === 2", "two tool cards")
    await page.wait_for(f"Boolean({LAST_ASSISTANT}.querySelector('.tool-approve'))", "the Approve button")

    cards = f"{LAST_ASSISTANT}.querySelectorAll('.tool-card')"
    added = await card_info(page, f"{cards}[0]")
    assert added == {
        "name": "add_video",
        "input": "https://youtu.be/xssT3stVid0",
        "state": "ok",
        "approval": None,
        "result": f'added "{XSS_TITLE}"; it is ready',
        "outcome": None,
        "buttons": [],
    }
    waiting = await card_info(page, f"{cards}[1]")
    assert waiting["name"] == "remove_video" and waiting["input"] == "<img src=x onerror=alert(8)>"
    assert waiting["state"] == "waiting" and waiting["buttons"] == [["Approve", False], ["Deny", False]]
    assert await page.js(f"{LAST_ASSISTANT}.dataset.status") == "streaming"
    await only_text_rendered(page)

    # Approve: the page POSTs the approvals route (the server records the decision), buttons off.
    await page.click(f"{LAST_REPLY} .tool-approve")
    await page.wait_for(f"({CARD_INFO})({cards}[1]).outcome === 'Approved.'", "the decision taken")
    assert [b[1] for b in (await card_info(page, f"{cards}[1]"))["buttons"]] == [True, True]

    # The rest of the reply arrives: outcomes, a timeout, a failure, a limit notice, the end.
    await asyncio.to_thread(write_the_rest)
    await wait_reply(page, "complete")
    removed = await card_info(page, f"{cards}[1]")
    assert removed["approval"] == "approved" and removed["state"] == "failed"
    assert removed["result"] == "VIDEO_NOT_FOUND: video <b>x</b> is not in this session"
    timed_out = await card_info(page, f"{cards}[2]")
    assert timed_out["outcome"] == "Denied: no answer in time." and timed_out["approval"] == "denied"
    assert timed_out["buttons"] == [["Approve", True], ["Deny", True]]  # shown, then closed by the timeout
    assert timed_out["result"] == "NOT_APPROVED: no approval came in time"
    assert (
        await page.text(f"{LAST_REPLY} .limit-notice")
        == "Limit reached: this reply added enough <i>videos</i>"
    )
    assert await page.js(REPLY_TEXT) == "Let me add it. Done."
    order = await page.js(
        f"[...{LAST_ASSISTANT}.querySelector('.message-body').children]"
        ".filter(n => !n.matches('.message-text:empty')).map(n => n.className)"
    )
    assert order == ["message-text", "tool-card", "tool-card", "tool-card", "limit-notice", "message-text"]
    await only_text_rendered(page)
    assert await page.js("document.querySelectorAll('#messages i').length") == 0
    await page.screenshot("12-scripted-tools")


# ------------------------------------------------------------------ citations: chips and sources

MOMENT = "https://www.youtube.com/watch?v={}&t={}"
# Every element in a reply's text is one of the page's own links to a cited moment (or an unlinked
# chip), holding only text, opening YouTube at a second in a new tab that is told nothing.
ONLY_MOMENT_LINKS = r"""(root => [...root.querySelectorAll('.message-text *')].every(e =>
    e.matches('a.cite, a.timestamp-link, span.cite')
    && [...e.childNodes].every(n => n.nodeType === Node.TEXT_NODE)
    && (e.tagName !== 'A' || (
        /^https:\/\/www\.youtube\.com\/watch\?v=[A-Za-z0-9_-]{11}&t=\d+$/.test(e.getAttribute('href'))
        && e.getAttribute('target') === '_blank' && e.getAttribute('rel') === 'noopener noreferrer'))))"""
CITED = """(m => ({
    chips: [...m.querySelectorAll('.message-text .cite')].map(c => ({
        tag: c.tagName, text: c.textContent, href: c.getAttribute('href'), title: c.title,
        target: c.getAttribute('target'), rel: c.getAttribute('rel')})),
    sources: [...m.querySelectorAll('.sources .source')].map(s => ({
        link: s.querySelector('.source-link').textContent,
        href: s.querySelector('.source-link').getAttribute('href'),
        quote: s.querySelector('.source-quote')?.textContent ?? null})),
    sourcesShown: !m.querySelector('.sources').hidden,
    stamps: [...m.querySelectorAll('.message-text a.timestamp-link')]
        .map(a => [a.textContent, a.getAttribute('href')]),
    words: [...m.querySelectorAll('.message-text')].map(p => [...p.childNodes]
        .filter(n => !(n.classList && n.classList.contains('cite')))
        .map(n => n.textContent).join('')).join(''),
}))"""
ASSISTANTS = "[...document.querySelectorAll('#messages li.message.assistant')]"
NOTHING_INJECTED = """[document.scripts.length,
    document.querySelectorAll('img, b, iframe, object, embed, script:not([src])').length,
    document.querySelectorAll('[onerror], [onclick], a[href^="javascript:"], a[href*="evil"]').length]"""


def clock(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def expected_citations(citations: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page shows for a reply's citations: a chip each (numbered by first use of the
    video and second) linking to the moment, and one source per moment."""
    numbers: dict[tuple[str, int], int] = {}
    chips, sources = [], []
    for c in citations:
        key = (c["video_id"], int(c["start"]))
        label = f"{c['title']} — {clock(c['start'])}"
        href = MOMENT.format(*key)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            sources.append({"link": label, "href": href, "quote": c["quote"].strip()})
        chips.append(
            {
                "tag": "A",
                "text": f"[{numbers[key]}]",
                "href": href,
                "title": label,
                "target": "_blank",
                "rel": "noopener noreferrer",
            }
        )
    return {"chips": chips, "sources": sources}


def add_ready_video(api: httpx.Client, session_id: str, video_id: str) -> None:
    added = api.post(f"/v1/sessions/{session_id}/videos", json={"url": f"https://youtu.be/{video_id}"})
    assert added.status_code in (200, 202), added.text
    deadline = time.monotonic() + 60
    while api.get(f"/v1/videos/{video_id}").json()["status"] != "ready":
        assert time.monotonic() < deadline, f"{video_id} did not become ready"
        time.sleep(0.1)


async def open_session(page: Page, base_url: str, key: str, session_id: str, pending: str = "") -> None:
    await page.goto(base_url + "/")
    script = f"sessionStorage.setItem('ytr.apiKey', {json.dumps(key)});"
    if pending:
        script += f"sessionStorage.setItem('ytr.pendingReply', {json.dumps(pending)});"
    await page.js(script + f"location.hash = '#session={session_id}'")
    await page.reload()
    await page.wait_for("!document.getElementById('session-view').hidden", "the session")


def test_browser_page_links_a_replys_citations_to_the_moments(browser_system: tuple[str, Container]) -> None:
    """The offline model's grounded replies through the real server, over SSE and the WebSocket: a
    chip [n] where each cited text begins, linking to the video at that second; a Sources list
    under the reply; timestamps of a one-video reply linked; an untrusted title and quote as text;
    and the history, after a reload, showing the same."""
    base_url, container = browser_system
    _, key = make_user(container)
    api = client_for(base_url, key)
    session_id = str(api.post("/v1/sessions", json={"title": "Cited"}).json()["id"])
    for video_id in ("SoLarP4nels", "xssT3stVid0"):
        add_ready_video(api, session_id, video_id)

    def saved_replies() -> list[dict[str, Any]]:
        items = api.get(f"/v1/sessions/{session_id}/messages?limit=10").json()["items"]
        return [m for m in reversed(items) if m["role"] == "assistant"]

    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(devtools_url, lambda page: cited_flow(page, base_url, key, session_id, saved_replies))
        )


async def cited_flow(page: Page, base_url: str, key: str, session_id: str, saved_replies: Any) -> None:
    await open_session(page, base_url, key, session_id)
    # The video cards grow as their summaries load: wait, so no click lands on a moving button.
    await page.wait_for("document.querySelectorAll('.video-card .summary-text').length === 2", "summaries")
    await page.wait_for("!document.getElementById('chat-send').disabled", "the history")

    # ---- over SSE: a solar question; chips, sources and timestamp links from the saved citations
    await ask(page, SOLAR_QUESTION)
    await wait_reply(page, "complete")
    # ---- over the WebSocket: the untrusted sample's title and quote, as text
    await page.click("#transport-ws")
    await ask(page, "What does the <script> tag say in the sample with markup?")
    await wait_reply(page, "complete")

    replies = await asyncio.to_thread(saved_replies)
    assert len(replies) == 2 and all(r["citations"] for r in replies), replies
    shown = await page.js(f"{ASSISTANTS}.map({CITED})")
    for reply, seen in zip(replies, shown, strict=True):
        want = expected_citations(reply["citations"])
        assert seen["chips"] == want["chips"], (seen["chips"], reply["citations"])
        assert seen["sources"] == want["sources"] and seen["sourcesShown"] is True
        assert seen["words"] == reply["content"]  # the chips are beside the text, not in it
        cited = {c["video_id"] for c in reply["citations"]}
        stamps = re.findall(r"\[(?:\d{1,2}:)?\d{1,2}:\d{2}\]", reply["content"])
        if len(cited) == 1:
            (video_id,) = cited
            assert [s[0] for s in seen["stamps"]] == stamps and stamps, seen["stamps"]
            for text, href in seen["stamps"]:
                *hours, minutes, seconds = (int(part) for part in text.strip("[]").split(":"))
                at = (hours[0] if hours else 0) * 3600 + minutes * 60 + seconds
                assert href == MOMENT.format(video_id, at)
    solar, marked = shown
    assert {c["href"].split("&")[0] for c in solar["chips"]} == {
        MOMENT.format("SoLarP4nels", 0).split("&")[0]
    }
    assert any(c["title"].startswith(XSS_TITLE + " — ") for c in marked["chips"]), marked["chips"]
    assert any(s["link"].startswith(XSS_TITLE) for s in marked["sources"])
    assert any("<script>alert(1)</script>" in (s["quote"] or "") for s in marked["sources"]), marked
    assert await page.js(f"({ONLY_MOMENT_LINKS})(document.getElementById('messages'))") is True
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0]
    await page.screenshot("13-citations")

    # ---- the history after a reload: the same chips, sources and links
    await page.reload()
    await page.wait_for(f"{ASSISTANTS}.length === 2", "the history")
    assert await page.js(f"{ASSISTANTS}.map({CITED})") == shown
    assert await page.js(f"({ONLY_MOMENT_LINKS})(document.getElementById('messages'))") is True
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0]


EVIL_TITLE = '<img src=x onerror=alert(9)> Solar "panels" & <b>more</b>'
EVIL_QUOTE = "<script>alert(10)</script> light frees <i>electrons</i>"


def test_browser_page_builds_citation_links_itself(browser_system: tuple[str, Container]) -> None:
    """Citation events written to the real server's event log (a reply running on another task)
    reach the page over its stream: the links are built from the video id and the second, never
    from the event's url; a chip for an id that is not a video's is not a link; one moment cited
    twice is one source; a timestamp right after a chip links to that chip's video, another in a
    two-video reply stays text; untrusted titles and quotes are text; the history shows the same."""
    base_url, container = browser_system
    user, key = make_user(container)
    api = client_for(base_url, key)
    session_id = uuid.UUID(api.post("/v1/sessions", json={"title": "Scripted citations"}).json()["id"])
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
    evil = "javascript:alert(11)"
    events: list[tuple[str, dict[str, Any]]] = [
        ("stage", {"stage": "generating", "pending_video_ids": []}),
        ("token", {"text": "Two videos agree. "}),
        (
            "citation",
            {
                "video_id": "SoLarP4nels",
                "title": EVIL_TITLE,
                "start": 65.7,
                "end": 80.0,
                "quote": EVIL_QUOTE,
                "url": evil,
            },
        ),
        ("token", {"text": "[01:05] Light "}),
        ("token", {"text": "frees electrons. "}),
        (
            "citation",
            {
                "video_id": "s0urd0ughBr",
                "title": "Sourdough at home",
                "start": 3725,
                "end": 3740.5,
                "quote": "Feed the starter.",
                "url": "https://evil.example/",
            },
        ),
        ("token", {"text": "Feed it; see [02:10] too. "}),
        (
            "citation",
            {
                "video_id": "SoLarP4nels",
                "title": EVIL_TITLE,
                "start": 65.2,
                "end": 70,
                "quote": "again",
                "url": evil,
            },
        ),
        ("token", {"text": "Again. "}),
        (
            "citation",
            {
                "video_id": "../../evil",
                "title": "Not a video",
                "start": 5,
                "end": 6,
                "quote": "q",
                "url": "https://evil.example/",
            },
        ),
        ("token", {"text": "Unlinkable."}),
    ]
    text = "".join(str(d["text"]) for kind, d in events if kind == "token")
    citations, said = [], 0
    for kind, data in events:
        if kind == "token":
            said += len(str(data["text"]))
        elif kind == "citation":
            citations.append({**data, "at": said})

    def write(batch: list[tuple[str, dict[str, Any]]], start: int) -> None:
        with container.store.transaction() as repo:
            repo.add_chat_events(
                [(request_id, start + i, kind, data) for i, (kind, data) in enumerate(batch)]
            )

    def finish() -> None:
        with container.store.transaction() as repo:
            message = repo.add_message(
                session_id=session_id, role="assistant", content=text, citations=citations
            )
        complete = {"text": text, "stop_reason": "end_turn", "message_id": str(message.id)}
        write([("complete", complete)], len(events) + 1)

    write(events, 1)
    pending = json.dumps({"sessionId": str(session_id), "requestId": str(request_id)})
    with launch_chromium() as devtools_url:
        asyncio.run(
            drive_page(
                devtools_url,
                lambda page: scripted_citations(page, base_url, key, str(session_id), pending, text, finish),
            )
        )


async def scripted_citations(
    page: Page, base_url: str, key: str, session_id: str, pending: str, text: str, finish: Any
) -> None:
    # The page picks the reply up from its first event (as after a reload while it streamed).
    await open_session(page, base_url, key, session_id, pending)
    await page.wait_for(f"{LAST_ASSISTANT}?.querySelectorAll('.cite').length === 4", "four chips")
    solar = MOMENT.format("SoLarP4nels", 65)
    first = {"target": "_blank", "rel": "noopener noreferrer", "tag": "A"}
    want_chips = [
        {**first, "text": "[1]", "href": solar, "title": f"{EVIL_TITLE} — 01:05"},
        {
            **first,
            "text": "[2]",
            "href": MOMENT.format("s0urd0ughBr", 3725),
            "title": "Sourdough at home — 1:02:05",
        },
        {**first, "text": "[1]", "href": solar, "title": f"{EVIL_TITLE} — 01:05"},
        {
            "tag": "SPAN",
            "text": "[3]",
            "href": None,
            "title": "Not a video — 00:05",
            "target": None,
            "rel": None,
        },
    ]
    want_sources = [
        {"link": f"{EVIL_TITLE} — 01:05", "href": solar, "quote": EVIL_QUOTE},
        {
            "link": "Sourdough at home — 1:02:05",
            "href": MOMENT.format("s0urd0ughBr", 3725),
            "quote": "Feed the starter.",
        },
        {"link": "Not a video — 00:05", "href": None, "quote": "q"},
    ]
    streaming = await page.js(f"({CITED})({LAST_ASSISTANT})")
    assert streaming["chips"] == want_chips and streaming["sources"] == want_sources
    assert await page.js(f"{LAST_ASSISTANT}.dataset.status") == "streaming"
    # Each chip sits where its text begins.
    first_para = await page.js(
        f"[...{LAST_ASSISTANT}.querySelector('.message-text').childNodes].map(n => n.textContent)"
    )
    assert first_para[:3] == ["Two videos agree. ", "[1]", "[01:05] Light frees electrons. "], first_para

    await asyncio.to_thread(finish)
    await wait_reply(page, "complete")
    done = await page.js(f"({CITED})({LAST_ASSISTANT})")
    assert done["chips"] == want_chips and done["sources"] == want_sources and done["words"] == text
    # Right after a chip: linked to its video; elsewhere in a reply citing two videos: text.
    assert done["stamps"] == [["[01:05]", solar]]
    assert await page.js(f"({ONLY_MOMENT_LINKS})(document.getElementById('messages'))") is True
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0]
    assert (
        await page.js("document.querySelectorAll('#messages .sources *:not(ol, li, a, span, q, h4)').length")
        == 0
    )
    await page.screenshot("14-scripted-citations")

    # ---- the history after a reload: the saved citations at their offsets, the same rendering
    await page.reload()
    await page.wait_for(f"{ASSISTANTS}.length === 1", "the saved reply")
    assert await page.js(f"({CITED})({LAST_ASSISTANT})") == done
    assert await page.js(f"{LAST_ASSISTANT}.dataset.status") == "complete"
    assert await page.js(NOTHING_INJECTED) == [1, 0, 0]
