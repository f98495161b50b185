"""Resume (issue 5): from reconnecting with ``Last-Event-ID`` (after dropping the stream mid-reply)
to the first replayed event, on the process that runs the reply and on a second process.

Two ``python -m streaming_service.serve`` processes (A and B) share one PostgreSQL (SQLite when the
server binaries are missing: both processes open one file; say so when reading the figures), with
production polling (``YTR_STREAM_POLL_SECONDS=0.1``). The fake Anthropic server
(bench/fake_upstream.py) streams ``--chunks`` deltas at ``--rate`` per second.

For each request: POST to A, GET from A, read ``--read`` token events and drop the connection;
then four reconnects in rotating order, each followed by reading a few events and dropping again:

* same process (A) and other process (B), after ``--gap`` seconds away: the missing events are in
  A's memory and in the event log, so this is the replay path;
* same and other with no gap: the first event after reconnecting is usually a live one, which B
  only sees through the event log (write-behind every 50 ms, polled every 100 ms).

Each reconnect checks that the first event is exactly ``Last-Event-ID + 1``. Baseline, in the same
run: the first SSE frame of a bare Starlette endpoint (bench/bare_relay.py ``/hello``), the floor
of an SSE request on this machine. Target: < 100 ms.

Run: .venv/bin/python -m bench.resume [--requests 50] [--gap 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

import httpx

from bench.common import (
    async_client,
    bare_relay,
    database,
    fake_upstream,
    fmt,
    log_dir,
    machine,
    percentile,
    postgres_available,
    service_env_for,
    table,
    user_and_sessions,
)
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.processes import ServiceProcess
from ytr.sse import SSEParser

TERMINAL = {"complete", "error", "cancelled"}


async def read_tokens(
    client: httpx.AsyncClient, url: str, tokens: int, last_id: int | None
) -> tuple[int, float, int | None, bool]:
    """GET ``url`` (with Last-Event-ID when given), read until ``tokens`` token events, drop.
    Returns (last event id, seconds to the first event, id of the first event, ended)."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    start = time.monotonic()
    first_after: float | None = None
    first_id: int | None = None
    seen = 0
    last = last_id or 0
    async with client.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        parser = SSEParser()
        async for chunk in response.aiter_raw():
            for frame in parser.feed(chunk):
                if first_after is None:
                    first_after = time.monotonic() - start
                    first_id = int(frame.id) if frame.id else None
                if frame.id:
                    last = int(frame.id)
                if frame.event in TERMINAL:
                    return last, first_after, first_id, True
                if frame.event == "token":
                    seen += 1
                    if seen >= tokens:
                        return last, first_after, first_id, False
    return last, first_after or float("nan"), first_id, True


async def floor(client: httpx.AsyncClient, base: str) -> float:
    start = time.monotonic()
    async with client.stream("GET", base + "/hello") as response:
        parser = SSEParser()
        async for chunk in response.aiter_raw():
            if parser.feed(chunk):
                return time.monotonic() - start
    raise RuntimeError("no frame from /hello")


async def drive(args: argparse.Namespace, a: str, b: str, bare: str, key: str, sessions: list[str]) -> Any:
    samples: dict[str, list[float]] = {
        "floor": [],
        "same, replay": [],
        "other, replay": [],
        "same, live": [],
        "other, live": [],
    }
    wrong: dict[str, int] = dict.fromkeys(samples, 0)
    ended = 0
    plan = [
        ("same, replay", args.gap),
        ("other, replay", args.gap),
        ("same, live", 0.0),
        ("other, live", 0.0),
    ]
    async with async_client(20, headers={"X-API-Key": key}) as client:
        for i in range(args.warmup + args.requests):
            measured = i >= args.warmup
            started = await client.post(f"{a}/v1/sessions/{sessions[i]}/chat", json={"message": "q"})
            started.raise_for_status()
            url = started.json()["stream_url"]
            last, _, _, done = await read_tokens(client, a + url, args.read, None)
            rotation = plan[i % len(plan) :] + plan[: i % len(plan)]
            for name, gap in rotation:
                if done:
                    break
                await asyncio.sleep(gap)
                target = a if name.startswith("same") else b
                new_last, first, first_id, done = await read_tokens(client, target + url, 2, last)
                if measured:
                    samples[name].append(first)
                    if first_id != last + 1:
                        wrong[name] += 1
                last = new_last
            if done:
                ended += int(measured)
            if measured:
                samples["floor"].append(await floor(client, bare))
            # Let the reply finish on its own: a client leaving does not stop it (by design).
    return samples, wrong, ended


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50, help="replies; each gives one sample per series")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds away before a replay reconnect")
    parser.add_argument("--read", type=int, default=3, help="token events read before the first drop")
    parser.add_argument("--chunks", type=int, default=150, help="deltas per reply (8 characters each)")
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second")
    parser.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    args = parser.parse_args()

    print(f"machine: {machine()}")
    if args.db == "postgres" and not postgres_available():
        print("(PostgreSQL not installed: both processes share one SQLite file instead)")
        args.db = "sqlite"
    logs = log_dir("resume")
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.db, tmp) as (url, _db_pid),
        fake_upstream(args.chunks, 8, args.rate, logs=logs) as (upstream, _fake_pid),
        bare_relay(upstream, DEFAULT_API_KEY, logs=logs) as (bare_base, _bare_pid),
    ):
        key, sessions = user_and_sessions(url, args.requests + args.warmup)
        env = service_env_for(url, upstream, DEFAULT_API_KEY, YTR_MODEL="claude-sonnet-4-6")
        procs = [ServiceProcess(env, log_dir=logs) for _ in range(2)]
        for p in procs:
            p.start(wait=False)
        try:
            for p in procs:
                p.wait_healthy()
            samples, wrong, ended = asyncio.run(
                drive(args, procs[0].base_url, procs[1].base_url, bare_base, key, sessions)
            )
        finally:
            for p in procs:
                p.stop()

    base50 = percentile(samples["floor"], 50)
    rows = []
    for name, values in samples.items():
        label = "bare SSE floor (baseline)" if name == "floor" else name
        rows.append(
            [
                label,
                len(values),
                fmt(percentile(values, 50) * 1000),
                fmt(percentile(values, 99) * 1000),
                f"{percentile(values, 50) / base50:.1f}x",
                wrong.get(name, 0) if name != "floor" else "-",
            ]
        )
    print(
        table(
            f"Reconnect with Last-Event-ID -> first event (ms); {args.db}; replay: after "
            f"{args.gap * 1000:.0f} ms away, live: reconnect at once",
            ["series", "samples", "p50", "p99", "p50 vs floor", "first id != Last-Event-ID + 1"],
            rows,
        )
    )
    if ended:
        print(f"({ended} replies ended before all four reconnects; make --chunks larger)")
    print("target: replay < 100 ms on either process")
    print(f"server logs: {logs}")


if __name__ == "__main__":
    main()
