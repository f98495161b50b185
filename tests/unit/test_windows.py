"""Transcript windows: overlapping runs of whole caption lines, ~60-90 s long, bounded in size."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ytresearch.windows import Window, timestamp, transcript_windows


def captions(
    count: int, *, every: float = 3.0, text: str = "line {i} says something"
) -> list[dict[str, Any]]:
    return [{"text": text.format(i=i), "start": i * every, "duration": every} for i in range(count)]


def lines_of(window: Window) -> list[str]:
    return window.text.split("\n")


def test_no_segments_make_no_windows() -> None:
    assert transcript_windows([]) == []
    assert transcript_windows([{"text": "  ", "start": 1.0, "duration": 2.0}]) == []


def test_a_short_transcript_is_one_window_with_timestamped_lines() -> None:
    segments = [
        {"text": "Hello there.", "start": 0.0, "duration": 2.5},
        {"text": "Solar panels\nmake electricity.", "start": 2.5, "duration": 3.0},
    ]

    windows = transcript_windows(segments)

    assert windows == [
        Window(seq=0, start=0.0, end=5.5, text="[00:00] Hello there.\n[00:02] Solar panels make electricity.")
    ]


def test_windows_last_a_minute_or_so_and_overlap_by_about_fifteen_seconds() -> None:
    windows = transcript_windows(captions(1200))  # an hour of 3-second lines

    assert [w.seq for w in windows] == list(range(len(windows)))
    for window in windows[:-1]:
        assert 60 <= window.end - window.start <= 90
    for before, after in itertools.pairwise(windows):
        assert 10 <= before.end - after.start <= 20
        shared = set(lines_of(before)) & set(lines_of(after))
        assert shared and lines_of(after)[: len(shared)] == lines_of(before)[-len(shared) :]
    assert windows[-1].end == 3600.0


def test_every_line_is_in_a_window_whole_and_in_order() -> None:
    segments = captions(500, text="caption number {i}, never cut in two")

    windows = transcript_windows(segments)

    seen = [line for w in windows for line in lines_of(w)]
    expected = [f"[{timestamp(s['start'])}] {s['text']}" for s in segments]
    assert list(dict.fromkeys(seen)) == expected


def test_no_window_is_longer_than_max_chars() -> None:
    segments = captions(300, every=1.0, text="{i} " + "word " * 30)

    windows = transcript_windows(segments, max_chars=600)

    assert len(windows) > 10
    assert all(len(w.text) <= 600 for w in windows)
    assert {line for w in windows for line in lines_of(w)} == {
        f"[{timestamp(s['start'])}] {s['text'].strip()}" for s in segments
    }


def test_a_line_longer_than_max_chars_is_a_window_of_its_own() -> None:
    long_line = "x" * 5000
    segments = [
        {"text": "before", "start": 0.0, "duration": 2.0},
        {"text": long_line, "start": 2.0, "duration": 2.0},
        {"text": "after", "start": 4.0, "duration": 2.0},
    ]

    windows = transcript_windows(segments, max_chars=2000)

    assert [lines_of(w) for w in windows] == [
        ["[00:00] before"],
        [f"[00:02] {long_line}"],
        ["[00:04] after"],
    ]


def test_a_long_silence_starts_a_fresh_window() -> None:
    segments = [*captions(10), {"text": "much later", "start": 600.0, "duration": 2.0}]

    windows = transcript_windows(segments)

    assert [w.text.count("\n") + 1 for w in windows] == [10, 1]
    assert windows[1].start == 600.0


def test_hours_are_shown_and_the_output_is_deterministic() -> None:
    segments = captions(4000)  # 3 h 20 min

    first, again = transcript_windows(segments), transcript_windows(list(segments))

    assert first == again
    assert lines_of(first[-1])[-1] == "[3:19:57] line 3999 says something"


def test_out_of_order_segments_are_taken_in_time_order() -> None:
    segments = [
        {"text": "second", "start": 5.0, "duration": 1.0},
        {"text": "first", "start": 1.0, "duration": 1.0},
    ]

    assert lines_of(transcript_windows(segments)[0]) == ["[00:01] first", "[00:05] second"]


def test_missing_durations_and_nul_characters_are_tolerated() -> None:
    windows = transcript_windows([{"text": "a\x00b", "start": 7}])

    assert windows == [Window(seq=0, start=7.0, end=7.0, text="[00:07] ab")]


@pytest.mark.parametrize("bad", [{"target_seconds": 10, "overlap_seconds": 10}, {"max_chars": 0}])
def test_impossible_sizes_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        transcript_windows(captions(3), **bad)


def test_timestamp_matches_the_context_format() -> None:
    assert [timestamp(s) for s in (0, 59.9, 61, 3599, 3600, 36_000)] == [
        "00:00",
        "00:59",
        "01:01",
        "59:59",
        "1:00:00",
        "10:00:00",
    ]


def test_a_question_is_searched_for_by_its_words_alone() -> None:
    from ytresearch.repository.windows import MAX_TERMS, search_terms, text_search_config

    assert search_terms('How do "solar" (panels) AND-OR NOT* make_electricity?\x00 Panels') == [
        "solar",
        "panels",
        "make",
        "electricity",
    ]
    assert search_terms("the how what") == []
    assert search_terms("नमस्ते दुनिया l'énergie") == ["नमस्ते", "दुनिया", "l", "énergie"]
    assert search_terms("x" * 10_000) == []
    assert len(search_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS
    assert [text_search_config(c) for c in ("en", "pt-BR", "es_419", "ZH-Hans", None, "")] == [
        "english",
        "portuguese",
        "spanish",
        "simple",
        "simple",
        "simple",
    ]
