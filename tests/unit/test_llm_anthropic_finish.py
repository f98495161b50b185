"""How the non-text events of a Messages stream (JSON, as the API sends them) become the reply's
model, stop reason and usage."""

from __future__ import annotations

from typing import Any

from ytresearch.llm.anthropic_model import _Finish
from ytresearch.ports import Usage


def _start(**usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 1, **usage},
        },
    }


def _delta(**usage: int | None) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": usage,
    }


def test_message_delta_totals_overwrite_and_omitted_fields_keep_the_start_values():
    finish = _Finish()
    finish.update(_start(input_tokens=120, cache_read_input_tokens=100, cache_creation_input_tokens=7))
    finish.update(_delta(output_tokens=42, cache_creation_input_tokens=9, input_tokens=None))
    assert not finish.stopped
    finish.update({"type": "message_stop"})

    result = finish.result("requested")

    assert finish.stopped
    assert (result.model, result.stop_reason) == ("claude-x", "end_turn")
    assert result.usage == Usage(
        input_tokens=120, output_tokens=42, cache_read_tokens=100, cache_creation_tokens=9
    )


def test_a_stream_without_message_start_falls_back_to_the_requested_model():
    finish = _Finish()
    finish.update(_delta(output_tokens=3))

    result = finish.result("claude-requested")

    assert result.model == "claude-requested"
    assert result.usage == Usage(input_tokens=0, output_tokens=3)


def test_unknown_events_change_nothing():
    finish = _Finish()
    finish.update({"type": "ping"})
    finish.update({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})

    assert not finish.stopped
    assert finish.result("m") == _Finish().result("m")
