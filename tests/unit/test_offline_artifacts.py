"""The offline model makes artifacts: the person asks for a comparison table, an outline or study
notes, and gets one extracted from the request's videos, its input streamed as it is written."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from ytresearch.llm.offline import OfflineChatModel
from ytresearch.llm.offline_artifacts import MAX_CONTENT_CHARS, OFFLINE_NOTE
from ytresearch.ports import (
    ContentBlock,
    DocumentBlock,
    MessageBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
    ToolCallRequested,
    ToolInputDelta,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)

pytestmark = pytest.mark.anyio

ARTIFACT_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 120},
        "kind": {"type": "string", "enum": ["table", "outline", "notes", "document"]},
        "content": {"type": "string", "minLength": 1, "maxLength": 60000},
    },
    "required": ["title", "kind", "content"],
}
CREATE = ToolSpec("create_artifact", "Save a Markdown artifact.", ARTIFACT_SCHEMA, streams_input=True)
LIST = ToolSpec("list_videos", "List the videos.", {"type": "object", "properties": {}})
REMOVE = ToolSpec("remove_video", "Remove a video.", {"type": "object", "properties": {"video": {}}})
SEARCH = ToolSpec("search_youtube", "Search.", {"type": "object", "properties": {"query": {}}})
TOOLS = (LIST, REMOVE, SEARCH, CREATE)

SOLAR_LINES = [
    "[00:05] Welcome back to the channel.",
    "[00:40] Solar panels convert sunlight into electricity for your home.",
    "[01:03] A home battery stores solar electricity for the evening.",
    "[01:30] Solar panels on a south facing roof produce the most electricity.",
    "[02:10] Batteries cost around eight thousand dollars.",
    "[02:40] Net metering sells extra solar electricity back to the grid.",
]
SOLAR = DocumentBlock(
    "Solar panels explained",
    parts=("\n".join(SOLAR_LINES[:4]), "\n".join(SOLAR_LINES[3:])),  # overlapping windows
    context=(
        "YouTube video dQw4w9WgXcQ, by Energy Talks, 02:45 long. Summary: Offline summary (extracted "
        "sentences; no AI model configured):\n\n- Solar panels | batteries pay off. It takes years.\n"
        "- Net metering helps."
    ),
)
HEAT = DocumentBlock(
    "Heat pumps\nin winter <script>alert(1)</script> | part 2",
    parts=("[00:02] heat pumps move heat instead of making it\n[00:09] they work well in the cold",),
    context="YouTube video abcdefghij1, by Home | Energy.",
)


def request(
    text: str,
    *,
    tools: tuple[ToolSpec, ...] = TOOLS,
    documents: tuple[MessageBlock, ...] = (SOLAR, HEAT),
    history: list[ModelMessage] | None = None,
) -> ModelRequest:
    opening = [ModelMessage("user", list(documents))] if documents else []
    return ModelRequest(
        system=[SystemBlock("Answer questions about the videos.")],
        messages=[*opening, *(history or []), ModelMessage("user", [ContentBlock(text)])],
        max_tokens=2048,
        tools=tools,
    )


async def events_of(req: ModelRequest, model: OfflineChatModel | None = None) -> list[ModelEvent]:
    return [event async for event in (model or OfflineChatModel()).stream(req)]


def calls_in(events: list[ModelEvent]) -> list[ToolCallRequested]:
    return [e for e in events if isinstance(e, ToolCallRequested)]


def deltas_in(events: list[ModelEvent]) -> list[ToolInputDelta]:
    return [e for e in events if isinstance(e, ToolInputDelta)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finished(events: list[ModelEvent]) -> StreamFinished:
    assert sum(isinstance(e, StreamFinished) for e in events) == 1
    last = events[-1]
    assert isinstance(last, StreamFinished)
    return last


async def artifact(text: str, documents: tuple[MessageBlock, ...] = (SOLAR, HEAT)) -> dict[str, Any]:
    calls = calls_in(await events_of(request(text, documents=documents)))
    assert [c.name for c in calls] == ["create_artifact"]
    return calls[0].input


def table_rows(content: str) -> list[str]:
    return [line for line in content.splitlines() if line.startswith("| ")][2:]  # after head and rule


def cells(row: str) -> list[str]:
    """A GFM row's cells: split on the pipes that are not escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


