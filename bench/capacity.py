"""Capacity (issue 5): how many SSE streams one service process holds open, and what each costs in
memory, against the bare relay (bench/bare_relay.py) holding the same number in the same run.

The fake Anthropic server (bench/fake_upstream.py, its own process) sends long, slow replies
(``--chunks`` deltas at ``--rate`` per second), so every stream stays open with a live upstream
connection behind it. The driver raises its open-file limit (the servers inherit it), then opens
``--streams`` streams, ``--open-concurrency`` at a time, each read until its first token (so the
upstream call is running), and keeps reading all of them for ``--hold`` seconds.

Memory per stream: (RSS with every stream open - RSS after warm-up) / streams, RSS from
/proc/<pid>/status. Errors: refused POSTs or GETs, transport errors, streams that ended or sent an
error event while held, and streams that went silent during the hold. Targets: < 256 KB per
stream, no errors, 1,000 streams.

Run: .venv/bin/python -m bench.capacity [--streams 1000] [--hold 10] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import (
    async_client,
    bare_relay,
    database,
    fake_upstream,
    log_dir,
    machine,
    open_fds,
    percentile,
    raise_nofile,
    rss_bytes,
    service_env_for,
    table,
    user_and_sessions,
)
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.processes import ServiceProcess
from ytr.sse import SSEParser


@dataclass
class Held:
    opened_in: float | None = None  # from the first request to the first token
    events: int = 0
    last_event: float = 0.0
    error: str | None = None
    open: bool = False


class Streams:
    """Opens streams and keeps reading them in background tasks until ``stop`` is set."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.stop = asyncio.Event()
        self.held: list[Held] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.request_ids: list[str] = []

    async def open(self, start: Any) -> None:
        """``start`` returns the URL to GET (after any POST). Returns once the first token came."""
        held = Held()
        self.held.append(held)
        opened = asyncio.get_running_loop().create_future()
        self.tasks.append(asyncio.create_task(self._keep(start, held, opened)))
        await opened

    async def _keep(self, start: Any, held: Held, opened: asyncio.Future[None]) -> None:
        began = time.monotonic()
        try:
            url = await start()
            async with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    held.error = f"GET {response.status_code}"
                    return
                parser = SSEParser()
                stream = response.aiter_raw()
                async for chunk in stream:
                    for frame in parser.feed(chunk):
                        held.events += 1
                        held.last_event = time.monotonic()
                        if frame.event in ("error", "cancelled", "complete"):
                            held.error = f"{frame.event} event while held"
                            return
                        if frame.event == "token" and not held.open:
                            held.open = True
                            held.opened_in = time.monotonic() - began
                            opened.set_result(None)
                    if self.stop.is_set():
                        return
                if not self.stop.is_set():
                    held.error = "stream ended while held"
        except httpx.HTTPError as exc:
            held.error = type(exc).__name__
        except RuntimeError as exc:  # the POST was refused
            held.error = str(exc)
        finally:
            if not opened.done():
                opened.set_result(None)

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(
    name: str,
    pid: int,
    start_one: Any,
    args: argparse.Namespace,
    client: httpx.AsyncClient,
    after_warmup: Any = None,
) -> dict[str, Any]:
    """Warm up, then open ``args.streams`` streams and hold them."""
    warm = Streams(client)
    await asyncio.gather(*(warm.open(start_one) for _ in range(5)))
    await warm.close()
    if after_warmup is not None:
        await after_warmup()
    await asyncio.sleep(2)  # let closed warm-up streams be torn down
    rss_before, fds_before = rss_bytes(pid), open_fds(pid)

    streams = Streams(client)
    gate = asyncio.Semaphore(args.open_concurrency)
    t0 = time.monotonic()

    async def open_one() -> None:
        async with gate:
            await streams.open(start_one)

    await asyncio.gather(*(open_one() for _ in range(args.streams)))
    opening = time.monotonic() - t0
    await asyncio.sleep(2)
    rss_open, fds_open = rss_bytes(pid), open_fds(pid)
    hold_start = time.monotonic()
    await asyncio.sleep(args.hold)
    rss_held = rss_bytes(pid)
    silent = sum(1 for h in streams.held if h.error is None and h.last_event < hold_start)
    opened = sum(1 for h in streams.held if h.open)
    errors = Counter(h.error for h in streams.held if h.error)
    if silent:
        errors["silent during the hold"] = silent
    alive = sum(1 for h in streams.held if h.error is None and h.last_event >= hold_start)
    await streams.close()
    print(f"  {name}: {opened} opened in {opening:.1f} s, {alive} alive after {args.hold:g} s", flush=True)
    times = [h.opened_in for h in streams.held if h.opened_in is not None]
    tenth = max(1, len(times) // 10)
    return {
        "first_tenth": times[:tenth],
        "last_tenth": times[-tenth:],
        "opened": opened,
        "alive": alive,
        "opening": opening,
        "rss_before": rss_before,
        "rss_open": rss_open,
        "rss_held": rss_held,
        "fds": fds_open - fds_before,
        "errors": dict(errors),
    }


async def drive(args: argparse.Namespace, ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    sessions = iter(ours["sessions"])
    results: dict[str, Any] = {}
    async with async_client(
        args.streams + 20, timeout=60 + args.hold, headers={"X-API-Key": ours["key"]}
    ) as c:

        async def bare_start() -> str:
            return str(bare["base"] + "/stream")

        async def ours_start() -> str:
            r = await c.post(f"{ours['base']}/v1/sessions/{next(sessions)}/chat", json={"message": "q"})
            if r.status_code != 201:
                raise RuntimeError(f"POST {r.status_code}")
            request_id = r.json()["request_id"]
            started.append(request_id)
            return str(ours["base"] + r.json()["stream_url"])

        started: list[str] = []

        async def cancel_warmup() -> None:
            # A client disconnect does not stop a reply; cancel the warm-up ones explicitly.
            for rid in started:
                await c.post(f"{ours['base']}/v1/requests/{rid}/cancel")
            started.clear()

        results["bare"] = await measure("bare relay", bare["pid"], bare_start, args, c)
        results["ours"] = await measure("ours", ours["pid"], ours_start, args, c, cancel_warmup)
    return results


def ms(values: list[float]) -> str:
    return f"{percentile(values, 50) * 1000:.0f}"


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    rows = []
    per: dict[str, float] = {}
    for name, r in results.items():
        per[name] = (r["rss_open"] - r["rss_before"]) / max(1, r["opened"]) / 1024
        held = (r["rss_held"] - r["rss_before"]) / max(1, r["opened"]) / 1024
        rows.append(
            [
                "bare relay" if name == "bare" else "ours",
                f"{r['opened']} / {args.streams}",
                f"{r['opening']:.1f}",
                f"{ms(r['first_tenth'])} / {ms(r['last_tenth'])}",
                f"{r['rss_before'] / 2**20:.0f}",
                f"{r['rss_open'] / 2**20:.0f}",
                f"{per[name]:.0f}",
                f"{held:.0f}",
                r["fds"],
                json.dumps(r["errors"]) if r["errors"] else "none",
            ]
        )
    print(
        table(
            f"{args.streams} concurrent SSE streams in one process (fake: {args.rate:g} deltas/s per stream)",
            [
                "server",
                "open",
                "opening s",
                "open p50 first / last 10% (ms)",
                "RSS before MB",
                "RSS open MB",
                "KB/stream open",
                f"KB/stream after {args.hold:g} s",
                "fds added",
                "errors",
            ],
            rows,
        )
    )
    if per.get("bare"):
        print(f"\nmemory per stream, ours / bare: {per['ours'] / per['bare']:.1f}x   target: ours < 256 KB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds all streams stay open")
    parser.add_argument("--open-concurrency", type=int, default=50, help="streams being opened at once")
    parser.add_argument("--rate", type=float, default=0.5, help="deltas per second per stream")
    parser.add_argument("--chunks", type=int, default=1200, help="deltas per reply (8 characters each)")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--pool", type=int, default=None, help="YTR_DB_POOL_SIZE (default: the product default)"
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    limit = raise_nofile(args.streams * 4 + 1000)
    print(f"open-file limit: {limit} (driver and servers); database: {args.db}")
    if limit < args.streams * 3 + 200:
        print(f"warning: the open-file limit {limit} may not hold {args.streams} streams (about 3 fds each)")
    logs = log_dir("capacity")
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.db, tmp) as (url, _db_pid),
        fake_upstream(args.chunks, 8, args.rate, logs=logs) as (upstream, _fake_pid),
        bare_relay(upstream, DEFAULT_API_KEY, logs=logs) as (bare_base, bare_pid),
    ):
        key, sessions = user_and_sessions(url, args.streams + 10)
        env = service_env_for(
            url,
            upstream,
            DEFAULT_API_KEY,
            YTR_MODEL="claude-sonnet-4-6",
            **({"YTR_DB_POOL_SIZE": args.pool} if args.pool is not None else {}),
        )
        service = ServiceProcess(env, log_dir=logs)
        service.start()
        try:
            assert service.proc is not None
            ours = {"base": service.base_url, "pid": service.proc.pid, "key": key, "sessions": sessions}
            bare = {"base": bare_base, "pid": bare_pid}
            results = asyncio.run(drive(args, ours, bare))
            log_tail = service.log()[-1500:]
        finally:
            # Our replies keep running after their clients left (by design); nothing to keep.
            if service.proc is not None and service.proc.poll() is None:
                service.kill()
    report(args, results)
    print(f"server logs: {logs}")
    if results["ours"]["errors"]:
        print("\nlast lines of our server's log:\n" + log_tail)


if __name__ == "__main__":
    main()
