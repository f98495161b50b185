"""Frames the chat socket cannot read: each gets an error frame (where the protocol allows one) and
a close code that says why, the server logs no traceback, and it carries on serving."""

from __future__ import annotations

import httpx
import pytest

from tests.faults.steps import (
    ScriptedClaude,
    new_session,
    server_log_since,
    then_a_new_chat_completes,
    ws_connect,
    ws_until_closed,
)
from tests.support.health import HealthPoller
from tests.support.local_service import LocalServiceProcess

pytestmark = pytest.mark.slow

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, 100,000 levels deep (200 KB)
HUGE = '{"type":"message","content":"' + "x" * 1_000_000 + '"}'  # a 1 MB text frame

BAD_FRAMES = [
    pytest.param(b"\x00\x01binary", 1003, "UNSUPPORTED_FRAME", id="binary-1003"),
    pytest.param("this is not JSON {", 1007, "INVALID_FRAME", id="not-json-1007"),
    pytest.param(DEEP, 1009, "FRAME_TOO_LARGE", id="nested-100000-deep-1009"),
    pytest.param(HUGE, 1009, "FRAME_TOO_LARGE", id="one-megabyte-1009"),
]


@pytest.mark.parametrize(("frame", "close_code", "error_code"), BAD_FRAMES)
def test_a_bad_frame_gets_an_error_frame_a_close_code_and_no_traceback(
    service: LocalServiceProcess,
    health: HealthPoller,
    log_mark: int,
    api: httpx.Client,
    user_key: str,
    model: ScriptedClaude,
    frame: str | bytes,
    close_code: int,
    error_code: str,
) -> None:
    # Given an authenticated chat socket
    sid = new_session(api, "bad frames")
    with ws_connect(service.base_url, sid, user_key) as ws:
        # When the client sends a frame the server cannot read
        ws.send(frame)
        frames, received = ws_until_closed(ws)
    # Then it is told why in an error frame, and the socket is closed with the matching code
    assert received == close_code, f"closed with {received}, frames {frames}"
    assert [(f.get("type"), f.get("code")) for f in frames] == [("error", error_code)]
    # and the server answered /health all along, logged no traceback, and still chats
    health.assert_always_answered()
    then_a_new_chat_completes(api, model, sid)
    written = server_log_since(service, log_mark)
    assert "Traceback" not in written, written[-3000:]
