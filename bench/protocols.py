"""Transports compared (issue 19): sync REST, polling (the CLI's 250 ms and a faster setting),
POST-then-SSE, one-step SSE and WebSocket, in one run, against one fake upstream.

Processes: the fake Anthropic server (bench/fake_upstream.py: ``--chunks`` deltas of
``--chunk-size`` characters at ``--rate`` per second, the first after ``--first-delay``); the
whole system as ``make run`` serves it (``python -m local_run``: the streaming routes and the REST
routes in one uvicorn process, SQLite, the real Claude adapter pointed at the fake, production
polling, per-user limits lifted); and this driver, which talks to the server through a byte-counting
TCP proxy (bench/protocol_kit/proxy.py) and drives each transport as its real client does
(bench/protocol_kit/drivers.py).

For each transport, at 1 and at 50 concurrent conversations (each its own user, started at random
within one reply's duration, ``--rounds`` replies each, a fresh session per reply):

* first text, total (p50/p95/p99) and tokens/s, defined as ``ytr chat --timings`` defines them;
* server CPU per reply (utime+stime from /proc, less the idle rate measured before);
* bytes on the wire per reply, both directions, at the proxy (headers and framing included), and
  requests and TCP connections per reply.

Then a connection dropped half-way through a reply (``--drops`` times each, one at a time): is the
reply kept, and how long from the cut until the client has the rest, each transport getting it
back its own way. Then memory per open conversation: a fresh server per transport on a slow fake,
RSS with ``--mem-streams`` conversations open minus RSS with a tenth of them open, per
conversation. Last, lines of code per path, counted from the code (bench/protocol_kit/loc.py).

Run: .venv/bin/python -m bench.protocols [--levels 1,50] [--rounds 5,2] [--quick]
Results: docs/protocols.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    cpu_seconds,
    database,
    fake_upstream,
    log_dir,
    machine,
    more_sessions,
    open_fds,
    raise_nofile,
    rss_bytes,
    service_env_for,
    users_and_sessions,
)
from bench.fake_upstream import reply_text
from bench.protocol_kit.drivers import (
    Conversation,
    Outcome,
    guarded,
    one_step_reply,
    poll_reply,
    sse_reply,
    sync_reply,
    ws_reply,
)
from bench.protocol_kit.proxy import CountingProxy
from bench.protocol_kit.report import Level, Measured, raw, report
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.processes import ServiceProcess
from ytr.chat import POLL_INTERVAL

Run = Callable[[Conversation], Awaitable[Outcome]]


def transports(fast_poll: float) -> dict[str, Run]:
    return {
        "sync": sync_reply,
        "poll": lambda c: poll_reply(c, POLL_INTERVAL),
        "poll-fast": lambda c: poll_reply(c, fast_poll),
        "sse": sse_reply,
        "sse-1step": one_step_reply,
        "ws": ws_reply,
    }


STARTED = time.monotonic()


def say(text: str) -> None:
    """A progress line with the time so far and the 1-minute load (the box is shared)."""
    print(f"  [{time.monotonic() - STARTED:3.0f} s, load {os.getloadavg()[0]:.1f}] {text}", flush=True)


class LocalRun(ServiceProcess):
    module = "local_run"  # what `make run` starts: the streaming and the REST routes in one process


@contextlib.contextmanager
def servers(url: str, upstream: str, logs: Path, count: int = 1) -> Iterator[list[LocalRun]]:
    """``count`` servers on one database and upstream, started together (a start is mostly
    imports: seconds of CPU each on this box), stopped (killed) at the end."""
    from ytresearch.security import generate_api_key

    env = service_env_for(
        url, upstream, DEFAULT_API_KEY, YTR_MODEL="claude-sonnet-4-6", YTR_DEV_API_KEY=generate_api_key()
    )
    started = [LocalRun(env, log_dir=logs) for _ in range(count)]
    for service in started:
        service.start(wait=False)
    try:
        for service in started:
            service.wait_healthy(120)
        yield started
    finally:
        for service in started:
            if service.alive:
                service.kill()


class Sessions:
    """Users (their keys) and their fresh sessions, made before the run."""

    def __init__(self, made: list[tuple[str, list[str]]]) -> None:
        self.users = [(key, iter(sids)) for key, sids in made]

    def take(self, index: int) -> tuple[str, str]:
        key, sids = self.users[index]
        return key, next(sids)


async def run_level(run: Run, name: str, n: int, rounds: int, s: Sessions, ctx: dict[str, Any]) -> Level:
    proxy: CountingProxy = ctx["proxy"]
    level, pid = Level(), ctx["pid"]
    cpu0, traffic0, t0, mine = cpu_seconds(pid), proxy.traffic(), time.monotonic(), time.process_time()

    async def worker(index: int) -> None:
        if n > 1:
            await asyncio.sleep(random.uniform(0, ctx["duration"]))
        for _ in range(rounds):
            key, sid = s.take(index)
            level.outcomes.append(await guarded(run, Conversation(proxy.url, key, sid, ctx["expect"]), name))

    await asyncio.gather(*(worker(i) for i in range(n)))
    await asyncio.sleep(0.3)  # the event log's last write-behind batch
    level.wall = time.monotonic() - t0
    level.cpu = cpu_seconds(pid) - cpu0 - ctx["idle"] * level.wall
    level.traffic = proxy.traffic() - traffic0
    level.driver_cpu = time.process_time() - mine
    return level


async def measure(args: argparse.Namespace, service: LocalRun, s: Sessions, expect: str) -> Measured:
    assert service.proc is not None
    proxy = await CountingProxy("127.0.0.1", service.port).start()
    duration = args.first_delay + (args.chunks - 1) / args.rate
    ctx: dict[str, Any] = {"proxy": proxy, "pid": service.proc.pid, "expect": expect, "duration": duration}
    runs, m = transports(args.fast_poll), Measured()
    try:
        say("warming up ...")
        for name, run in runs.items():
            key, sid = s.take(0)
            await guarded(run, Conversation(proxy.url, key, sid, expect), name)
        cpu0, idle = cpu_seconds(ctx["pid"]), 1 if args.quick else 3
        await asyncio.sleep(idle)
        m.idle_cpu_rate = ctx["idle"] = (cpu_seconds(ctx["pid"]) - cpu0) / idle
        for n, rounds in zip(args.level_list, args.round_list, strict=True):
            for name, run in runs.items():
                say(f"{name}: {n} conversation(s) x {rounds} replies ...")
                m.levels[name, n] = await run_level(run, name, n, rounds, s, ctx)
        drops: dict[str, Run] = {**runs, "ws-resume": lambda c: ws_reply(c, resume="ws")}
        for name, run in drops.items():
            say(f"{name}: {args.drops} dropped connection(s) ...")
            m.drops[name] = []
            for _ in range(args.drops):
                key, sid = s.take(0)
                c = Conversation(proxy.url, key, sid, expect, cut=proxy.cut_all, cut_after=duration / 2)
                c.history_wait = 3 * duration + 10
                m.drops[name].append(await guarded(run, c, name))
                await asyncio.sleep(0.2)
    finally:
        await proxy.stop()
    return m


async def hold(
    run: Run, name: str, service: LocalRun, s: Sessions, args: argparse.Namespace
) -> dict[str, float]:
    """RSS and open files of a fresh server with a tenth of ``--mem-streams`` conversations open,
    then with all of them: the difference per conversation (the first tenth absorbs warm-up)."""
    assert service.proc is not None
    pid, total = service.proc.pid, args.mem_streams
    first = max(1, total // 10)
    tasks: list[asyncio.Task[Outcome]] = []
    started: list[asyncio.Event] = []

    async def open_until(count: int) -> tuple[float, float]:
        fds0, adding = open_fds(pid), count - len(tasks)
        while len(tasks) < count:
            key, sid = s.take(len(tasks))
            started.append(asyncio.Event())
            c = Conversation(service.base_url, key, sid, "", started=started[-1])
            tasks.append(asyncio.create_task(guarded(run, c, name)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # Sync shows no text before the end: wait for each request's two sockets (client, upstream).
            if name == "sync" and open_fds(pid) - fds0 >= 2 * adding:
                break
            if name != "sync" and all(e.is_set() for e in started):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        rss = []
        for _ in range(5):
            rss.append(rss_bytes(pid))
            await asyncio.sleep(0.2)
        return statistics.median(rss), open_fds(pid)

    rss1, fds1 = await open_until(first)
    rss2, fds2 = await open_until(total)
    opened = sum(e.is_set() for e in started)
    if not args.mem_shared:
        service.kill()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "kb": (rss2 - rss1) / (total - first) / 1024,
        "fds": (fds2 - fds1) / (total - first),
        "rss_mb": rss2 / 2**20,
        "opened": float(opened if name != "sync" else total),
    }


def memory_phase(args: argparse.Namespace, url: str, s: Sessions, logs: Path) -> dict[str, dict[str, float]]:
    runs = transports(args.fast_poll)
    out: dict[str, dict[str, float]] = {}
    names = ("sync", "poll", "sse", "sse-1step", "ws")
    count = 1 if args.mem_shared else len(names)
    say(f"memory: starting {count} server(s) on a slow upstream ...")
    # A slow upstream (1 delta a second, 8 minutes a reply): every conversation stays open.
    with fake_upstream(500, 8, 1.0, 0.0, logs=logs) as (slow, _pid), servers(url, slow, logs, count) as fresh:
        for index, name in enumerate(names):
            say(f"memory: {name}, {args.mem_streams} open conversations ...")
            service = fresh[0 if args.mem_shared else index]
            out[name] = asyncio.run(hold(runs[name], name, service, s, args))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,50", help="concurrent conversations, comma-separated")
    parser.add_argument("--rounds", default="5,2", help="replies per conversation at each level")
    parser.add_argument("--chunks", type=int, default=100, help="deltas per reply")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per delta")
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second per reply")
    parser.add_argument("--first-delay", type=float, default=0.3, help="seconds before the first delta")
    parser.add_argument("--fast-poll", type=float, default=0.05, help="the faster polling interval (s)")
    parser.add_argument("--drops", type=int, default=3, help="dropped connections per transport")
    parser.add_argument("--mem-streams", type=int, default=100, help="open conversations for memory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--mem-shared",
        action="store_true",
        help="measure memory for every transport on one server (quicker; later transports reuse memory"
        " the earlier ones freed, so their figures come out low)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and --mem-shared: a check that it all runs"
    )
    args = parser.parse_args()
    if args.quick:
        args.levels, args.rounds, args.chunks, args.rate, args.first_delay = "1,3", "1,1", 12, 200.0, 0.05
        args.drops, args.mem_streams, args.mem_shared = 1, 4, True
    args.level_list = [int(x) for x in args.levels.split(",")]
    args.round_list = [int(x) for x in args.rounds.split(",")]
    args.round_list += [args.round_list[-1]] * (len(args.level_list) - len(args.round_list))

    print(f"machine: {machine()}", flush=True)
    raise_nofile(max([*args.level_list, args.mem_streams]) * 8 + 1000)
    expect = reply_text(args.chunks * args.chunk_size)
    tokens = math.ceil(len(expect) / 4)  # the fake's output_tokens
    logs = log_dir("protocols")
    users = max([*args.level_list, args.mem_streams])
    per_user = len(transports(0)) * max(args.round_list) + 5
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", tmp) as (url, _pid):
        say(f"{users} users with {per_user} sessions each ...")
        made = users_and_sessions(url, users, per_user)
        extra = 6 + 6 * args.round_list[0] + 7 * args.drops
        made[0] = (made[0][0], made[0][1] + more_sessions(url, made[0][0], extra))
        s = Sessions(made)
        fast = fake_upstream(args.chunks, args.chunk_size, args.rate, args.first_delay, logs=logs)
        say("starting the fake upstream and the server ...")
        with fast as (up, _), servers(url, up, logs) as (service,):
            m = asyncio.run(measure(args, service, s, expect))
        m.memory = memory_phase(args, url, s, logs)
    text = report(args, m, tokens)
    print(text)
    print(f"\nmachine at the end: {machine()}")
    print(f"took {time.monotonic() - STARTED:.0f} s; server logs: {logs}")
    if args.json:
        args.json.write_text(json.dumps(raw(m), indent=1))
    bad = [name for (name, _n), lv in m.levels.items() if len(lv.done) < len(lv.outcomes)]
    if bad:
        raise SystemExit(f"replies failed on: {', '.join(sorted(set(bad)))}")


if __name__ == "__main__":
    main()
