"""The offline model cites what it quotes: each quote of the videos' documents comes just after a
citation naming the document and the one transcript window that holds the quoted lines, and the
citation quotes those lines as the window has them, so the chat keeps it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from ytresearch.llm.offline import OfflineChatModel
from ytresearch.llm.offline_quotes import CHAT_NOTE, NO_MATCH_ANSWER
from ytresearch.ports import (
    CitationDelta,
    ContentBlock,
    DocumentBlock,
    MessageBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
)
from ytresearch.services.sources import Source, cite
from ytresearch.windows import Window, transcript_windows

pytestmark = pytest.mark.anyio

SOLAR_ID = "solarvideo1"
BATTERY_ID = "batteryvid2"
LONG_ID = "longvideo03"


def captions(lines: dict[int, str], count: int, *, every: float = 10) -> list[dict[str, object]]:
    """``count`` caption segments ``every`` seconds apart; ``lines`` says what some of them say,
    the rest is filler no question asks about."""
    return [
        {"text": lines.get(n, f"filler remark {n}"), "start": n * every, "duration": every}
        for n in range(count)
    ]


# Ten-second lines: windows of eight lines, consecutive ones sharing one line ([01:10] line 7).
SOLAR_WINDOWS = transcript_windows(
    captions(
        {
            3: "silicon cells turn sunlight into electricity",
            6: "a microinverter sits behind every panel",
            7: "the inverter converts direct current",
            8: "an optimizer tracks each panel separately",
        },
        15,
    )
)
BATTERY_WINDOWS = transcript_windows(
    captions(
        {2: "the battery stores twelve kilowatt hours", 10: "the battery warranty lasts ten years"},
        15,
    )
)
# A long video (six windows) for retrieved mode: only some of its windows are sent.
LONG_WINDOWS = transcript_windows(
    captions(
        {
            9: "geothermal wells reach deep hot rock",
            21: "the heat exchanger loop runs underground",
            30: "drilling costs dominate geothermal projects",
        },
        40,
    )
)


def document(title: str, video_id: str, windows: Sequence[Window]) -> DocumentBlock:
    return DocumentBlock(
        title,
        parts=tuple(w.text for w in windows),
        context=f"YouTube video {video_id}, by Energy Talks, 05:00 long. Summary: about {title.lower()}.",
    )


def chat(question: str, *opening: MessageBlock) -> ModelRequest:
    """The chat's shape with no history: the documents (and any note) then the question."""
    return ModelRequest(
        system=[SystemBlock("Answer from the videos and cite them.")],
        messages=[ModelMessage("user", [*opening, ContentBlock(question)])],
        max_tokens=1000,
    )


async def events_of(request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in OfflineChatModel().stream(request)]


def text_of(events: Sequence[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def cited_lines(events: Sequence[ModelEvent]) -> list[tuple[CitationDelta, str]]:
    """Each citation with the answer line that follows it (the text up to the next newline)."""
    pairs: list[tuple[CitationDelta, str]] = []
    for i, event in enumerate(events):
        if isinstance(event, CitationDelta):
            following = ""
            for later in events[i + 1 :]:
                if not isinstance(later, TextDelta) or "\n" in following:
                    break
                following += later.text
            pairs.append((event, following.split("\n")[0]))
    return pairs


def quoting(pairs: Sequence[tuple[CitationDelta, str]], words: str) -> tuple[CitationDelta, str]:
    """The citation and answer line of the one quote that says ``words``."""
    found = [pair for pair in pairs if words in pair[1]]
    assert len(found) == 1, pairs
    return found[0]


def check_quote(citation: CitationDelta, line: str, documents: Sequence[DocumentBlock]) -> None:
    """The answer line names the cited video and its first line's time, quotes exactly the cited
    lines, and the cited lines are whole lines of the one part the citation names."""
    assert citation.end_part == citation.start_part + 1
    cited = documents[citation.document_index]
    part = cited.parts[citation.start_part]
    assert citation.cited_text in part
    quoted = citation.cited_text.splitlines()
    assert all(q in part.splitlines() for q in quoted)
    stamp = re.match(r"\[([\d:]+)\]", quoted[0])
    assert stamp is not None
    said = " ".join(re.sub(r"^\[[\d:]+\] ", "", q) for q in quoted)
    assert line == f'- {cited.title} [{stamp[1]}]: "{said}"'


async def test_two_documents_quotes_cite_the_video_and_window_they_come_from():
    documents = [
        document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS),
        document("Home battery review", BATTERY_ID, BATTERY_WINDOWS),
    ]

    events = await events_of(chat("How long is the battery warranty?", *documents))

    pairs = cited_lines(events)
    assert text_of(events).startswith(CHAT_NOTE)
    assert pairs, text_of(events)
    warranty, line = quoting(pairs, "warranty")
    assert (warranty.document_index, warranty.start_part, warranty.end_part) == (1, 1, 2)  # in window 1 only
    assert line == '- Home battery review [01:40]: "the battery warranty lasts ten years"'
    for citation, quoted in pairs:
        check_quote(citation, quoted, documents)


async def test_each_quote_comes_from_one_video_and_names_it():
    documents = [
        document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS),
        document("Home battery review", BATTERY_ID, BATTERY_WINDOWS),
    ]

    events = await events_of(chat("What does the battery store, and how do cells turn sunlight?", *documents))

    pairs = cited_lines(events)
    assert {c.document_index for c, _ in pairs} == {0, 1}
    for citation, quoted in pairs:
        check_quote(citation, quoted, documents)
    lines = [q for _, q in pairs]
    assert '- Solar panels explained [00:30]: "silicon cells turn sunlight into electricity"' in lines
    assert '- Home battery review [00:20]: "the battery stores twelve kilowatt hours"' in lines


