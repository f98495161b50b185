"""The event log at scale: today's design (a git revision, ``--baseline-rev``, run from a detached
worktree) against the new one (this working tree), in the same run, on the same PostgreSQL.

For each design in turn, on a fresh database of one PostgreSQL server (``fsync=off``, from
tests/support/postgres.py) migrated by that design's own code: ``--servers`` processes of
``python -m streaming_service.serve`` (cwd and PYTHONPATH the design's tree, so that
``streaming_service`` and ``ytresearch`` import from it; the benchmark prints where they came from),
the fake Anthropic server in its own process sending long replies (``--deltas`` deltas of
8 characters at ``--rate`` per second: 500 at 50/s, 10 s, so that steady streaming dominates),
per-user limits lifted, 100 users with a fresh session per chat, and this driver (asyncio, the lean
client of bench/raw_http.py, one monotonic clock).

``--streams`` N slots, started evenly over one reply's duration, each running chats back to back:
``POST /v1/sessions/{id}/chat`` to server i (round robin), then at once an *owner* follower
(``GET /v1/streams/{id}`` on the same server) and a *cross* follower (the same GET on another
server, which follows the request through the database), both read to ``complete``, each event's
arrival time recorded. The steady window (``--duration`` seconds) starts one reply's duration plus
one second after the first chat, when every slot is streaming; chats started before its end run to
their end.

Measured over the steady window (CPU from /proc, utime+stime; per stream-second = over the sum of
the time each chat's stream was open inside the window, from its POST to its followers' last event):

* PostgreSQL CPU (the postmaster's whole process tree) and the servers' CPU (summed);
* rows in ``chat_events`` per stream-second: the rows of the chats started in the window (counted
  by request id after they ended) over their streams' durations; *text rows per streaming second*,
  the steady-state figure, leaves out the rows of the non-token events the owner saw (stage, usage,
  complete ...) and the first token, over the time from the first token to the end; and, as a check,
  ``n_tup_ins`` of ``chat_events`` (pg_stat_user_tables) over the window;
* cross-process follower lag: for each event id both followers got, cross arrival - owner arrival
  (events the owner got inside the window); and for the text, by position: for each token event of
  the owner, when the cross follower had received that much text, minus when the owner had;
* time to first token (POST sent to the owner's first token) of the chats started in the window;
* errors: refused requests, error events, a reply whose text is not the fake's, a follower that
  never got ``complete``, a server process that died.

NOTIFY is not counted (PostgreSQL keeps no statistics of it); the transactions of the design's
database per stream-second (pg_stat_database) and its connections are printed instead.

``--find-max``: after the measured run, for each design, more concurrent streams (``--find-start``,
times ``--find-step``) with a ``--find-window`` second window each, until errors appear, or the
first token's p99 passes ``--max-first-token`` ms, or the cross follower's lag p99 passes
``--max-lag`` ms, or a reply takes more than 1.25x its duration at p50; the largest N that did not
is printed.

Targets (the new design): text rows <= 2 per streaming second; cross-process lag p50 <= 20 ms.
Timings never fail the run: it exits non-zero only on errors or a crash.

Run: .venv/bin/python -m bench.scale [--streams N] [--duration S] [--find-max] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from pathlib import Path

from bench.common import fake_upstream, fmt, log_dir, machine, raise_nofile, service_env_for, table, wait_http
from bench.scale_kit.design import REPO, Design, Server, working_tree_rev, worktree
from bench.scale_kit.load import Driver, Pool, chats_needed
from bench.scale_kit.measure import Level, Result, Stats, degraded, figures
from tests.fakes.anthropic_server import DEFAULT_API_KEY
from tests.support.postgres import PostgresServer

TARGET_TEXT_ROWS = 2.0  # per streaming second, at steady state
TARGET_LAG_P50 = 20.0  # ms, cross-process follower


# ------------------------------------------------------------------------------------- report
def pair(a: float, b: float, digits: int = 1) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}x" if old and old == old and new == new else "n/a"


def report(args: argparse.Namespace, results: list[Result]) -> None:
    w = args.duration
    main_rows: list[list[object]] = []
    detail_rows: list[list[object]] = []
    figs = {r.design.name: figures(r.main) for r in results}
    for r in results:
        f, lv = figs[r.design.name], r.main
        main_rows.append(
            [
                f"{r.design.name} ({r.design.rev})",
                lv.streams,
                fmt(f["rows"], 2),
                fmt(f["text rows"], 2),
                fmt(f["pg"], 2),
                fmt(f["server"], 2),
                pair(f["lag50"], f["lag99"]),
                pair(f["text lag50"], f["text lag99"]),
                pair(f["ttft50"], f["ttft99"]),
                json.dumps(lv.errors) if lv.errors else "0",
            ]
        )
        wall = lv.window[1] - lv.window[0]
        detail_rows.append(
            [
                r.design.name,
                f"{len(lv.steady)} / {len(lv.chats)}",
                fmt(f["stream-seconds"] / wall, 1),
                fmt(f["rows per reply"], 1),
                fmt(f["inserted"], 2),
                fmt(f["xacts"], 1),
                f"{lv.db.get('conns', 0):.0f}",
                f"{f['matched']:.0%}" if f["matched"] == f["matched"] else "n/a",
                " + ".join(fmt(lv.cpu[f"server{i}"] / wall, 2) for i in range(args.servers)),
                fmt(lv.cpu["postgres"] / wall, 2),
                f"{fmt(lv.cpu['fake'] / wall, 2)} / {fmt(lv.cpu['driver'] / wall, 2)}",
            ]
        )
    if "today" in figs and "new" in figs:
        t, n = figs["today"], figs["new"]
        main_rows.append(
            [
                "new / today",
                "",
                ratio(n["rows"], t["rows"]),
                ratio(n["text rows"], t["text rows"]),
                ratio(n["pg"], t["pg"]),
                ratio(n["server"], t["server"]),
                f"{ratio(n['lag50'], t['lag50'])} / {ratio(n['lag99'], t['lag99'])}",
                f"{ratio(n['text lag50'], t['text lag50'])} / {ratio(n['text lag99'], t['text lag99'])}",
                f"{ratio(n['ttft50'], t['ttft50'])} / {ratio(n['ttft99'], t['ttft99'])}",
                "",
            ]
        )
    main_rows.append(
        [
            "target (new)",
            "",
            "",
            f"<= {TARGET_TEXT_ROWS:g}",
            "",
            "",
            f"p50 <= {TARGET_LAG_P50:g}",
            "",
            "",
            "0",
        ]
    )
    print(
        table(
            f"The event log at scale: {args.servers} servers on one PostgreSQL, {args.deltas} deltas"
            f" of 8 chars at {args.rate:g}/s per reply ({args.deltas / args.rate:g} s), owner + cross"
            f" follower per chat, steady window {w:g} s (CPU: ms per stream-second; lag and first token: ms)",
            [
                "design",
                "streams",
                "rows per stream-s",
                "text rows per streaming s",
                "PG CPU per stream-s",
                "server CPU per stream-s",
                "cross lag p50 / p99 (by id)",
                "token lag p50 / p99 (by text)",
                "first token p50 / p99",
                "errors",
            ],
            main_rows,
        )
    )
    print(
        table(
            "Details over the same window (cores = CPU seconds per second of the window)",
            [
                "design",
                "chats in window ok / all run",
                "streams open (mean)",
                "rows per reply",
                "n_tup_ins per stream-s",
                "PG transactions per stream-s",
                "PG connections",
                "events matched by id",
                "server cores",
                "PG cores",
                "fake / driver cores",
            ],
            detail_rows,
        )
    )
    for r in results:
        if not r.found:
            continue
        rows = []
        best, _ = r.limits()
        for lv, why in r.found:
            f = figures(lv)
            rows.append(
                [
                    lv.streams,
                    fmt(f["text rows"], 2),
                    fmt(f["pg"], 2),
                    fmt(f["server"], 2),
                    fmt((lv.cpu["servers"] + lv.cpu["postgres"]) / (lv.window[1] - lv.window[0]), 2),
                    fmt((lv.cpu["fake"] + lv.cpu["driver"]) / (lv.window[1] - lv.window[0]), 2),
                    pair(f["lag50"], f["lag99"]),
                    pair(f["ttft50"], f["ttft99"]),
                    why or "ok",
                ]
            )
        print(
            table(
                f"Max streams, {r.design.name}: {best or 'none'} sustained"
                f" (limits: errors, first token p99 > {args.max_first_token:g} ms, cross lag p99 > "
                f"{args.max_lag:g} ms, replies > 1.25x their duration)",
                [
                    "streams",
                    "text rows /s",
                    "PG CPU /stream-s",
                    "server CPU /stream-s",
                    "servers + PG cores",
                    "fake + driver cores",
                    "cross lag p50 / p99",
                    "first token p50 / p99",
                    "verdict",
                ],
                rows,
            )
        )


# ------------------------------------------------------------------------------------- running
async def drive(args: argparse.Namespace, design: Design, driver: Driver, url: str, logs: Path) -> Result:
    try:
        return await search(args, design, driver, url, logs)
    finally:
        driver.close()  # on this loop, which owns the connections


async def search(args: argparse.Namespace, design: Design, driver: Driver, url: str, logs: Path) -> Result:
    """The measured run, then (``--find-max``) more streams until it degrades."""
    result = Result(design, Level(0))
    print(f"  {design.name}: {args.streams} streams, window {args.duration:g} s ...", flush=True)
    result.main = await driver.level(args.streams, args.duration)
    print(f"    {len(result.main.chats)} chats, errors: {result.main.errors or 'none'}", flush=True)

    async def attempt(n: int) -> bool:
        """One level of the search; True when it held."""
        needed = chats_needed(args, n, args.find_window)
        users = await asyncio.to_thread(
            design.setup, url, False, args.users, math.ceil(needed / args.users), logs
        )
        driver.pool.add(users["users"])
        print(f"  {design.name}: max search at {n} streams ...", flush=True)
        level = await driver.level(n, args.find_window)
        why = degraded(args, level)
        result.found.append((level, why))
        print(f"    {why or 'ok'}", flush=True)
        return why is None

    if args.find_max and not result.main.crashed:
        n = args.find_start
        while n <= args.find_limit and await attempt(n):
            n = max(n + 1, round(n * args.find_step))
        # Between the last level that held and the first that did not: halve the gap a few times.
        for _ in range(args.find_refine):
            if any(lv.crashed for lv, _ in result.found):
                break
            lo, hi = result.limits()
            if hi is None or hi - lo <= max(2, lo // 10):
                break
            await attempt((lo + hi) // 2)
        result.found.sort(key=lambda found: found[0].streams)
    return result


def run_design(args: argparse.Namespace, design: Design, pg: PostgresServer, upstream: str, fake_pid: int,
               logs: Path) -> Result:  # fmt: skip
    url = pg.create_database(f"scale_{design.name}")
    per_user = math.ceil(chats_needed(args, args.streams, args.duration) / args.users)
    began = time.monotonic()
    made = design.setup(url, True, args.users, per_user, logs)
    print(
        f"{design.name}: {design.rev} from {design.tree} (ytresearch: {made['ytresearch']},"
        f" streaming_service: {made['streaming_service']}); database set up in"
        f" {time.monotonic() - began:.0f} s",
        flush=True,
    )
    env = service_env_for(url, upstream, DEFAULT_API_KEY, YTR_MODEL="claude-sonnet-4-6", **design.env)
    servers = [Server(design, env, logs, i) for i in range(args.servers)]
    stats = Stats(pg, f"scale_{design.name}")
    try:
        began = time.monotonic()
        for s in servers:
            s.start()
        for s in servers:
            assert s.proc is not None
            wait_http(s.base_url + "/health", timeout=120, proc=s.proc)
        print(f"  {len(servers)} servers up in {time.monotonic() - began:.0f} s", flush=True)
        pool = Pool()
        pool.add(made["users"])
        driver = Driver(args, servers, pool, stats)
        driver.fake_pid = fake_pid
        return asyncio.run(drive(args, design, driver, url, logs))
    finally:
        for s in servers:
            s.stop()
        stats.close()


def parse_env(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep:
            raise SystemExit(f"--new-env wants NAME=VALUE, not {value!r}")
        out[name] = setting
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--streams", type=int, default=30, help="concurrent streams (each: owner + cross follower)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the steady window")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--deltas", type=int, default=500, help="deltas of 8 characters per reply")
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second per reply")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--baseline-rev", default="bcc5414", help="today's design: a git revision")
    parser.add_argument("--designs", default="today,new", help="which to run: today, new or both")
    parser.add_argument(
        "--new-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more settings for the new design",
    )
    parser.add_argument("--find-max", action="store_true", help="then raise the streams until it degrades")
    parser.add_argument("--find-start", type=int, default=16)
    parser.add_argument("--find-step", type=float, default=1.4)
    parser.add_argument("--find-limit", type=int, default=400)
    parser.add_argument("--find-window", type=float, default=10.0)
    parser.add_argument(
        "--find-refine", type=int, default=2, help="levels halving the gap at the limit, for --find-max"
    )
    parser.add_argument("--max-first-token", type=float, default=2000.0, help="ms, p99, for --find-max")
    parser.add_argument("--max-lag", type=float, default=2000.0, help="ms, cross lag p99, for --find-max")
    args = parser.parse_args()
    if args.servers < 2:
        parser.error("--servers must be at least 2 (a cross follower needs another process)")
    wanted = [d.strip() for d in args.designs.split(",") if d.strip()]
    if not wanted or set(wanted) - {"today", "new"}:
        parser.error("--designs: today, new or today,new")

    print(f"machine: {machine()}", flush=True)
    most = max(args.streams, args.find_limit if args.find_max else 0)
    print(f"open-file limit {raise_nofile(most * 8 + 1000)}", flush=True)
    logs, started = log_dir("scale"), time.monotonic()
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        designs = []
        for name in wanted:
            if name == "today":
                tree, commit = stack.enter_context(worktree(args.baseline_rev, logs))
                designs.append(Design("today", tree, commit))
            else:
                designs.append(Design("new", REPO, working_tree_rev(), parse_env(args.new_env)))
        pg = PostgresServer().start()
        stack.callback(pg.stop)
        args.pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        upstream, fake_pid = stack.enter_context(fake_upstream(args.deltas, 8, args.rate, logs=logs))
        for design in designs:
            results.append(run_design(args, design, pg, upstream, fake_pid, logs))
    report(args, results)
    print(f"\nserver logs: {logs}; took {time.monotonic() - started:.0f} s; {machine()}")
    broken = [r.design.name for r in results if r.main.errors]
    if broken:
        print(f"errors in: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
