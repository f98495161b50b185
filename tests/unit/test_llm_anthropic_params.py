"""How a port request becomes Messages API parameters (no network, no SDK)."""

from __future__ import annotations

import subprocess
import sys

from ytresearch.llm.anthropic_model import build_messages_params
from ytresearch.ports import ContentBlock, ModelMessage, ModelRequest, SystemBlock


def _marked(params: dict) -> list[str]:
    blocks = [*params.get("system", []), *(b for m in params["messages"] for b in m["content"])]
    return [b["text"] for b in blocks if "cache_control" in b]


def test_marked_blocks_get_ephemeral_cache_control():
    request = ModelRequest(
        system=[SystemBlock("sys", cache=True)],
        messages=[ModelMessage("user", [ContentBlock("doc", cache=True), ContentBlock("q")])],
        max_tokens=10,
    )

    params = build_messages_params(request, default_model="m")

    assert params["system"] == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    assert params["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "q"},
            ],
        }
    ]


def test_more_than_four_marks_keep_the_last_four_in_prompt_order():
    request = ModelRequest(
        system=[SystemBlock("s1", cache=True), SystemBlock("s2", cache=True)],
        messages=[
            ModelMessage("user", [ContentBlock("u1", cache=True), ContentBlock("u2", cache=True)]),
            ModelMessage("assistant", [ContentBlock("a1", cache=True)]),
            ModelMessage("user", [ContentBlock("u3", cache=True)]),
        ],
        max_tokens=10,
    )

    params = build_messages_params(request, default_model="m")

    assert _marked(params) == ["u1", "u2", "a1", "u3"]


def test_four_or_fewer_marks_are_all_kept():
    request = ModelRequest(
        system=[SystemBlock("s1", cache=True)],
        messages=[ModelMessage("user", [ContentBlock(f"u{n}", cache=True) for n in range(3)])],
        max_tokens=10,
    )

    assert _marked(build_messages_params(request, default_model="m")) == ["s1", "u0", "u1", "u2"]


def test_blank_blocks_are_left_out_and_empty_system_is_omitted():
    request = ModelRequest(
        system=[SystemBlock("   ")],
        messages=[ModelMessage("user", [ContentBlock(""), ContentBlock("question")])],
        max_tokens=10,
    )

    params = build_messages_params(request, default_model="m")

    assert "system" not in params
    assert params["messages"][0]["content"] == [{"type": "text", "text": "question"}]


def test_model_defaults_to_the_adapter_model_and_can_be_overridden():
    base = ModelRequest(system=[], messages=[ModelMessage("user", [ContentBlock("q")])], max_tokens=5)
    override = ModelRequest(
        system=[], messages=[ModelMessage("user", [ContentBlock("q")])], max_tokens=5, model="x"
    )

    assert build_messages_params(base, default_model="claude-default")["model"] == "claude-default"
    assert build_messages_params(override, default_model="claude-default")["model"] == "x"
    assert build_messages_params(base, default_model="m")["max_tokens"] == 5


def test_importing_the_llm_package_imports_neither_anthropic_nor_boto3():
    code = (
        "import sys, ytresearch.llm, ytresearch.summaries; "
        "print(sorted(m for m in ('anthropic', 'boto3', 'httpx2') if m in sys.modules))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"
