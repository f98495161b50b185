"""The transport benchmark's parts (bench/protocols.py, bench/protocol_kit/): the byte-counting,
connection-cutting proxy; a reply's text, its cut half-way and its end; the lines-of-code count and
the pieces it lists (a renamed route or client function must break it loudly, not count zero); the
report. No timings are asserted. The whole benchmark in ``--quick`` mode is the last test."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.protocol_kit import loc
from bench.protocol_kit.drivers import Conversation, Outcome, Tracker, ws_url
from bench.protocol_kit.proxy import CountingProxy, Traffic
from bench.protocol_kit.report import Level, Measured, report

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- the proxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


def test_the_proxy_counts_both_directions_and_connections() -> None:
    async def scenario() -> Traffic:
        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        proxy = await CountingProxy("127.0.0.1", upstream.sockets[0].getsockname()[1]).start()
        for message in (b"hello", b"second connection"):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(message)
            assert await reader.readexactly(len(message)) == message.upper()
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        traffic = proxy.traffic()
        await proxy.stop()
        upstream.close()
        return traffic

    traffic = asyncio.run(scenario())
    assert traffic == Traffic(up=22, down=22, connections=2) and traffic.total == 44
    assert Traffic(30, 40, 3) - Traffic(10, 15, 1) == Traffic(20, 25, 2)


def test_a_cut_drops_every_open_connection_on_both_sides() -> None:
    async def scenario() -> tuple[int, bytes, bytes]:
        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        proxy = await CountingProxy("127.0.0.1", upstream.sockets[0].getsockname()[1]).start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"before")
        before = await reader.readexactly(6)
        cut = proxy.cut_all()
        try:
            after = await asyncio.wait_for(reader.read(100), 5)  # ends at once: no echo comes back
        except ConnectionResetError:
            after = b""
        await proxy.stop()
        upstream.close()
        return cut, before, after

    cut, before, after = asyncio.run(scenario())
    assert (cut, before, after) == (1, b"BEFORE", b"")


# ---------------------------------------------------------------------- a reply's text


def conversation(expect: str, cuts: list[int]) -> Conversation:
    return Conversation("http://127.0.0.1:1", "key", "sid", expect, cut=lambda: cuts.append(1))


def test_the_cut_comes_once_half_the_reply_is_in_hand() -> None:
    cuts: list[int] = []
    tracker = Tracker("sse", conversation("abcdefgh", cuts))
    tracker.show("abc")
    assert cuts == [] and tracker.o.first_text is not None
    tracker.o.requests = 2
    tracker.show("d")  # 4 of 8 characters
    assert cuts == [1] and tracker.o.requests_at_cut == 2
    tracker.show("e")  # received before the cut (the same read): not text after it
    assert cuts == [1] and tracker.o.blind is None  # and cut once
    tracker.o.requests = 3  # the way back: a new request
    tracker.show("f")
    assert tracker.o.blind is not None
    outcome = tracker.end("abcdefgh")
    assert outcome.ok and outcome.text == "abcdefgh" and outcome.rest_after is not None


def test_a_reply_whole_at_once_is_not_cut_and_a_wrong_one_is_an_error() -> None:
    cuts: list[int] = []
    whole = Tracker("poll", conversation("abcdefgh", cuts)).end("abcdefgh")
    assert whole.ok and whole.cut_at is None and cuts == []  # nothing was left to cut
    short = Tracker("sse", conversation("abcdefgh", cuts)).end("abc")
    assert not short.ok and short.error == "wrong text (3 of 8 characters)"


def test_events_and_frames_end_the_reply_at_their_terminal_one() -> None:
    tracker = Tracker("ws", conversation("hi there", []))
    assert tracker.apply("stage", {"stage": "accepted"}) is False
    assert tracker.apply("token", {"text": "hi "}) is False
    assert tracker.apply("complete", {"text": "hi there"}) is True and tracker.o.ok
    failed = Tracker("ws", conversation("x", []))
    assert failed.apply("error", {"code": "UPSTREAM_ERROR"}) is True
    assert failed.o.error == "error UPSTREAM_ERROR" and not failed.o.ok
    assert ws_url("http://127.0.0.1:8000", "s1") == "ws://127.0.0.1:8000/v1/sessions/s1/ws"


# ---------------------------------------------------------------------- lines of code


def test_lines_of_code_leave_out_blanks_comments_and_docstrings(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        '"""Module docstring\nover two lines."""\n'
        "\n"
        "import os  # a comment after code counts\n"
        "# a comment alone does not\n"
        "\n"
        "@staticmethod\n"
        "def f(\n"
        "    a: int,\n"
        ") -> int:\n"
        '    """Docstring."""\n'
        "    return a\n"
        "\n"
        "class C:\n"
        "    def g(self) -> str:\n"
        '        return """not a docstring:\n'
        'a string"""\n'
    )
    assert loc.count(["m.py"], tmp_path) == 10
    assert loc.count(["m.py::f"], tmp_path) == 5  # with its decorator, without its docstring
    assert loc.count(["m.py::C.g"], tmp_path) == 3
    assert loc.count(["m.py::f", "m.py"], tmp_path) == 10  # a line counts once per path
    with pytest.raises(LookupError, match=r"C\.h: no h"):
        loc.count(["m.py::C.h"], tmp_path)


