"""Streamed text revealed smoothly, in headless Chromium against the local stack: the server
writes a reply's text to its event log in checkpoints (the first token at once, then a burst of
tokens about every 0.5 s), and the page shows each burst a few words an animation frame rather
than all at once; at the end everything received is shown and linked as before; with
prefers-reduced-motion text is shown as it arrives. The helpers come from test_browser_page.py
and test_browser_workspace.py.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.test_browser_page import (
    LAST_ASSISTANT,
    SOLAR_QUESTION,
    Page,
    add_ready_video,
    ask,
    open_session,
    wait_reply,
)
from tests.e2e.test_browser_workspace import local_system, run_in_browser
from tests.support.clients import client_for
from tests.support.users import make_user
from ytresearch.db.models import ChatEvent

pytestmark = pytest.mark.slow

# Installed before the page's own scripts: the text of the `token` events the page receives over
# its SSE streams (each read of a stream's decoded body is parsed), and every 30 ms while the last
# reply streams, the text it shows beside the text received so far. A read and the page's
# handling of it are one task, so a sample never falls between them. `__ended`: what the reply
# showed when it ended (seen by a mutation observer, before the next frame could show more).
RECORD_STREAM = r"""(() => {
    window.__received = '';
    window.__samples = [];
    window.__ended = null;
    const buffers = new WeakMap();
    const read = ReadableStreamDefaultReader.prototype.read;
    ReadableStreamDefaultReader.prototype.read = function () {
        return read.call(this).then((result) => {
            if (typeof result.value !== 'string') return result;
            const blocks = ((buffers.get(this) || '') + result.value).split('\n\n');
            buffers.set(this, blocks.pop());
            for (const block of blocks) {
                const lines = block.split('\n');
                if (!lines.includes('event: token')) continue;
                const data = lines.find((line) => line.startsWith('data: '));
                window.__received += JSON.parse(data.slice(6)).text;
            }
            return result;
        });
    };
    const shown = (reply) => [...reply.querySelectorAll('.message-body > .message-text')]
        .flatMap((p) => [...p.childNodes]).filter((n) => !n.classList?.contains('cite'))
        .map((n) => n.textContent).join('');
    new MutationObserver(() => {
        const reply = [...document.querySelectorAll('#messages li.message.assistant')].pop();
        if (window.__ended || !reply || reply.dataset.status === 'streaming') return;
        window.__ended = {status: reply.dataset.status, shown: shown(reply), received: window.__received};
    }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-status']});
    setInterval(() => {
        const reply = [...document.querySelectorAll('#messages li.message.assistant')].pop();
        if (!reply || reply.dataset.status !== 'streaming') return;
        const text = shown(reply);
        window.__samples.push({
            shown: text.length,
            received: window.__received.length,
            prefix: window.__received.startsWith(text),
            equal: window.__received === text,
            split: /[\uD800-\uDBFF]$/.test(text),
        });
    }, 30);
})()"""

RESET = "window.__received = ''; window.__samples = []; window.__ended = null;"
STAMP = re.compile(r"\[(?:\d{1,2}:)?\d{1,2}:\d{2}\]")
# The reply's own words (its chips are beside them), as the history and the saved message have them.
REPLY_WORDS = f"""[...{LAST_ASSISTANT}.querySelectorAll('.message-body > .message-text')]
    .flatMap(p => [...p.childNodes]).filter(n => !n.classList?.contains('cite'))
    .map(n => n.textContent).join('')"""


def steps(samples: list[dict[str, Any]]) -> int:
    """How many times the shown text grew between two samples."""
    return sum(1 for before, after in itertools.pairwise(samples) if after["shown"] > before["shown"])


def test_streamed_text_is_revealed_smoothly_and_as_it_comes_with_reduced_motion(tmp_path: Path) -> None:
    """The offline model's reply through the real server (tokens checkpointed every 0.5 s), over
    SSE: the shown text grows in more steps than the bursts that came, never past or off the text
    received, the first text at once; at `complete` all of it, with its chips and timestamp links.
    With prefers-reduced-motion emulated, every sample shows exactly the text received."""
    with local_system(f"sqlite:///{tmp_path}/ytr.db") as system:
        assert system.container.settings.stream_checkpoint_seconds == 0.5
        _, key = make_user(system.container)
        api = client_for(system.base_url, key)
        session_id = str(api.post("/v1/sessions", json={"title": "Smooth"}).json()["id"])
        add_ready_video(api, session_id, "SoLarP4nels")

        def saved_replies() -> list[dict[str, Any]]:
            items = api.get(f"/v1/sessions/{session_id}/messages?limit=10").json()["items"]
            return [m for m in reversed(items) if m["role"] == "assistant"]

        def token_bursts(request_id: str) -> int:
            """The reply's checkpoints: each run of tokens the server wrote together is one row of
            its event log, sent to the page together (a burst)."""
            with system.container.store.transaction() as repo:
                kinds = repo.session.scalars(
                    select(ChatEvent.type).where(ChatEvent.request_id == uuid.UUID(request_id))
                )
                return sum(kind == "token" for kind in kinds)

        async def one_reply(page: Page) -> tuple[list[dict[str, Any]], int, str]:
            """Ask; the samples taken while the reply streamed, its bursts, the text received.
            At `complete`, everything received was shown at once."""
            await page.js(RESET)
            await ask(page, SOLAR_QUESTION)
            await wait_reply(page, "complete")
            samples = list(await page.js("window.__samples"))
            ended = await page.js("window.__ended")
            assert ended["status"] == "complete" and ended["shown"] == ended["received"], ended
            request_id = await page.js(f"{LAST_ASSISTANT}.dataset.requestId")
            bursts = await asyncio.to_thread(token_bursts, request_id)
            return samples, bursts, str(await page.js("window.__received"))

        async def flow(page: Page) -> None:
            await page.send("Page.addScriptToEvaluateOnNewDocument", source=RECORD_STREAM)
            await open_session(page, system.base_url, key, session_id)
            await page.wait_for("Boolean(document.querySelector('.video-card .summary-text'))", "the summary")
            await page.wait_for("!document.getElementById('chat-send').disabled", "the history")

            # ---- animated: more steps than bursts, always a prefix of what came, the first at once
            samples, bursts, received = await one_reply(page)
            saved = (await asyncio.to_thread(saved_replies))[-1]
            assert received == saved["content"], "the stream carried the saved reply"
            assert bursts >= 4, (bursts, len(received))  # a long reply: several checkpoints
            assert len(samples) > 20, samples
            assert all(s["prefix"] and not s["split"] for s in samples), samples
            assert all(s["shown"] > 0 for s in samples if s["received"] > 0), "the first text at once"
            # Shown all at once, each burst would be one step (or two, split over two reads).
            assert steps(samples) > 2 * bursts, (steps(samples), bursts, samples)
            assert any(not s["equal"] for s in samples), "some text was revealed after it came"
            # At `complete`: the whole text, with the chips and timestamp links of the saved reply.
            assert await page.js(REPLY_WORDS) == saved["content"]
            assert await page.js(f"{LAST_ASSISTANT}.querySelectorAll('.message-text .cite').length") == len(
                saved["citations"]
            )
            links = await page.js(f"{LAST_ASSISTANT}.querySelectorAll('a.timestamp-link').length")
            assert links == len(STAMP.findall(saved["content"])) > 0, links

            # ---- prefers-reduced-motion: the text received, at every sample
            await page.send(
                "Emulation.setEmulatedMedia", features=[{"name": "prefers-reduced-motion", "value": "reduce"}]
            )
            assert await page.js("matchMedia('(prefers-reduced-motion: reduce)').matches") is True
            samples, bursts, received = await one_reply(page)
            saved = (await asyncio.to_thread(saved_replies))[-1]
            assert received == saved["content"] and bursts >= 4, (bursts, received)
            assert len(samples) > 20 and all(s["equal"] for s in samples), samples
            assert await page.js(REPLY_WORDS) == saved["content"]

        run_in_browser(flow)
