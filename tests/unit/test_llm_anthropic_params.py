"""How a port request becomes Messages API parameters (no network, no SDK)."""

from __future__ import annotations

import subprocess
import sys

from ytresearch.llm.anthropic_model import build_messages_params
from ytresearch.ports import (
    ContentBlock,
    ModelMessage,
    ModelRequest,
    SystemBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)


def _marked(params: dict) -> list[str]:
    blocks = [*params.get("system", []), *(b for m in params["messages"] for b in m["content"])]
    return [b["text"] for b in blocks if "cache_control" in b]


SEARCH = ToolSpec(
    "search_transcript",
    "Find passages of the transcript.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
CLIP = ToolSpec("get_clip", "One clip by its start second.", {"type": "object", "properties": {}})


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


def test_tools_become_the_api_tool_list_in_the_given_order():
    request = ModelRequest(
        system=[], messages=[ModelMessage("user", [ContentBlock("q")])], max_tokens=5, tools=(SEARCH, CLIP)
    )

    params = build_messages_params(request, default_model="m")

    assert params["tools"] == [
        {
            "name": "search_transcript",
            "description": "Find passages of the transcript.",
            "input_schema": SEARCH.input_schema,
        },
        {
            "name": "get_clip",
            "description": "One clip by its start second.",
            "input_schema": CLIP.input_schema,
        },
    ]


def test_no_tools_means_no_tools_parameter():
    request = ModelRequest(system=[], messages=[ModelMessage("user", [ContentBlock("q")])], max_tokens=5)

    assert "tools" not in build_messages_params(request, default_model="m")


def test_tool_use_and_tool_result_blocks_take_the_api_shape_in_order():
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [ContentBlock("What is said about panels?")]),
            ModelMessage(
                "assistant",
                [
                    ContentBlock("Let me look."),
                    ToolUseBlock("toolu_a", "search_transcript", {"query": "panels"}),
                    ToolUseBlock("toolu_b", "get_clip", {}),
                ],
            ),
            ModelMessage(
                "user",
                [
                    ToolResultBlock("toolu_a", '[{"start": 12, "text": "panels"}]'),
                    ToolResultBlock("toolu_b", "no clip at that second", is_error=True),
                ],
            ),
        ],
        max_tokens=5,
        tools=(SEARCH, CLIP),
    )

    params = build_messages_params(request, default_model="m")

    assert params["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_a", "name": "search_transcript", "input": {"query": "panels"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_clip", "input": {}},
    ]
    assert params["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": '[{"start": 12, "text": "panels"}]'},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_b",
            "content": "no clip at that second",
            "is_error": True,
        },
    ]


def test_whitespace_filtering_leaves_tool_blocks_alone():
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [ContentBlock("q")]),
            ModelMessage("assistant", [ContentBlock("  "), ToolUseBlock("toolu_a", "get_clip", {})]),
            ModelMessage("user", [ToolResultBlock("toolu_a", ""), ContentBlock("\n")]),
        ],
        max_tokens=5,
        tools=(CLIP,),
    )

    params = build_messages_params(request, default_model="m")

    assert [b["type"] for b in params["messages"][1]["content"]] == ["tool_use"]
    assert params["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": ""}
    ]


def test_tool_blocks_carry_no_cache_marks_and_the_last_four_text_marks_are_kept():
    request = ModelRequest(
        system=[SystemBlock("s1", cache=True), SystemBlock("s2", cache=True)],
        messages=[
            ModelMessage("user", [ContentBlock("u1", cache=True)]),
            ModelMessage("assistant", [ToolUseBlock("toolu_a", "get_clip", {})]),
            ModelMessage("user", [ToolResultBlock("toolu_a", "clip"), ContentBlock("u2", cache=True)]),
            ModelMessage("assistant", [ContentBlock("a1", cache=True)]),
        ],
        max_tokens=5,
        tools=(SEARCH, CLIP),
    )

    params = build_messages_params(request, default_model="m")

    assert _marked(params) == ["s2", "u1", "u2", "a1"]
    marks = [
        b
        for b in [*params["tools"], *(b for m in params["messages"] for b in m["content"])]
        if "cache_control" in b
    ]
    assert len(marks) == 3  # with s2 in the system: four in all


def test_importing_the_llm_package_imports_neither_anthropic_nor_boto3():
    code = (
        "import sys, ytresearch.llm, ytresearch.summaries; "
        "print(sorted(m for m in ('anthropic', 'boto3', 'httpx2') if m in sys.modules))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"
