"""Chat latency (issue 4): what our POST-then-SSE path adds to the model's time to first token, and
how fast an explicit cancel closes the upstream Claude stream.

Everything runs in this process, each on its own event loop: the fake Anthropic server
(tests/fakes/anthropic_server.py, a thread), the streaming app with the REST routes on uvicorn
(tests/support/server.py, a thread) built on the real Claude adapter pointed at the fake, and the
driver. One monotonic clock serves all three, so the fake's ``disconnects`` times compare directly
with the driver's.

First token: from sending ``POST /v1/sessions/{id}/chat`` to the first ``token`` event on
``GET /v1/streams/{id}``. The fake waits ``--delay-first`` seconds before its first delta, then
paces the rest. Baseline, interleaved request by request: the same fake and reply driven directly
with ``anthropic.AsyncAnthropic().messages.stream`` (the SDK's own time to first delta). We print
both minus the scripted delay, and ours minus the direct SDK. A third series sends a first delta
of 64 characters, which the TokenCoalescer flushes on size; since the coalescer sends every
reply's first delta at once, the two series of ours should agree (a gap would mean it holds again).

Cancel: from sending ``POST /v1/requests/{id}/cancel`` (after the first token arrived) to the
fake noticing its connection closed. Baseline: the SDK closing the stream itself.

Run: .venv/bin/python -m bench.chat_latency [--requests 100] [--cancels 30] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from typing import Any

import anthropic
import httpx

from bench.common import (
    database,
    fmt,
    lifted_limits,
    machine,
    percentile,
    postgres_available,
    quiet_metrics,
    table,
)
from local_run.app import create_local_app
from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply
from tests.support.server import serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytr.sse import SSEParser
from ytresearch.bootstrap import Container
from ytresearch.llm import AnthropicChatModel

MODEL = "claude-sonnet-4-6"


def small_first(args: argparse.Namespace) -> Reply:
    """A reply whose deltas look like Claude's (a few characters each)."""
    return Reply(
        text="abcdefgh" * args.chunks,
        chunk_size=8,
        delay_first=args.delay_first,
        delay_per_chunk=args.pace,
    )


def big_first(args: argparse.Namespace) -> Reply:
    """The same, but the first delta is 64 characters: the coalescer flushes it at once."""
    return Reply(
        chunks=("x" * 64,) + ("abcdefgh",) * (args.chunks - 1),
        delay_first=args.delay_first,
        delay_per_chunk=args.pace,
    )


def long_reply(args: argparse.Namespace) -> Reply:
    return Reply(text="abcdefgh" * 400, chunk_size=8, delay_first=args.delay_first, delay_per_chunk=0.01)


async def read_frames(response: httpx.Response, until: set[str], first: str | None = None) -> float | None:
    """Read SSE frames until one of ``until``; returns the time the first ``first`` frame arrived."""
    parser = SSEParser()
    seen: float | None = None
    async for chunk in response.aiter_raw():
        for frame in parser.feed(chunk):
            if seen is None and frame.event == first:
                seen = time.monotonic()
            if frame.event in until:
                return seen
    return seen


async def ours_first_token(client: httpx.AsyncClient, fake: FakeAnthropic, reply: Reply) -> float:
    created = await client.post("/v1/sessions")  # a fresh session: the same prompt every time
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    fake.enqueue(reply)
    start = time.monotonic()
    started = await client.post(f"/v1/sessions/{sid}/chat", json={"message": "What is this video about?"})
    started.raise_for_status()
    async with client.stream("GET", started.json()["stream_url"]) as response:
        first = await read_frames(response, {"complete", "error", "cancelled"}, first="token")
    assert first is not None, "no token event"
    return first - start


async def direct_first_token(sdk: anthropic.AsyncAnthropic, fake: FakeAnthropic, reply: Reply) -> float:
    fake.enqueue(reply)
    start = time.monotonic()
    first: float | None = None
    async with sdk.messages.stream(
        model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "What is this video about?"}]
    ) as stream:
        async for _text in stream.text_stream:
            if first is None:
                first = time.monotonic()
    assert first is not None
    return first - start


async def wait_disconnect(fake: FakeAnthropic, timeout: float = 10.0) -> float:
    if not await fake.wait_for_disconnect_async(timeout):
        raise TimeoutError("the fake never saw the upstream connection close")
    return fake.disconnects[-1][1]


async def ours_cancel(client: httpx.AsyncClient, fake: FakeAnthropic, reply: Reply) -> tuple[float, float]:
    """(cancel sent -> upstream closed, cancel round trip)."""
    created = await client.post("/v1/sessions")
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    fake.reset()
    fake.enqueue(reply)
    started = (await client.post(f"/v1/sessions/{sid}/chat", json={"message": "Tell me everything."})).json()
    async with client.stream("GET", started["stream_url"]) as response:
        await read_frames(response, {"token"})
        start = time.monotonic()
        answer = await client.post(f"/v1/requests/{started['request_id']}/cancel")
        answered = time.monotonic()
        assert answer.json()["status"] == "cancelled", answer.text
    closed = await wait_disconnect(fake)
    return closed - start, answered - start


