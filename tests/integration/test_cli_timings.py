"""`ytr chat --timings` against the local system and the fake Claude: after the reply, one line on
stderr with the time to first text, the total and tokens/s, on every transport, and the same
figures as ``timings`` in ``--json`` (tokens: the API's output_tokens, else words)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.support.cli import System, local_system
from ytr.timings import count_tokens, timings_line
from ytresearch.config import Settings

ANSWER = "Silicon cells turn photons into current: the field at the junction pushes electrons one way. " * 2
FIRST_DELAY = 0.2  # the fake waits this long before the first delta: no text can come sooner
LINE = re.compile(
    r"^first text (?P<first>\d+) ms · total (?P<total>\d+\.\d\d) s · (?P<rate>\d+\.\d) tokens/s "
    r"\(transport (?P<transport>\w+)\)$"
)
UTF8 = {"PYTHONIOENCODING": "utf-8"}


@pytest.fixture
def system(settings: Settings, claude: Any, tmp_path: Path) -> Iterator[System]:
    with local_system(settings, tmp_path, chat_model=claude) as s:
        yield s


def new_session(system: System) -> str:
    return str(system.ytr_json("sessions", "create", "--title", "timings")["id"])


def answer(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(text=ANSWER, chunk_size=6, delay_first=FIRST_DELAY, delay_per_chunk=0.002))


@pytest.mark.parametrize("transport", ["sse", "ws", "poll", "sync"])
def test_the_figures_follow_the_reply_on_stderr(
    system: System, fake_claude: FakeAnthropic, transport: str
) -> None:
    sid = new_session(system)
    answer(fake_claude)
    result = system.ytr("chat", sid, "How do panels work?", "--transport", transport, "--timings", **UTF8)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"  # the answer alone on stdout
    match = LINE.match(result.stderr.splitlines()[-1])
    assert match is not None, result.stderr
    assert match["transport"] == transport
    first, total = int(match["first"]) / 1000, float(match["total"])
    assert FIRST_DELAY <= first <= total + 0.005  # the clock starts before the first request


@pytest.mark.parametrize("transport", ["sse", "ws", "poll", "sync"])
def test_json_carries_the_same_figures(system: System, fake_claude: FakeAnthropic, transport: str) -> None:
    sid = new_session(system)
    answer(fake_claude)
    result = system.ytr("--json", "chat", sid, "q", "--transport", transport, "--timings", **UTF8)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "complete" and document["text"] == ANSWER
    timings = document["timings"]
    assert timings["transport"] == transport
    if transport == "poll":  # polling sees no usage: the answer's words are counted
        assert (timings["tokens"], timings["tokens_counted"]) == (len(ANSWER.split()), "words")
    else:  # the API's output_tokens (the fake counts a token per 4 characters)
        assert (timings["tokens"], timings["tokens_counted"]) == (math.ceil(len(ANSWER) / 4), "output_tokens")
        assert document["usage"]["output_tokens"] == timings["tokens"]
    assert FIRST_DELAY <= timings["first_text_seconds"] <= timings["total_seconds"]
    rate = timings["tokens"] / timings["total_seconds"]
    # Both are rounded (seconds to 4 decimals, the rate to 1): compare within what that moves.
    assert timings["tokens_per_second"] == pytest.approx(rate, rel=0.02)
    assert result.stderr.splitlines()[-1] == timings_line(timings)


def test_without_the_flag_nothing_is_added(system: System, fake_claude: FakeAnthropic) -> None:
    sid = new_session(system)
    answer(fake_claude)
    result = system.ytr("--json", "chat", sid, "q")
    assert result.returncode == 0, result.stderr
    assert "timings" not in json.loads(result.stdout) and result.stderr == ""


def test_timings_time_one_reply_not_a_shell(system: System) -> None:
    result = system.ytr("chat", new_session(system), "--interactive", "--timings")
    assert result.returncode == 2 and result.stdout == ""
    assert "--timings" in result.stderr


def test_the_line_without_text_or_a_unicode_terminal() -> None:
    figures = {"transport": "ws", "first_text_seconds": None, "total_seconds": 0.5, "tokens_per_second": 0.0}
    assert timings_line(figures) == "first text none · total 0.50 s · 0.0 tokens/s (transport ws)"
    figures |= {"first_text_seconds": 0.4123, "total_seconds": 2.3051, "tokens_per_second": 43.2}
    assert (
        timings_line(figures, unicode=False)
        == "first text 412 ms - total 2.31 s - 43.2 tokens/s (transport ws)"
    )
    assert count_tokens("three little words", {"output_tokens": 7}) == (7, "output_tokens")
    assert count_tokens("three little words", None) == (3, "words")
    assert count_tokens("three little words", {"output_tokens": None}) == (3, "words")