def test_every_listed_piece_of_every_path_is_in_the_code() -> None:
    specs = [
        spec
        for specs in (*loc.SERVER.values(), *loc.CLIENT_PATHS.values(), *loc.SHARED.values())
        for spec in specs
    ]
    for spec in specs:
        assert loc.lines_of(spec), spec  # raises LookupError when a piece was renamed or moved
    rows = {row[0]: row for row in loc.table_rows()}
    assert set(loc.SERVER) <= set(rows) and rows["sse-1step"][2] == "none"
    counts = [rows[name][1] for name in loc.SERVER]
    assert all(isinstance(lines, int) and lines > 0 for lines in counts), counts


# ---------------------------------------------------------------------- the report


def test_the_report_shows_each_transport_level_drop_and_path() -> None:
    import argparse

    args = argparse.Namespace(chunks=10, chunk_size=8, rate=50.0, first_delay=0.3, mem_streams=20)
    done = [Outcome("sse", first_text=0.31, total=0.5, requests=2) for _ in range(4)]
    m = Measured(
        levels={
            ("sse", 1): Level(
                outcomes=done, cpu=0.08, wall=2.0, traffic=Traffic(4096, 8192, 4), driver_cpu=0.04
            )
        },
        drops={
            "sse": [
                Outcome(
                    "sse", total=1.5, requests=3, cut_at=1.0, rest_after=1.02, requests_at_cut=2, blind=0.9
                )
            ]
        },
        memory={"sse": {"kb": 120.4, "fds": 2.0, "rss_mb": 160.0, "opened": 20.0}},
        idle_cpu_rate=0.002,
    )
    text = report(args, m, tokens=20)
    assert "| sse       | 1             | 4/4 | 310 / 310 / 310" in text
    # tokens/s, server CPU, KB, requests, connections and client CPU per reply
    assert "| 40.0         | 20.0          | 1.0 / 2.0    | 2.0      | 1.0         | 10.0" in text
    # blind for 900 ms, whole 1.02 s after the cut, 1.0 s longer than the uncut p50 of 0.5 s
    assert "| sse       | 1/1        | 900                 | 1.02                 | 1.00 " in text
    assert "| sse       | 20   | 120" in text
    assert "shared, server: request manager" in text


# ---------------------------------------------------------------------- the whole benchmark


@pytest.mark.slow
def test_the_quick_run_measures_every_transport(tmp_path: Path) -> None:
    """``--quick``: tiny sizes, every phase (about a minute, most of it starting servers)."""
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.protocols", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    levels = {(lv["transport"], lv["conversations"]) for lv in figures["levels"]}
    names = {"sync", "poll", "poll-fast", "sse", "sse-1step", "ws"}
    assert levels == {(name, n) for name in names for n in (1, 3)}
    for lv in figures["levels"]:
        assert lv["replies"] and all(r["error"] is None for r in lv["replies"]), lv
        assert lv["up"] > 0 and lv["down"] > 0 and lv["connections"] >= len(lv["replies"])
    assert set(figures["drops"]) == names | {"ws-resume"}
    for name, outcomes in figures["drops"].items():
        assert all(o["error"] is None for o in outcomes), (name, outcomes)
    assert set(figures["memory"]) == {"sync", "poll", "sse", "sse-1step", "ws"}
    assert "Lines of code per path" in result.stdout