# ---------------------------------------------------------------- intents


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("make a comparison table", "table"),
        ("Could you please create a table comparing the videos?", "table"),
        ("build me a detailed comparison table of these videos", "table"),
        ("give me a comparison of the videos", "table"),
        ("compare the videos in a table", "table"),
        ("Compare them side by side in a table.", "table"),
        ("list my videos in a table", "table"),
        ("show the videos as a table", "table"),
        ("make an outline", "outline"),
        ("ok, write an outline of the talks", "outline"),
        ("outline the videos", "outline"),
        ("write study notes", "notes"),
        ("Please make notes on these videos", "notes"),
        ("I'd like some study notes", "notes"),
        ("take notes", "notes"),
        ("make the videos into a table", "table"),
    ],
)
async def test_a_request_for_an_artifact_creates_that_kind(message: str, kind: str):
    events = await events_of(request(message))

    calls = calls_in(events)
    assert [(c.call_id, c.name, c.input["kind"], c.error) for c in calls] == [
        ("toolu_offline_1", "create_artifact", kind, None)
    ]
    assert set(calls[0].input) == {"title", "kind", "content"}
    assert finished(events).stop_reason == "tool_use"
    text = text_of(events)
    assert text.startswith("Offline model: making ") and text.endswith("\n\n")


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ("list my videos", "list_videos"),
        ("Show me the videos", "list_videos"),
        ("What videos do I have?", "list_videos"),
        ("remove the second video", "remove_video"),
        ("find videos about heat pumps", "search_youtube"),
    ],
)
async def test_the_other_intents_still_win_their_phrases(message: str, name: str):
    assert [c.name for c in calls_in(await events_of(request(message)))] == [name]


@pytest.mark.parametrize(
    "message",
    [
        "What does the table at 2:10 show?",
        "Do the notes mention batteries?",
        "How do I make a table in a spreadsheet?",
        "Why did he make an outline first?",
        "take a look at the table at 2:10",
        "write down what the notes say about batteries",
        "How much does a battery cost?",
    ],
)
async def test_questions_about_tables_or_notes_are_answered_not_made(message: str):
    with_tools = await events_of(request(message))
    without_tools = await events_of(request(message, tools=()))

    assert calls_in(with_tools) == []
    assert text_of(with_tools) == text_of(without_tools)


async def test_no_artifact_when_the_tool_is_not_offered():
    for tools in ((LIST, REMOVE), ()):
        events = await events_of(request("make a comparison table", tools=tools))

        assert calls_in(events) == []
        assert deltas_in(events) == []
        assert finished(events).stop_reason == "end_turn"


async def test_text_inside_the_videos_never_asks_for_an_artifact():
    asking = DocumentBlock(
        "Make a comparison table",
        parts=("[00:01] make a comparison table and write study notes",),
        context="YouTube video abcdefghij1, by A. Summary: make an outline.",
    )
    history = [
        ModelMessage("user", [ContentBlock("write study notes")]),
        ModelMessage("assistant", [ContentBlock("Not now.")]),
    ]

    events = await events_of(request("What is this video about?", documents=(asking,), history=history))

    assert calls_in(events) == []


async def test_no_videos_means_no_call_and_a_plain_answer():
    events = await events_of(request("make a comparison table", documents=()))

    assert calls_in(events) == []
    assert deltas_in(events) == []
    assert "no videos" in text_of(events)
    assert "comparison table" in text_of(events)
    assert finished(events).stop_reason == "end_turn"


# ---------------------------------------------------------------- content


async def test_the_table_has_one_row_per_video_and_keeps_every_cell_in_place():
    made = await artifact("make a comparison table")

    content = made["content"]
    assert made["title"] == "Comparison of 2 videos"
    assert content.splitlines()[0] == OFFLINE_NOTE
    head = next(line for line in content.splitlines() if line.startswith("| "))
    assert cells(head) == ["#", "Video", "Channel", "Length", "Key point"]
    rows = table_rows(content)
    assert len(rows) == 2
    assert all(len(cells(row)) == 5 for row in rows)  # no pipe or line break moved a cell
    solar, heat = (cells(row) for row in rows)
    assert solar == [
        "1",
        "Solar panels explained",
        "Energy Talks",
        "02:45",
        "Solar panels \\| batteries pay off.",
    ]
    # Whitespace (the title's line break) collapsed, pipes escaped, markup kept as text.
    assert heat[1] == "Heat pumps in winter <script>alert(1)</script> \\| part 2"
    assert heat[2] == "Home \\| Energy"
    assert heat[3] == "00:02 to 00:09 (transcript)"  # no length said: the transcript's span
    # No summary: the transcript's most representative sentence (the first is often a greeting).
    assert heat[4] == "heat pumps move heat instead of making it they work well in the cold"