async def direct_cancel(sdk: anthropic.AsyncAnthropic, fake: FakeAnthropic, reply: Reply) -> float:
    fake.reset()
    fake.enqueue(reply)
    async with sdk.messages.stream(
        model=MODEL, max_tokens=4096, messages=[{"role": "user", "content": "Tell me everything."}]
    ) as stream:
        async with contextlib.aclosing(stream.text_stream) as texts:  # finalised here, not by the GC
            async for _text in texts:
                break
        start = time.monotonic()
    # Leaving the block closed the response (and so the connection).
    closed = await wait_disconnect(fake)
    return closed - start


async def measure(base_url: str, key: str, fake: FakeAnthropic, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    sdk = anthropic.AsyncAnthropic(api_key=DEFAULT_API_KEY, base_url=fake.base_url, max_retries=0)
    out: dict[str, list[float]] = {
        k: [] for k in ("ours", "ours_big", "direct", "cancel", "cancel_rt", "dcancel")
    }
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for i in range(args.warmup + args.requests):  # interleaved, so noise hits all series alike
            ours = await ours_first_token(client, fake, small_first(args))
            ours_big = await ours_first_token(client, fake, big_first(args))
            direct = await direct_first_token(sdk, fake, small_first(args))
            if i >= args.warmup:
                out["ours"].append(ours)
                out["ours_big"].append(ours_big)
                out["direct"].append(direct)
        for i in range(args.warmup + args.cancels):
            cancel, round_trip = await ours_cancel(client, fake, long_reply(args))
            dcancel = await direct_cancel(sdk, fake, long_reply(args))
            if i >= args.warmup:
                out["cancel"].append(cancel)
                out["cancel_rt"].append(round_trip)
                out["dcancel"].append(dcancel)
    await sdk.close()
    return out


def run(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = test_settings(url, **lifted_limits())
    with FakeAnthropic() as fake:
        model = AnthropicChatModel(
            base_url=fake.base_url, api_key=DEFAULT_API_KEY, model=MODEL, max_retries=0
        )
        container = Container(settings, chat_model=model, metrics=quiet_metrics())
        key = make_user(container)[1]
        with serve(create_local_app(container)) as server:
            result = asyncio.run(measure(server.base_url, key, fake, args))
    print(f"  {label}: done", flush=True)
    return result


def ms(values: list[float], p: float, minus: float = 0.0) -> float:
    return (percentile(values, p) - minus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100, help="measured chats per database")
    parser.add_argument("--cancels", type=int, default=30, help="measured cancels per database")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--delay-first", type=float, default=0.05, help="the fake's delay before its first delta"
    )
    parser.add_argument("--pace", type=float, default=0.01, help="seconds between later deltas")
    parser.add_argument("--chunks", type=int, default=5, help="deltas per reply (8 characters each)")
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgres" in kinds and not postgres_available():
        print("(PostgreSQL skipped: server binaries not installed)")
        kinds.remove("postgres")
    results: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, database(kind, tmp) as (url, _pg):
            results[kind] = run(kind, url, args)

    x = args.delay_first
    rows = []
    for kind, r in results.items():
        for name, series in (
            ("direct SDK (baseline)", r["direct"]),
            ("ours, 8-char first delta", r["ours"]),
            ("ours, 64-char first delta", r["ours_big"]),
        ):
            rows.append(
                [
                    kind,
                    name,
                    fmt(ms(series, 50)),
                    fmt(ms(series, 99)),
                    fmt(ms(series, 50, x)),
                    fmt(ms(series, 99, x)),
                    fmt(ms(series, 50) - ms(r["direct"], 50)),
                    fmt(ms(series, 99) - ms(r["direct"], 99)),
                    f"{percentile(series, 50) / percentile(r['direct'], 50):.2f}x",
                ]
            )
    print(
        table(
            f"Time to first token, {args.requests} chats per database (ms); the fake waits "
            f"{x * 1000:.0f} ms before its first delta",
            [
                "db",
                "path",
                "TTFT p50",
                "TTFT p99",
                "minus delay p50",
                "minus delay p99",
                "added vs SDK p50",
                "added vs SDK p99",
                "p50 ratio",
            ],
            rows,
        )
    )
    rows = []
    for kind, r in results.items():
        rows.append(
            [
                kind,
                fmt(ms(r["dcancel"], 50)),
                fmt(ms(r["dcancel"], 99)),
                fmt(ms(r["cancel"], 50)),
                fmt(ms(r["cancel"], 99)),
                fmt(ms(r["cancel_rt"], 50)),
                fmt(ms(r["cancel_rt"], 99)),
                f"{percentile(r['cancel'], 50) / percentile(r['dcancel'], 50):.1f}x",
            ]
        )
    print(
        table(
            f"Cancel -> upstream connection closed, {args.cancels} cancels per database (ms)",
            [
                "db",
                "SDK close p50",
                "SDK close p99",
                "ours p50",
                "ours p99",
                "cancel round trip p50",
                "round trip p99",
                "p50 ratio",
            ],
            rows,
        )
    )
    print(
        "\n'added vs SDK' is a difference of percentiles (ours minus the direct SDK), not a per-request "
        "difference.\nThe 8-char series is what users see; the 64-char series should match it (the first "
        "delta is never held)."
    )


if __name__ == "__main__":
    main()
