"""Per-chat CPU and added time to first token against the bare two-step relay (issue 19).

Processes: the fake Anthropic server (bench/fake_upstream.py, ``--chunks`` deltas of 8 characters at
50 deltas/s per stream); our service (``python -m streaming_service.serve``, the container's entry
point) on PostgreSQL when this machine can start one (``--db``), else SQLite; the baseline
(bench/bare_two_step.py: ``POST /chat`` starts the upstream call and answers with an id, ``GET
/stream/{id}`` relays each delta as an SSE frame, one ``INSERT`` of the final text in a thread on the
same database); and this driver (asyncio and a lean HTTP client, bench/raw_http.py).

Load is open-loop: chats arrive at random (Poisson) times at a given rate, whatever the servers'
speed, and ours and the baseline get the same arrival schedule. A chat is the POST, then the GET of
its stream read to the ``complete`` event (carrying the whole reply).

1. Operating point: the rate (chats per second) at which our server process uses ``--target`` of
   one core (60 %, the streaming service's autoscaling target), found from short probes of ours
   (utilization measured after the first reply's duration, so the ramp-up is left out).
2. At that rate, ``--blocks`` pairs of ``--duration``-second blocks, ours then the baseline, same
   schedule in each pair. CPU per chat: utime+stime of the server process (from /proc) over the
   block until its last chat ended, divided by its chats; the database's processes (PostgreSQL)
   separately. TTFT: from sending the POST to reading the first ``token`` frame; added TTFT is ours
   minus the baseline, as a difference of percentiles.
3. ``--profile SECONDS``: one more block of ours at that rate with py-spy sampling the server
   (``py-spy record --nonblocking``, idle threads left out); its samples are grouped into costs per
   chat by bench/profile_costs.py (needs py-spy in the venv: ``.venv/bin/uv pip install py-spy``).

Targets (issue 19): server CPU per chat <= 1.5x the baseline's; added TTFT at the operating point
p50 <= 15 ms, p99 <= 50 ms.

Run: .venv/bin/python -m bench.chat_cpu [--db auto|sqlite|postgres] [--rate R] [--profile 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chat_load import Block, Sessions, offered, one_chat
from bench.common import (
    ModuleProcess,
    cpu_seconds,
    database,
    fake_upstream,
    fmt,
    log_dir,
    machine,
    percentile,
    postgres_available,
    raise_nofile,
    service_env_for,
    table,
    wait_http,
)
from bench.raw_http import Client
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.postgres import free_port
from tests.support.processes import ServiceProcess


class Bench:
    def __init__(self, args: argparse.Namespace, servers: dict[str, Any], sessions: Sessions) -> None:
        self.args, self.servers, self.sessions = args, servers, sessions
        self.expect = args.chunks * 8
        self.ours_client = Client(servers["ours"])
        self.bare_client = Client(servers["bare"])

    def ours_one(self) -> Any:
        key, sid = self.sessions.next()
        return one_chat(self.ours_client, f"/v1/sessions/{sid}/chat", {"X-API-Key": key}, self.expect)

    def bare_one(self) -> Any:
        return one_chat(self.bare_client, "/chat", {}, self.expect)

    def block(self, name: str, rate: float, duration: float, seed: int) -> Any:
        s = self.servers
        pids = {"server": s[f"{name}_pid"], "fake": s["fake_pid"], "db": s["db_pid"]}
        run_one = self.ours_one if name == "ours" else self.bare_one
        return offered(name, run_one, rate, duration, seed, pids, warm=self.args.chunks / 50)

    async def idle_util(self, name: str, seconds: float = 3.0) -> float:
        pid = self.servers[f"{name}_pid"]
        first = cpu_seconds(pid)
        await asyncio.sleep(seconds)
        return (cpu_seconds(pid) - first) / seconds

    async def warm_up(self) -> None:
        for _ in range(3):
            for one in (self.ours_one, self.bare_one):
                chat = await one()
                if not chat.ok:
                    raise RuntimeError(f"warm-up chat failed: {chat.error}")
        await self.block("ours", 5, 3, seed=1)
        await self.block("bare", 5, 3, seed=1)

    async def calibrate(self) -> tuple[float, list[list[object]]]:
        """The rate at which our server uses ``--target`` of a core: utilization is idle + c x rate."""
        args, rows = self.args, []
        idle = await self.idle_util("ours")
        rate = args.probe_rate
        for probe in range(args.probes):
            block = await self.block("ours", rate, args.probe_seconds, seed=100 + probe)
            per_chat = max(1e-4, (block.util - idle) / rate)
            estimate = min(args.max_rate, max(1.0, (args.target - idle) / per_chat))
            rows.append(
                [
                    probe + 1,
                    fmt(rate),
                    f"{block.util:.0%}",
                    f"{idle:.1%}",
                    fmt(per_chat * 1000),
                    fmt(estimate),
                ]
            )
            if probe and abs(block.util - args.target) <= args.tolerance:
                return rate, rows
            rate = estimate
        return rate, rows


def percentiles_ms(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50) * 1000, percentile(values, 99) * 1000


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(args: argparse.Namespace, rate: float, blocks: list[Block], db: str) -> dict[str, float]:
    def merged(name: str) -> Block:
        out = Block(name, rate)
        for b in (b for b in blocks if b.name == name):
            out.chats += b.chats
            out.cpu, out.db_cpu, out.wall = out.cpu + b.cpu, out.db_cpu + b.db_cpu, out.wall + b.wall
            out.other_cpu += b.other_cpu
        out.util = sum(b.util for b in blocks if b.name == name) / max(1, len(blocks) // 2)
        return out

    o, b = merged("ours"), merged("bare")
    figures: dict[str, float] = {}
    rows: list[list[object]] = []

    def per_chat(block: Block, cpu: float) -> float:
        return cpu / max(1, len(block.chats)) * 1000

    for label, of in (("server", lambda x: x.cpu), ("database processes", lambda x: x.db_cpu)):
        if label.startswith("database") and not (o.db_cpu or b.db_cpu):
            continue
        bo, oo = per_chat(b, of(b)), per_chat(o, of(o))
        figures[f"{label} cpu ms"] = oo
        target = " (target <= 1.5x)" if label == "server" else ""
        rows.append([f"{label} CPU ms per chat", fmt(bo, 2), fmt(oo, 2), ratio(oo, bo) + target])
    if o.db_cpu or b.db_cpu:
        bo, oo = per_chat(b, b.cpu + b.db_cpu), per_chat(o, o.cpu + o.db_cpu)
        rows.append(["server + database CPU ms per chat", fmt(bo, 2), fmt(oo, 2), ratio(oo, bo)])
    rows.append(["server utilization after ramp-up", f"{b.util:.0%}", f"{o.util:.0%}", ""])
    for attr, label in (
        ("ttft", "TTFT"),
        ("post", "  of which the POST"),
        ("get", "  the GET to its headers"),
        ("first", "  headers to first token"),
        ("total", "whole chat"),
    ):
        (bp50, bp99), (op50, op99) = percentiles_ms(b.values(attr)), percentiles_ms(o.values(attr))
        added = f"+{op50 - bp50:.1f} / +{op99 - bp99:.1f}"
        if attr == "ttft":
            figures["added p50"], figures["added p99"] = op50 - bp50, op99 - bp99
            added += " (target <= 15 / <= 50)"
        rows.append(
            [f"{label} p50 / p99 ms", f"{fmt(bp50)} / {fmt(bp99)}", f"{fmt(op50)} / {fmt(op99)}", added]
        )
    rows.append(["chats ok / sent", f"{len(b.done)} / {len(b.chats)}", f"{len(o.done)} / {len(o.chats)}", ""])
    rows.append(
        [
            "errors",
            json.dumps(b.errors) if b.errors else "none",
            json.dumps(o.errors) if o.errors else "none",
            "",
        ]
    )
    late = [c.late * 1000 for c in o.chats + b.chats]
    print(
        table(
            f"Per chat at the operating point: {rate:.1f} chats/s offered (Poisson), {args.chunks} deltas"
            f" per reply at 50/s, {args.blocks} x {args.duration:g} s per server, database: {db}",
            ["", "bare two-step", "ours", "ours / bare (or added)"],
            rows,
        )
    )
    block_rows = [
        [
            i // 2 + 1,
            x.name,
            len(x.chats),
            fmt(x.cpu / max(1, len(x.chats)) * 1000, 2),
            fmt(x.db_cpu / max(1, len(x.chats)) * 1000, 2),
            f"{x.util:.0%}",
            " / ".join(fmt(v) for v in percentiles_ms(x.values("ttft"))),
            fmt(x.other_cpu / x.wall, 2),
        ]
        for i, x in enumerate(blocks)
    ]
    print(
        table(
            "Each block (the spread between blocks is the noise of this box)",
            [
                "pair",
                "server",
                "chats",
                "server CPU ms/chat",
                "db CPU ms/chat",
                "util",
                "TTFT p50 / p99",
                "driver+fake cores",
            ],
            block_rows,
        )
    )
    lateness = f"{fmt(percentile(late, 50))} / {fmt(percentile(late, 99))}"
    print(f"driver lateness against its schedule p50 / p99: {lateness} ms")
    figures["cpu per chat ms"], figures["rate"] = figures["server cpu ms"], rate
    return figures


def wait_for_quiet(limit: float, patience: float) -> None:
    if limit <= 0:
        return
    deadline = time.monotonic() + patience
    while (load := os.getloadavg()[0]) >= limit and time.monotonic() < deadline:
        print(f"  load average {load:.2f} >= {limit}; waiting ...", flush=True)
        time.sleep(30)
    print(f"load average now {os.getloadavg()[0]:.2f} (limit {limit}); {machine()}", flush=True)


async def profile(args: argparse.Namespace, bench: Bench, rate: float, logs: Path) -> None:
    """A block of each server at the operating rate with py-spy attached (not the measured blocks:
    py-spy's own CPU competes for the box), then its samples as ms per chat, side by side."""
    from bench.profile_costs import print_costs, thread_cpu

    spent: dict[str, dict[str, float]] = {}
    for name in ("ours", "bare"):
        out, pid = logs / f"{name}.pyspy.txt", bench.servers[f"{name}_pid"]
        spy = subprocess.Popen(  # noqa: ASYNC220 (started and left running; awaited in a thread)
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
             "--gil", "--nonblocking", "--threads", "--full-filenames", "-r", str(args.profile_rate),
             "-d", str(int(args.profile)), "-o", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        await asyncio.sleep(1.0)  # attached before the load starts
        threads = thread_cpu(pid)
        block = await bench.block(name, rate, args.profile - 3, seed=999)
        cpu_by_thread = {tid: cpu - threads.get(tid, 0.0) for tid, cpu in thread_cpu(pid).items()}
        said, _ = await asyncio.to_thread(spy.communicate, None, args.profile + 60)
        per_chat = block.cpu / max(1, len(block.chats)) * 1000
        said_line = (said.decode().strip().splitlines() or [""])[0]
        print(f"\n{name}, profiled: {len(block.chats)} chats, {per_chat:.2f} ms server CPU per chat, util "
              f"{block.util:.0%}; {said_line}; samples: {out}")  # fmt: skip
        spent[name] = print_costs(out, per_chat, len(block.chats), cpu_by_thread)
    ours, bare = spent["ours"], spent["bare"]
    rows: list[list[object]] = [
        [
            name,
            f"{ours.get(name, 0):.2f}",
            f"{bare.get(name, 0):.2f}",
            f"{ours.get(name, 0) - bare.get(name, 0):+.2f}",
        ]
        for name in sorted(set(ours) | set(bare), key=lambda n: bare.get(n, 0) - ours.get(n, 0))
    ]
    print(
        table(
            "Ours against the bare two-step relay, ms per chat by purpose",
            ["purpose", "ours", "bare", "ours - bare"],
            rows,
        )
    )


async def run(args: argparse.Namespace, bench: Bench, url: str, db: str, logs: Path) -> None:
    """Everything on one event loop (the driver's connections belong to it); database setup for
    the sessions runs in a thread between the measured parts."""
    probe_chats = 0 if args.rate else args.max_rate * args.probe_seconds * args.probes
    await asyncio.to_thread(bench.sessions.add, url, int(probe_chats * 1.3) + 400)
    await bench.warm_up()
    rate = args.rate
    if not rate:
        print("finding the operating point ...", flush=True)
        rate, rows = await bench.calibrate()
        header = ["probe", "rate /s", "util", "idle util", "CPU ms/chat", "next rate"]
        print(table("Operating point search (ours)", header, rows))
    await asyncio.to_thread(
        bench.sessions.add, url, int(rate * (args.blocks * args.duration + args.profile) * 1.4) + 100
    )
    blocks = []
    for pair in range(args.blocks):
        for name in ("ours", "bare"):
            print(f"  pair {pair + 1}: {name} at {rate:.1f} chats/s for {args.duration:g} s ...", flush=True)
            blocks.append(await bench.block(name, rate, args.duration, seed=10 + pair))
    report(args, rate, blocks, db)
    if args.profile:
        await profile(args, bench, rate, logs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="auto", choices=["auto", "sqlite", "postgres"])
    parser.add_argument("--chunks", type=int, default=100, help="deltas per reply (8 characters, 50/s)")
    parser.add_argument(
        "--target", type=float, default=0.6, help="our server's utilization at the operating point"
    )
    parser.add_argument("--tolerance", type=float, default=0.06)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="chats/s; skips the search for the operating point"
    )
    parser.add_argument("--probe-rate", type=float, default=10.0)
    parser.add_argument("--probe-seconds", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--max-rate", type=float, default=60.0)
    parser.add_argument("--blocks", type=int, default=3, help="pairs of blocks (ours, then bare)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per block")
    parser.add_argument(
        "--bare-sdk",
        default="stream",
        choices=["stream", "raw"],
        help="the baseline reads messages.stream() (default) or the SDK's untyped event stream, as ours does",
    )
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds per server (0: none)")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--quiet-load", type=float, default=0.0, help="first wait for a 1-min load below this"
    )
    parser.add_argument("--quiet-wait", type=float, default=1200.0, help="... for at most this many seconds")
    args = parser.parse_args()
    if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
        parser.error("--profile needs py-spy in the venv: .venv/bin/uv pip install py-spy")
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    db = args.db if args.db != "auto" else ("postgres" if postgres_available() else "sqlite")
    print(f"machine: {machine()}; database: {db}; open-file limit {raise_nofile(4096)}", flush=True)
    logs, started = log_dir("chat_cpu"), time.monotonic()
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(db, tmp) as (url, db_pid),
        fake_upstream(args.chunks, 8, 50.0, logs=logs) as (upstream, fake_pid),
    ):
        port = free_port()
        bare_db = url if db == "postgres" else f"sqlite:///{tmp}/bare.db"
        bare = ModuleProcess(
            "bench.bare_two_step",
            [
                *("--port", str(port), "--upstream", upstream, "--api-key", DEFAULT_API_KEY),
                *("--db-url", bare_db, "--sdk", args.bare_sdk),
            ],
            log=logs / "bare_two_step.log",
        )
        service = ServiceProcess(
            service_env_for(url, upstream, DEFAULT_API_KEY, YTR_MODEL="claude-sonnet-4-6"), log_dir=logs
        )
        bare.start()
        service.start()
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc=bare.proc)
            assert service.proc is not None
            servers = {
                "ours": service.base_url, "ours_pid": service.proc.pid, "bare": f"http://127.0.0.1:{port}",
                "bare_pid": bare.pid, "fake_pid": fake_pid, "db_pid": db_pid,
            }  # fmt: skip
            asyncio.run(run(args, Bench(args, servers, Sessions()), url, db, logs))
        finally:
            service.stop()
            bare.stop()
    print(f"\nserver logs: {logs}; took {time.monotonic() - started:.0f} s; {machine()}")


if __name__ == "__main__":
    main()