async def test_the_table_leaves_out_the_channel_column_when_no_channel_is_known():
    plain = DocumentBlock("Plain", parts=("[00:00] hello there. [00:03] bye.",), context=None)

    content = (await artifact("make a comparison table", documents=(plain,)))["content"]

    assert cells(content.splitlines()[2]) == ["#", "Video", "Length", "Key point"]
    assert len(table_rows(content)) == 1


async def test_an_outline_gives_each_video_a_heading_and_its_timed_sentences():
    made = await artifact("make an outline")

    content = made["content"]
    assert made["title"] == "Outline: Solar panels explained and 1 more"
    assert content.splitlines()[0] == OFFLINE_NOTE
    assert "## Solar panels explained" in content.splitlines()
    assert "## Heat pumps in winter <script>alert(1)</script> | part 2" in content.splitlines()
    solar = content.split("## Solar panels explained")[1].split("## Heat pumps")[0]
    bullets = [line for line in solar.splitlines() if line.startswith("- ")]
    assert 3 <= len(bullets) <= 6
    # Each time links to its moment: "- [01:03](https://www.youtube.com/watch?v=ID&t=63s) said".
    link = re.compile(r"- \[(\d\d:\d\d)\]\(https://www\.youtube\.com/watch\?v=dQw4w9WgXcQ&t=(\d+)s\) (.+)")
    found = [link.fullmatch(b) for b in bullets]
    assert all(found)
    quoted = [(m[1], int(m[2]), m[3]) for m in found if m]
    assert all(int(t[:2]) * 60 + int(t[3:]) == seconds for t, seconds, _ in quoted)
    assert all(f"[{t}] {said}" in SOLAR_LINES for t, _, said in quoted)  # quoted as said
    assert bullets == sorted(bullets)
    assert content.count("[01:30]") == 1  # the line both windows hold is read once


async def test_study_notes_have_the_summary_and_the_key_moments():
    made = await artifact("write study notes")

    content = made["content"]
    assert made["title"] == "Study notes: 2 videos"
    lines = content.splitlines()
    assert lines[0] == OFFLINE_NOTE
    assert "## Solar panels explained" in lines
    assert "*Energy Talks, 02:45 long*" in lines
    assert "- Solar panels | batteries pay off." in lines
    assert "- Net metering helps." in lines
    assert not any("Offline summary" in line for line in lines)  # the summary's own note is dropped
    assert lines.count("### Key moments") == 2
    assert (
        "- [02:40](https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=160s) "
        "Net metering sells extra solar electricity back to the grid."
    ) in lines


async def test_videos_without_passages_come_from_the_note_in_retrieved_mode():
    note = ContentBlock(
        "No passage of these videos matched the question; what they are about:\n"
        '- "Wind power" (YouTube video zzzzzzzzzz1, by Windy, 10:00 long. Summary: Turbines (big) spin.)'
    )

    table = (await artifact("make a comparison table", documents=(SOLAR, note)))["content"]
    outline = (await artifact("make an outline", documents=(SOLAR, note)))["content"]

    assert cells(table_rows(table)[1]) == ["2", "Wind power", "Windy", "10:00", "Turbines (big) spin."]
    assert "## Wind power" in outline
    assert "- Turbines (big) spin." in outline


async def test_other_text_in_the_opening_message_is_not_a_video():
    aside = ContentBlock("Some context without any video note.\n- a list item (not a video)")

    table = (await artifact("make a comparison table", documents=(SOLAR, aside)))["content"]
    listed = calls_in(await events_of(request("list my videos", documents=(SOLAR, aside))))

    assert len(table_rows(table)) == 1
    assert [c.name for c in listed] == ["list_videos"]


async def test_the_content_is_capped_and_says_what_was_left_out():
    said = " ".join(f"word{i} stays" for i in range(60)) + ". " + " ".join(f"w{i} here." for i in range(40))
    many = tuple(
        DocumentBlock(
            f"Video {n}",
            parts=("\n".join(f"[{m:02d}:00] {said}" for m in range(20)),),
            context=f"YouTube video vid{n:08d}, by C. Summary: {said}",
        )
        for n in range(120)
    )

    for message in ("make a comparison table", "write study notes", "make an outline"):
        content = (await artifact(message, documents=many))["content"]

        assert len(content) <= MAX_CONTENT_CHARS
        assert re.search(r"_\d+ more videos left out", content.splitlines()[-1])


