"""How a port request becomes Messages API parameters, and how the citations of a reply are read
back against it (no network, no SDK)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from ytresearch.llm.anthropic_citations import CitationReader
from ytresearch.llm.anthropic_model import build_messages_params
from ytresearch.ports import (
    CitationDelta,
    ContentBlock,
    DocumentBlock,
    ModelMessage,
    ModelRequest,
    SystemBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)


def _marked(params: dict) -> list[str]:
    """The marked blocks in prompt order: a text block by its text, a document by its title."""
    blocks = [*params.get("system", []), *(b for m in params["messages"] for b in m["content"])]
    return [b.get("text", b.get("title")) for b in blocks if "cache_control" in b]


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


# ---------------------------------------------------------------- documents


def test_a_document_becomes_a_custom_content_document_with_citations_enabled():
    document = DocumentBlock("Solar talk", ("[0:00] Panels. ", "[0:30] Storage."), context="By an analyst.")
    request = ModelRequest(
        system=[], messages=[ModelMessage("user", [document, ContentBlock("q")])], max_tokens=5
    )

    params = build_messages_params(request, default_model="m")

    assert params["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {
                "type": "content",
                "content": [
                    {"type": "text", "text": "[0:00] Panels. "},
                    {"type": "text", "text": "[0:30] Storage."},
                ],
            },
            "citations": {"enabled": True},
            "title": "Solar talk",
            "context": "By an analyst.",
        },
        {"type": "text", "text": "q"},
    ]


def test_a_document_without_context_or_title_leaves_them_out_and_a_marked_one_is_cached():
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage(
                "user", [DocumentBlock("", ("part",), context="  "), DocumentBlock("t", ("p",), cache=True)]
            )
        ],
        max_tokens=5,
    )

    first, second = build_messages_params(request, default_model="m")["messages"][0]["content"]

    assert set(first) == {"type", "source", "citations"}
    assert second["cache_control"] == {"type": "ephemeral"}
    assert set(second) == {"type", "source", "citations", "title", "cache_control"}


def test_document_parts_go_as_they_are_so_citation_indexes_stay_true():
    parts = ("one", "  ", "three")
    request = ModelRequest(
        system=[], messages=[ModelMessage("user", [DocumentBlock("t", parts)])], max_tokens=5
    )

    (document,) = build_messages_params(request, default_model="m")["messages"][0]["content"]

    assert [p["text"] for p in document["source"]["content"]] == list(parts)


def test_document_marks_count_toward_the_four_breakpoints():
    request = ModelRequest(
        system=[SystemBlock("s1", cache=True)],
        messages=[
            ModelMessage(
                "user",
                [
                    DocumentBlock("d1", ("a",), cache=True),
                    DocumentBlock("d2", ("b",), cache=True),
                    ContentBlock("u1", cache=True),
                ],
            ),
            ModelMessage("assistant", [ContentBlock("a1")]),
            ModelMessage("user", [DocumentBlock("d3", ("c",), cache=True), ContentBlock("u2")]),
        ],
        max_tokens=5,
    )

    assert _marked(build_messages_params(request, default_model="m")) == ["d1", "d2", "u1", "d3"]


# ---------------------------------------------------------------- citations read back

SOURCES = ModelRequest(
    system=[],
    messages=[
        ModelMessage("user", [DocumentBlock("a", ("p0", "p1", "p2")), ContentBlock("q")]),
        ModelMessage("assistant", [ContentBlock("r")]),
        ModelMessage("user", [DocumentBlock("b", ("q0",)), ContentBlock("q")]),
    ],
    max_tokens=5,
)


def _location(document: int, start: int, end: int, text: str = "cited") -> dict:
    return {
        "type": "content_block_location",
        "cited_text": text,
        "document_index": document,
        "document_title": "a",
        "start_block_index": start,
        "end_block_index": end,
    }


def test_a_content_block_location_becomes_a_citation_delta():
    reader = CitationReader(SOURCES)

    assert reader.read(_location(0, 1, 3, "p1p2")) == CitationDelta(0, 1, 3, "p1p2")
    assert reader.read(_location(1, 0, 1, "q0")) == CitationDelta(1, 0, 1, "q0")


@pytest.mark.parametrize(
    "citation",
    [_location(2, 0, 1), _location(0, 3, 4), _location(0, 2, 4), _location(0, 2, 2), _location(1, -1, 1)],
    ids=["no-such-document", "no-such-part", "past-the-end", "empty-range", "negative-start"],
)
def test_a_citation_outside_the_requests_documents_is_dropped(citation: dict):
    assert CitationReader(SOURCES).read(citation) is None


@pytest.mark.parametrize(
    "citation",
    [
        {**_location(0, 0, 1), "document_index": "0"},
        {**_location(0, 0, 1), "start_block_index": True},
        {k: v for k, v in _location(0, 0, 1).items() if k != "cited_text"},
        "not a citation",
    ],
    ids=["index-not-int", "bool-index", "no-cited-text", "not-an-object"],
)
def test_a_malformed_citation_is_dropped(citation: object):
    assert CitationReader(SOURCES).read(citation) is None


def test_other_kinds_of_citation_are_ignored_with_a_debug_log(caplog: pytest.LogCaptureFixture):
    char_location = {
        "type": "char_location",
        "cited_text": "p0",
        "document_index": 0,
        "document_title": "a",
        "start_char_index": 0,
        "end_char_index": 2,
    }

    with caplog.at_level(logging.DEBUG, logger="ytresearch.llm.anthropic_citations"):
        assert CitationReader(SOURCES).read(char_location) is None

    assert [(r.levelno, "char_location" in r.getMessage()) for r in caplog.records] == [(logging.DEBUG, True)]


def test_importing_the_llm_package_imports_neither_anthropic_nor_boto3():
    code = (
        "import sys, ytresearch.llm, ytresearch.summaries; "
        "print(sorted(m for m in ('anthropic', 'boto3', 'httpx2') if m in sys.modules))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"
