"""Relay overhead (issue 5): our POST-then-SSE path against the least a relay can do, at 1, 100 and
500 concurrent streams of the same upstream.

Processes: the fake Anthropic server (bench/fake_upstream.py) streaming ``--chunks`` deltas of
8 characters at ``--rate`` deltas per second per stream; our service
(``python -m streaming_service.serve`` on SQLite or PostgreSQL, real Claude adapter pointed at the
fake); the baseline (bench/bare_relay.py: Starlette ``StreamingResponse`` yielding each
``messages.stream`` text delta as one SSE frame); and this driver (asyncio + one
``httpx.AsyncClient``, SSE parsed by hand).

At each level, ``N`` workers start at random moments within one reply's duration (so the streams
overlap without all connecting in the same millisecond) and each runs its level's ``--rounds``
replies back to back, so up to ``N`` streams are open at once (the mean and peak actually open are
printed). Each worker is its own user with its own sessions, one chat at a time: 100 streams are
at least 20 users under the default limit of 5 running requests per user. Ours:
``POST /v1/sessions/{id}/chat`` then ``GET /v1/streams/{id}``; baseline:
``GET /stream``. For ours, TTFT is also split into the POST, the GET up to its response headers,
and from those headers to the first token.

* TTFT: from the client's first request to the first token event it reads. Added TTFT is ours
  minus the baseline, as a difference of percentiles at the same level.
* CPU: utime + stime of the server process (and, on PostgreSQL, of the database's processes)
  from /proc before and after the level. Our path coalesces deltas into fewer, larger token
  events, so CPU is given per 1,000 upstream deltas relayed and per 1,000 SSE events sent.

Targets: added TTFT p50 < 5 ms and p99 < 20 ms at 100 streams; CPU per event within 1.5x of the
bare relay.

Run: .venv/bin/python -m bench.relay_overhead [--levels 1,100,500] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import (
    async_client,
    bare_relay,
    cpu_seconds,
    database,
    fake_upstream,
    fmt,
    log_dir,
    machine,
    percentile,
    raise_nofile,
    service_env_for,
    table,
    tree_cpu_seconds,
    users_and_sessions,
)
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.processes import ServiceProcess
from ytr.sse import SSEParser

TERMINAL = {"complete", "error", "cancelled"}


@dataclass
class Stream:
    ttft: float | None = None
    post: float | None = None  # ours: the POST's round trip
    headers: float | None = None  # from the start to the stream's response headers
    events: int = 0
    tokens: int = 0
    ok: bool = False
    error: str | None = None


@dataclass
class Level:
    streams: list[Stream] = field(default_factory=list)
    open_samples: list[int] = field(default_factory=list)
    cpu: float = 0.0
    db_cpu: float = 0.0
    wall: float = 0.0
    driver_cpu: float = 0.0
    fake_cpu: float = 0.0

    @property
    def done(self) -> list[Stream]:
        return [s for s in self.streams if s.ok]

    @property
    def ttfts(self) -> list[float]:
        return [s.ttft for s in self.done if s.ttft is not None]

    @property
    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.streams:
            if not s.ok:
                out[s.error or "?"] = out.get(s.error or "?", 0) + 1
        return out


async def read(response: httpx.Response, start: float, result: Stream, expect_chars: int | None) -> bool:
    """Count the frames of one SSE response; True when it ended with a ``complete`` event."""
    parser = SSEParser()
    complete = False
    async for chunk in response.aiter_raw():
        for frame in parser.feed(chunk):
            result.events += 1
            if frame.event == "token":
                result.tokens += 1
                if result.ttft is None:
                    result.ttft = time.monotonic() - start
            elif frame.event in TERMINAL:
                if frame.event != "complete":
                    code = json.loads(frame.data).get("code", "") if frame.event == "error" else ""
                    result.error = f"{frame.event} event {code}".strip()
                elif expect_chars is not None and len(json.loads(frame.data)["text"]) != expect_chars:
                    result.error = "complete with the wrong text"
                complete = True
    return complete


async def post_then_stream(
    client: httpx.AsyncClient,
    base: str,
    post_path: str,
    body: Any,
    expect_chars: int | None,
    headers: dict[str, str] | None = None,
) -> Stream:
    """The two-step shape: POST to start, then GET the ``stream_url`` it answers with. With
    ``expect_chars`` (ours) the stream must end with a ``complete`` event carrying that much text;
    without (the bare two-step relay, which sends no terminal event) it must carry a token."""
    result = Stream()
    start = time.monotonic()
    try:
        started = await client.post(base + post_path, json=body, headers=headers)
        result.post = time.monotonic() - start
        if started.status_code != 201:
            result.error = f"POST {started.status_code}"
            return result
        async with client.stream("GET", base + started.json()["stream_url"], headers=headers) as response:
            result.headers = time.monotonic() - start
            if response.status_code != 200:
                result.error = f"GET {response.status_code}"
                return result
            complete = await read(response, start, result, expect_chars)
        if expect_chars is None:
            result.error = None if result.tokens else "no token"
        elif not complete and result.error is None:
            result.error = "no terminal event"
        result.ok = result.error is None
    except httpx.HTTPError as exc:
        result.error = type(exc).__name__
    return result


def two_step_stream(client: httpx.AsyncClient, base: str) -> Any:
    return post_then_stream(client, base, "/start", {}, None)


def ours_stream(client: httpx.AsyncClient, base: str, key: str, sid: str, expect_chars: int) -> Any:
    return post_then_stream(
        client,
        base,
        f"/v1/sessions/{sid}/chat",
        {"message": "What is this about?"},
        expect_chars,
        headers={"X-API-Key": key},
    )


async def bare_stream(client: httpx.AsyncClient, base: str) -> Stream:
    result = Stream()
    start = time.monotonic()
    try:
        async with client.stream("GET", base + "/stream") as response:
            result.headers = time.monotonic() - start
            if response.status_code != 200:
                result.error = f"GET {response.status_code}"
                return result
            await read(response, start, result, None)
        result.ok = result.tokens > 0
        if not result.ok:
            result.error = "no token"
    except httpx.HTTPError as exc:
        result.error = type(exc).__name__
    return result


async def run_level(run_one: Any, n: int, rounds: int, spread: float, pids: dict[str, int | None]) -> Level:
    level = Level()
    running = 0

    async def worker(index: int) -> None:
        nonlocal running
        await asyncio.sleep(random.uniform(0, spread) if n > 1 else 0)
        for _ in range(rounds):
            running += 1
            try:
                level.streams.append(await run_one(index))
            finally:
                running -= 1

    async def sample_open() -> None:
        while True:
            await asyncio.sleep(0.1)
            level.open_samples.append(running)

    def snapshot() -> tuple[float, float, float, float]:
        db = pids.get("db")
        return (
            cpu_seconds(pids["server"] or 0),
            tree_cpu_seconds(db) if db else 0.0,
            time.process_time(),
            cpu_seconds(pids["fake"] or 0),
        )

    before, t0 = snapshot(), time.monotonic()
    sampler = asyncio.create_task(sample_open())
    await asyncio.gather(*(worker(i) for i in range(n)))
    level.wall = time.monotonic() - t0
    sampler.cancel()
    await asyncio.sleep(0.3)  # our write-behind flushes the last batch just after the end
    after = snapshot()
    level.cpu, level.db_cpu = after[0] - before[0], after[1] - before[1]
    level.driver_cpu, level.fake_cpu = after[2] - before[2], after[3] - before[3]
    return level


async def drive(
    args: argparse.Namespace, ours: dict[str, Any], bare: dict[str, Any]
) -> dict[int, dict[str, Level]]:
    levels = [int(x) for x in args.levels.split(",")]
    rounds_by_level = rounds_for(args)
    duration = args.chunks / args.rate
    expect = args.chunks * 8
    # Worker i is user i, with sessions of its own: a user runs one chat at a time, as people do
    # (and as the default limit of 5 running requests per user requires of 100 streams).
    users = [(key, iter(sessions)) for key, sessions in ours["users"]]
    results: dict[int, dict[str, Level]] = {}
    async with async_client(max(levels) * 2) as client:

        def ours_one(index: int) -> Any:
            key, sessions = users[index]
            return ours_stream(client, ours["base"], key, next(sessions), expect)

        # Warm up both (imports, SDK clients, connection pools).
        await asyncio.gather(*(ours_one(i) for i in range(3)))
        await asyncio.gather(*(bare_stream(client, bare["base"]) for _ in range(3)))
        await asyncio.gather(*(two_step_stream(client, bare["base"]) for _ in range(3)))
        for n in levels:
            rounds = rounds_by_level[n]
            print(f"  {n} concurrent streams x {rounds} replies ...", flush=True)
            b = await run_level(
                lambda _index: bare_stream(client, bare["base"]),
                n,
                rounds,
                duration,
                {"server": bare["pid"], "fake": bare["fake"]},
            )
            t = await run_level(
                lambda _index: two_step_stream(client, bare["base"]),
                n,
                rounds,
                duration,
                {"server": bare["pid"], "fake": bare["fake"]},
            )
            o = await run_level(
                ours_one,
                n,
                rounds,
                duration,
                {"server": ours["pid"], "fake": ours["fake"], "db": ours["db_pid"]},
            )
            results[n] = {"bare": b, "two-step": t, "ours": o}
    return results


def rounds_for(args: argparse.Namespace) -> dict[int, int]:
    levels = [int(x) for x in args.levels.split(",")]
    rounds = [int(x) for x in args.rounds.split(",")]
    rounds += [rounds[-1]] * (len(levels) - len(rounds))
    return dict(zip(levels, rounds, strict=False))


def per_thousand(cpu: float, count: int) -> float:
    return cpu / count * 1000 if count else float("nan")


def phases(level: Level) -> tuple[list[float], list[float], list[float]]:
    """A two-step stream's time to first token in three parts: the POST, the GET up to its
    response headers, and from the headers to the first token."""
    done = [x for x in level.done if x.post is not None and x.headers is not None and x.ttft is not None]
    return (
        [x.post or 0 for x in done],
        [(x.headers or 0) - (x.post or 0) for x in done],
        [(x.ttft or 0) - (x.headers or 0) for x in done],
    )


def report(args: argparse.Namespace, results: dict[int, dict[str, Level]]) -> None:
    ttft_rows, cpu_rows, load_rows, split_rows, shape_rows = [], [], [], [], []
    for n, r in results.items():
        b, t, o = r["bare"], r["two-step"], r["ours"]
        bp50, bp99 = percentile(b.ttfts, 50) * 1000, percentile(b.ttfts, 99) * 1000
        tp50, tp99 = percentile(t.ttfts, 50) * 1000, percentile(t.ttfts, 99) * 1000
        op50, op99 = percentile(o.ttfts, 50) * 1000, percentile(o.ttfts, 99) * 1000
        t_pd = per_thousand(t.cpu, len(t.done) * args.chunks)
        shape_rows.append(
            [
                n,
                len(t.done),
                fmt(tp50),
                fmt(tp99),
                fmt(tp50 - bp50) + " / " + fmt(tp99 - bp99),
                fmt(op50 - tp50) + " / " + fmt(op99 - tp99),
            ]
            + [fmt(percentile(values, 50) * 1000) for values in phases(t)]
            + [f"{t_pd / per_thousand(b.cpu, len(b.done) * args.chunks):.2f}x"]
        )
        target = " (target < 5 / < 20)" if n == 100 else ""
        ttft_rows.append(
            [
                n,
                len(b.done),
                len(o.done),
                fmt(bp50),
                fmt(bp99),
                fmt(op50),
                fmt(op99),
                fmt(op50 - bp50) + " / " + fmt(op99 - bp99) + target,
                f"{op50 / bp50:.1f}x" if bp50 else "n/a",
            ]
        )
        posts, o_heads, o_first = phases(o)
        b_heads = [x.headers for x in b.done if x.headers is not None]
        b_first = [x.ttft - x.headers for x in b.done if x.ttft is not None and x.headers is not None]
        split_rows.append(
            [n]
            + [
                fmt(percentile(values, p) * 1000)
                for values in (b_heads, b_first, posts, o_heads, o_first)
                for p in (50, 99)
            ]
        )
        b_deltas, o_deltas = len(b.done) * args.chunks, len(o.done) * args.chunks
        b_events, o_events = sum(s.events for s in b.done), sum(s.events for s in o.done)
        o_cpu = o.cpu + o.db_cpu
        b_pd, o_pd = per_thousand(b.cpu, b_deltas), per_thousand(o_cpu, o_deltas)
        b_pe, o_pe = per_thousand(b.cpu, b_events), per_thousand(o_cpu, o_events)
        cpu_rows.append(
            [
                n,
                fmt(b.cpu, 2),
                fmt(o.cpu, 2) + (f" + db {o.db_cpu:.2f}" if o.db_cpu else ""),
                fmt(b_pd, 3),
                fmt(o_pd, 3),
                f"{o_pd / b_pd:.2f}x",
                f"{b_events / max(1, len(b.done)):.0f} / {o_events / max(1, len(o.done)):.0f}",
                fmt(b_pe, 3),
                fmt(o_pe, 3),
                f"{o_pe / b_pe:.2f}x",
            ]
        )
        for name, lv in (("bare", b), ("two-step", t), ("ours", o)):
            busy = lv.cpu + lv.db_cpu + lv.driver_cpu + lv.fake_cpu
            load_rows.append(
                [
                    n,
                    name,
                    f"{statistics.fmean(lv.open_samples or [0]):.0f} / {max(lv.open_samples, default=0)}",
                    fmt(lv.wall, 1),
                    fmt(lv.cpu + lv.db_cpu, 1),
                    fmt(lv.fake_cpu, 1),
                    fmt(lv.driver_cpu, 1),
                    f"{busy / lv.wall:.2f}",
                    json.dumps(lv.errors) if lv.errors else "none",
                ]
            )
    print(
        table(
            f"Time to first token (ms); fake: {args.chunks} deltas of 8 chars at {args.rate:g}/s per stream",
            [
                "streams",
                "bare ok",
                "ours ok",
                "bare p50",
                "bare p99",
                "ours p50",
                "ours p99",
                "added p50 / p99",
                "p50 ratio",
            ],
            ttft_rows,
        )
    )
    print(
        table(
            "Where the time to first token goes (ms, p50 / p99 columns)",
            [
                "streams",
                "bare: GET->headers p50",
                "p99",
                "bare: headers->token p50",
                "p99",
                "ours: POST p50",
                "p99",
                "ours: GET->headers p50",
                "p99",
                "ours: headers->token p50",
                "p99",
            ],
            split_rows,
        )
    )
    print(
        table(
            "The floor of the two-step shape: bare POST /start then GET /follow (same server as bare, no"
            " auth, no database), p50 / p99 ms",
            [
                "streams",
                "two-step ok",
                "two-step p50",
                "two-step p99",
                "two-step minus bare",
                "ours minus two-step",
                "two-step: POST p50",
                "GET->headers p50",
                "headers->token p50",
                "CPU /1k deltas vs bare",
            ],
            shape_rows,
        )
    )
    print(
        table(
            "Server CPU (seconds, utime+stime from /proc) per 1,000 upstream deltas and per 1,000 SSE events",
            [
                "streams",
                "bare CPU",
                "ours CPU",
                "bare /1k deltas",
                "ours /1k deltas",
                "ratio",
                "events per reply bare / ours",
                "bare /1k events",
                "ours /1k events",
                "ratio (target <= 1.5x)",
            ],
            cpu_rows,
        )
    )
    print(
        table(
            "Load on the box during each level (CPU seconds; 'cores busy' = all four processes / wall time)",
            [
                "streams",
                "server",
                "open mean / peak",
                "wall s",
                "server CPU",
                "fake CPU",
                "driver CPU",
                "cores busy",
                "errors",
            ],
            load_rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,100,500", help="concurrent streams, comma-separated")
    parser.add_argument(
        "--rounds", default="5,2,1", help="replies per worker at each level (the last repeats)"
    )
    parser.add_argument("--chunks", type=int, default=100, help="deltas per reply (8 characters each)")
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second per stream")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--pool", type=int, default=None, help="YTR_DB_POOL_SIZE (default: the product default)"
    )
    args = parser.parse_args()

    levels = [int(x) for x in args.levels.split(",")]
    print(f"machine: {machine()}")
    print(f"open-file limit: {raise_nofile(max(levels) * 6 + 1000)}; levels: {levels}; database: {args.db}")
    sessions_per_user = 1 + sum(rounds_for(args).values())
    logs = log_dir("relay_overhead")
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.db, tmp) as (url, db_pid),
        fake_upstream(args.chunks, 8, args.rate, logs=logs) as (upstream, fake_pid),
        bare_relay(upstream, DEFAULT_API_KEY, logs=logs) as (bare_base, bare_pid),
    ):
        users = users_and_sessions(url, max(levels), sessions_per_user)
        pool = {"YTR_DB_POOL_SIZE": args.pool} if args.pool is not None else {}
        env = service_env_for(url, upstream, DEFAULT_API_KEY, YTR_MODEL="claude-sonnet-4-6", **pool)
        service = ServiceProcess(env, log_dir=logs)
        service.start()
        try:
            assert service.proc is not None
            ours = {
                "base": service.base_url,
                "pid": service.proc.pid,
                "users": users,
                "fake": fake_pid,
                "db_pid": db_pid,
            }
            bare = {"base": bare_base, "pid": bare_pid, "fake": fake_pid}
            results = asyncio.run(drive(args, ours, bare))
        finally:
            service.stop()
    report(args, results)
    print(f"server logs: {logs}")
    print(
        "\nAdded TTFT is ours minus bare, as a difference of percentiles at the same level. Ours includes"
        "\nthe POST (auth, limits, saving the message, recording the request) and the GET; bare starts the"
        "\nupstream call on its only request. CPU for ours includes the POST and the event log writes."
    )


if __name__ == "__main__":
    main()