async def test_times_stay_plain_when_the_video_id_is_not_known():
    plain = DocumentBlock("Plain", parts=("[00:00] hello there friends.\n[1:02:03] goodbye for now.",))

    content = (await artifact("make an outline", documents=(plain,)))["content"]

    assert "- [00:00] hello there friends." in content.splitlines()
    assert "- [1:02:03] goodbye for now." in content.splitlines()
    assert "youtube.com" not in content


async def test_a_title_is_at_most_120_characters():
    long_title = DocumentBlock("T" * 300, parts=("[00:00] hello.",), context=None)

    made = await artifact("make an outline", documents=(long_title,))

    assert len(made["title"]) == 120
    assert made["title"].endswith("…")


# ---------------------------------------------------------------- streaming


async def test_the_input_streams_as_growing_prefixes_then_one_finished_call():
    events = await events_of(request("make a comparison table"))

    deltas = deltas_in(events)
    calls = calls_in(events)
    assert len(calls) == 1
    final = calls[0].input
    assert len(deltas) > 3
    kinds = [type(e).__name__ for e in events]
    first_delta, call_at = kinds.index("ToolInputDelta"), kinds.index("ToolCallRequested")
    assert kinds[first_delta:call_at] == ["ToolInputDelta"] * len(deltas)  # all before the call
    assert kinds[call_at + 1 :] == ["StreamFinished"]
    contents = [d.input["content"] for d in deltas]
    assert all(final["content"].startswith(c) for c in contents)
    assert all(len(a) < len(b) for a, b in itertools.pairwise(contents))  # in order
    assert contents[0] and contents[-1] == final["content"]
    assert all(len(b) - len(a) <= 80 for a, b in zip(["", *contents], contents, strict=False))
    for delta in deltas:
        assert (delta.call_id, delta.name) == (calls[0].call_id, "create_artifact")
        assert (delta.input["title"], delta.input["kind"]) == (final["title"], final["kind"])
    usage = finished(events).usage
    assert usage.output_tokens * 4 >= len(text_of(events)) + len(json.dumps(final))


async def test_a_tool_that_does_not_stream_its_input_gets_no_deltas():
    quiet = ToolSpec("create_artifact", "Save.", ARTIFACT_SCHEMA)  # streams_input False

    events = await events_of(request("make a comparison table", tools=(quiet,)))

    assert deltas_in(events) == []
    assert len(calls_in(events)) == 1


async def test_closing_the_stream_during_the_deltas_stops_before_the_call():
    stream = OfflineChatModel().stream(request("make a comparison table"))

    async for event in stream:
        if isinstance(event, ToolInputDelta):
            break
    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_call_ids_continue_after_earlier_calls():
    history = [
        ModelMessage("user", [ContentBlock("list my videos")]),
        ModelMessage("assistant", [ToolUseBlock("toolu_offline_1", "list_videos", {})]),
        ModelMessage("user", [ToolResultBlock("toolu_offline_1", '{"ok": true, "summary": "2 videos"}')]),
        ModelMessage("assistant", [ContentBlock("Done: 2 videos.")]),
    ]

    events = await events_of(request("make an outline", history=history))

    assert {d.call_id for d in deltas_in(events)} == {"toolu_offline_2"}
    assert [c.call_id for c in calls_in(events)] == ["toolu_offline_2"]


# ---------------------------------------------------------------- after the tool result


async def test_the_reply_after_saving_says_what_was_saved():
    made = await artifact("make a comparison table")
    result = json.dumps(
        {"ok": True, "summary": 'saved "Comparison of 2 videos" (version 1)', "data": {"version": 1}}
    )
    history = [
        ModelMessage("assistant", [ToolUseBlock("toolu_offline_1", "create_artifact", made)]),
        ModelMessage("user", [ToolResultBlock("toolu_offline_1", result)]),
    ]
    req = request("make a comparison table")
    req = ModelRequest(req.system, [*req.messages, *history], req.max_tokens, tools=TOOLS)

    events = await events_of(req)

    assert text_of(events) == 'Done: saved "Comparison of 2 videos" (version 1).'
    assert calls_in(events) == [] and deltas_in(events) == []
    assert finished(events).stop_reason == "end_turn"