async def test_a_citation_comes_right_before_the_text_it_supports():
    documents = [document("Home battery review", BATTERY_ID, BATTERY_WINDOWS)]

    events = await events_of(chat("How long is the battery warranty?", *documents))

    bullets = [line for line in text_of(events).splitlines() if line.startswith("- ")]
    citations = [i for i, e in enumerate(events) if isinstance(e, CitationDelta)]
    assert len(citations) == len(bullets) >= 1
    for i in citations:
        before, after = events[i - 1], events[i + 1]
        assert isinstance(before, TextDelta) and before.text.endswith("\n")  # at a line's start
        assert isinstance(after, TextDelta) and after.text == "- "


async def test_the_chat_keeps_every_citation_and_maps_it_to_the_quoted_moment():
    documents = [
        document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS),
        document("Home battery review", BATTERY_ID, BATTERY_WINDOWS),
    ]
    sources = [
        Source(SOLAR_ID, "Solar panels explained", tuple(SOLAR_WINDOWS)),
        Source(BATTERY_ID, "Home battery review", tuple(BATTERY_WINDOWS)),
    ]

    events = await events_of(chat("How long is the battery warranty?", *documents))

    kept = [cite(sources, e) for e in events if isinstance(e, CitationDelta)]
    assert kept and None not in kept
    warranty = next(c for c in kept if c is not None and "warranty" in c["quote"])
    # The link opens at the quoted line (01:40), the window's end closes the range.
    assert (warranty["video_id"], warranty["start"], warranty["end"]) == (BATTERY_ID, 100.0, 150.0)
    assert warranty["quote"] == "the battery warranty lasts ten years"  # the words, without the time


async def test_a_line_two_windows_share_is_cited_from_one_window_that_holds_it():
    documents = [document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS)]
    assert "[01:10] the inverter converts direct current" in SOLAR_WINDOWS[0].text
    assert "[01:10] the inverter converts direct current" in SOLAR_WINDOWS[1].text

    events = await events_of(chat("What converts direct current?", *documents))

    pairs = cited_lines(events)
    assert pairs[0][0] == CitationDelta(0, 0, 1, "[01:10] the inverter converts direct current")
    assert text_of(events).count("the inverter converts direct current") == 1  # quoted once


async def test_lines_across_a_window_edge_are_quoted_from_one_window_at_a_time():
    # Line 6 is only in window 0, line 8 only in window 1 (line 7 is shared): no window holds all three.
    documents = [document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS)]

    events = await events_of(chat("microinverter optimizer", *documents))

    pairs = cited_lines(events)
    text = text_of(events)
    assert "a microinverter sits behind every panel" in text
    assert "an optimizer tracks each panel separately" in text
    assert [c.start_part for c, _ in pairs] == [0, 1]
    for citation, quoted in pairs:
        check_quote(citation, quoted, documents)


async def test_retrieved_windows_are_cited_by_their_place_in_the_document():
    # Retrieved mode: the long video's windows 1 and 4 only, the battery video's window 0, and a
    # note on a video with no passage.
    sent = [LONG_WINDOWS[1], LONG_WINDOWS[4]]
    assert "drilling costs" in LONG_WINDOWS[4].text and "drilling costs" not in LONG_WINDOWS[3].text
    documents = [
        document("Geothermal energy", LONG_ID, sent),
        document("Home battery review", BATTERY_ID, BATTERY_WINDOWS[:1]),
    ]
    note = ContentBlock(
        "No passage of these videos matched the question; what they are about:\n"
        f'- "Solar panels explained" (YouTube video {SOLAR_ID}, by Energy Talks. Summary: drilling.)'
    )

    events = await events_of(chat("What dominates drilling costs for geothermal?", *documents, note))

    pairs = cited_lines(events)
    drilling, line = quoting(pairs, "drilling")
    assert drilling == CitationDelta(0, 1, 2, "[05:00] drilling costs dominate geothermal projects")
    assert line == '- Geothermal energy [05:00]: "drilling costs dominate geothermal projects"'
    for citation, quoted in pairs:
        check_quote(citation, quoted, documents)
    assert "Solar panels explained" not in text_of(events)  # the note is not a transcript
    kept = cite([Source(LONG_ID, "Geothermal energy", tuple(sent))], drilling)
    assert kept is not None and kept["start"] == 300.0  # the quoted line's time, inside window 4
    assert LONG_WINDOWS[4].start <= kept["start"] <= LONG_WINDOWS[4].end


async def test_retrieved_neighbouring_windows_share_their_edge_line_once():
    sent = LONG_WINDOWS[2:4]  # windows 2 and 3 share line 21
    documents = [document("Geothermal energy", LONG_ID, sent)]
    assert "heat exchanger" in sent[0].text and "heat exchanger" in sent[1].text

    events = await events_of(chat("Where does the heat exchanger loop run?", *documents))

    pairs = cited_lines(events)
    assert pairs[0][0] == CitationDelta(0, 0, 1, "[03:30] the heat exchanger loop runs underground")
    assert text_of(events).count("heat exchanger loop") == 1


async def test_hour_long_videos_are_quoted_with_hours():
    windows = transcript_windows(
        [{"text": "the keynote ends with a demo of the robot", "start": 3723, "duration": 4}]
    )
    documents = [document("Conference keynote", "keynote0004", windows)]

    events = await events_of(chat("What does the robot demo show?", *documents))

    pairs = cited_lines(events)
    assert pairs[0][0] == CitationDelta(0, 0, 1, "[1:02:03] the keynote ends with a demo of the robot")
    assert pairs[0][1] == '- Conference keynote [1:02:03]: "the keynote ends with a demo of the robot"'


async def test_no_match_gives_the_honest_answer_and_no_citation():
    documents = [document("Home battery review", BATTERY_ID, BATTERY_WINDOWS)]

    events = await events_of(chat("What about quantum zebras?", *documents))

    assert text_of(events) == NO_MATCH_ANSWER
    assert not any(isinstance(e, CitationDelta) for e in events)


async def test_what_is_said_about_a_video_is_never_quoted_or_cited():
    documents = [document("Home battery review", BATTERY_ID, BATTERY_WINDOWS)]

    # "Energy Talks" is the channel, in the document's context only.
    events = await events_of(chat("Which energy talks?", *documents))

    assert text_of(events) == NO_MATCH_ANSWER
    assert not any(isinstance(e, CitationDelta) for e in events)


async def test_citations_are_deterministic():
    documents = [
        document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS),
        document("Home battery review", BATTERY_ID, BATTERY_WINDOWS),
    ]
    request = chat("battery warranty and inverter", *documents)

    assert await events_of(request) == await events_of(request)


async def test_a_reply_cut_by_max_tokens_never_ends_on_a_citation():
    documents = [document("Home battery review", BATTERY_ID, BATTERY_WINDOWS)]
    messages = chat("battery warranty stores", *documents).messages
    whole = await events_of(ModelRequest(system=[], messages=messages, max_tokens=1000))
    needed = OfflineChatModel().count_tokens(text_of(whole))

    for max_tokens in range(1, needed):  # every cut, including one just before a quote
        events = await events_of(ModelRequest(system=[], messages=messages, max_tokens=max_tokens))

        finished = events[-1]
        assert isinstance(finished, StreamFinished) and finished.stop_reason == "max_tokens"
        follows = [events[i + 1] for i, e in enumerate(events) if isinstance(e, CitationDelta)]
        assert all(isinstance(e, TextDelta) for e in follows), max_tokens  # its text fits, or no citation


async def test_documents_in_a_later_message_are_counted_in_order():
    first = document("Solar panels explained", SOLAR_ID, SOLAR_WINDOWS)
    later = document("Home battery review", BATTERY_ID, BATTERY_WINDOWS)
    request = ModelRequest(
        system=[],
        messages=[
            ModelMessage("user", [first, ContentBlock("What do silicon cells do?")]),
            ModelMessage("assistant", [ContentBlock("They turn sunlight into electricity.")]),
            ModelMessage("user", [later, ContentBlock("How long is the battery warranty?")]),
        ],
        max_tokens=1000,
    )

    events = await events_of(request)

    pairs = cited_lines(events)
    warranty, line = quoting(pairs, "warranty")
    assert warranty.document_index == 1
    assert line == '- Home battery review [01:40]: "the battery warranty lasts ten years"'
