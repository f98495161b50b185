"""The NOTIFY commit with ``fsync=on`` (issue 22): what ``pg_notify`` costs a commit when the WAL is
really flushed, and how many notifying commits a second several connections get through.

Why: bench/scale.py runs PostgreSQL with ``fsync=off``, which hides the one cost LISTEN/NOTIFY adds.
A transaction that has called NOTIFY takes a server-wide lock in ``PreCommit_Notify`` and holds it
through its commit, so every notifying commit of every process goes one after another. With the
notify inside the log's write, the lock covers the write's WAL flush; in a transaction of its own
(what the log writer sends now) it covers only the in-memory part of an asynchronous commit.
docs/scaling.md uses the notify-only rate measured here as the lock's ceiling C.

How: a throwaway PostgreSQL (initdb/pg_ctl from the server binaries tests/support/postgres.py
finds) started with ``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``; a table
shaped like ``chat_events`` (uuid, int, text, jsonb, timestamptz; primary key on the first two)
and one listening connection that reads every notification. Three transactions, through psycopg:

* (a) write: INSERT one ~280-byte JSON row, COMMIT (the baseline);
* (b) write + NOTIFY: the same with ``SELECT pg_notify('c', 'x')`` inside it (the old placement);
* (c) NOTIFY only: just ``SELECT pg_notify('c', 'x')`` (what the log writer sends now).

First ``--iterations`` of each on one connection after ``--warmup`` (whole transaction and the
COMMIT alone); then ``--connections`` threads, one connection each, for ``--seconds`` per case,
sampling ``pg_stat_activity``'s wait events every 10 ms; then pgbench (a C client, less overhead
than Python threads) with the same transactions and ``BEGIN; SELECT 1; COMMIT;`` as the floor.
Ratios: (b) against (a), what NOTIFY adds to a write; (c) against (b), what moving it out gives.

Run: .venv/bin/python -m bench.notify_commit [--iterations 3000] [--seconds 5] [--connections 8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from bench.common import fmt, machine, percentile, postgres_available, table
from tests.support.postgres import PostgresServer, _run_as

ROW = json.dumps({"text": "x" * 200, "parts": [8, 8, 16, 24, 8, 8, 16, 40, 32, 40], "kind": "checkpoint"})
INSERT = "INSERT INTO log (request_id, seq, data) VALUES (gen_random_uuid(), 1, %s::jsonb)"
NOTIFY = "SELECT pg_notify('c', 'x')"
CASES = {"a": [INSERT], "b": [INSERT, NOTIFY], "c": [NOTIFY]}
LABELS = {"a": "(a) write", "b": "(b) write + NOTIFY", "c": "(c) NOTIFY only", "select 1": "BEGIN; SELECT 1"}
# Each case against the one it is read against: what NOTIFY adds, then what moving it out gives.
AGAINST = {"b": "a", "c": "b"}
SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "commit_delay")


class DurablePostgres(PostgresServer):
    """tests/support/postgres.py's throwaway server, but flushing its WAL as production does."""

    def start_again(self) -> None:
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=on -c synchronous_commit=on "
            "-c full_page_writes=on -c max_connections=100"
        )
        pg_ctl = str(self.bin / "pg_ctl")
        _run_as(
            self.user,
            [pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options, "start"],
        )

    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"


def one_txn(conn: psycopg.Connection, case: str) -> tuple[float, float]:
    """One transaction of ``case``: (seconds for all of it, seconds for the COMMIT alone)."""
    start = time.perf_counter()
    with conn.cursor() as cur:
        for stmt in CASES[case]:
            cur.execute(stmt, (ROW,) if "%s" in stmt else None)
    before_commit = time.perf_counter()
    conn.commit()
    end = time.perf_counter()
    return end - start, end - before_commit


def sequential(dsn: str, case: str, iterations: int, warmup: int) -> tuple[list[float], list[float]]:
    whole: list[float] = []
    commit: list[float] = []
    with psycopg.connect(dsn) as conn:
        for _ in range(warmup):
            one_txn(conn, case)
        for _ in range(iterations):
            w, c = one_txn(conn, case)
            whole.append(w)
            commit.append(c)
    return whole, commit


class Rate(NamedTuple):
    commits: int
    per_second: float
    latencies: list[float]
    waits: str


def scalar(conn: psycopg.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def concurrent(dsn: str, case: str, connections: int, seconds: float) -> Rate:
    """``connections`` threads committing ``case`` back to back for ``seconds``, while a monitor
    connection counts what the active ones wait on (mean sessions per sample)."""
    conns = [psycopg.connect(dsn) for _ in range(connections)]
    counts = [0] * connections
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[BaseException] = []
    stop = threading.Event()
    start = threading.Barrier(connections + 1)
    waits: dict[str, int] = {}
    samples = 0

    def worker(i: int) -> None:
        try:
            start.wait()
            while not stop.is_set():
                latencies[i].append(one_txn(conns[i], case)[0])
                counts[i] += 1
        except BaseException as exc:  # reported after the run, so a failure is not lost in a thread
            errors.append(exc)
            stop.set()

    def sampler() -> None:
        nonlocal samples
        try:
            with psycopg.connect(dsn, autocommit=True) as mon:
                while not stop.is_set():
                    rows = mon.execute(
                        "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU/none') "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend' "
                        "AND pid <> pg_backend_pid() AND state = 'active'"
                    ).fetchall()
                    samples += 1
                    for (wait,) in rows:
                        waits[wait] = waits.get(wait, 0) + 1
                    time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    monitor = threading.Thread(target=sampler)
    try:
        start.wait(timeout=30)
        began = time.perf_counter()
        monitor.start()
        stop.wait(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        monitor.join()
    finally:
        stop.set()
        start.abort()
        for c in conns:
            c.close()
    if errors:
        raise RuntimeError(f"case ({case}) failed on a connection: {errors[0]!r}") from errors[0]
    by_wait = sorted(waits.items(), key=lambda kv: -kv[1])
    return Rate(
        sum(counts),
        sum(counts) / elapsed,
        [x for xs in latencies for x in xs],
        ", ".join(f"{k} {v / max(samples, 1):.2f}" for k, v in by_wait[:3]) or "-",
    )


def pgbench(
    pg: DurablePostgres, name: str, body: str, connections: int, seconds: int, tmp: Path
) -> dict[str, float]:
    script = tmp / f"{name.replace(' ', '_')}.sql"
    script.write_text(body)
    threads = max(1, min(connections, os.cpu_count() or 1))
    cmd = [str(pg.bin / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    cmd += ["-c", str(connections), "-j", str(threads), "-T", str(seconds), "-f", str(script), "postgres"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench ({name}) exited with {done.returncode}: {done.stderr[-1000:]}")

    def number(pattern: str) -> float:
        found = re.search(pattern, done.stdout, re.MULTILINE)
        return float(found.group(1)) if found else float("nan")

    return {
        "tps": number(r"^tps = ([\d.]+)"),
        "latency": number(r"^latency average = ([\d.]+) ms"),
        "transactions": number(r"^number of transactions actually processed: (\d+)"),
    }


def ratio(value: float, base: float) -> str:
    """value / base, or "-" when there is no base (the baseline's row)."""
    return f"{value / base:.2f}x" if base and base == base and value == value else "-"


def against(case: str) -> str:
    return f"({AGAINST[case]})" if case in AGAINST else "baseline"


class Listener:
    """One connection LISTENing on the channel and reading every notification, like a task's."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("LISTEN c")
        self.received = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with contextlib.suppress(psycopg.Error):
            while not self.done.is_set():
                for _ in self.conn.notifies(timeout=0.2):
                    self.received += 1

    def drain(self, timeout: float = 10.0) -> int:
        """Wait until no more notifications arrive (the listener may trail the senders)."""
        deadline, last = time.monotonic() + timeout, -1
        while self.received != last and time.monotonic() < deadline:
            last = self.received
            time.sleep(0.5)
        return self.received

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.conn.close()


def one_connection(args: argparse.Namespace, dsn: str) -> int:
    """The three cases one after the other on one connection; returns the notifications sent."""
    rows, p50s, sent = [], {}, 0
    for case in CASES:
        whole, commit = sequential(dsn, case, args.iterations, args.warmup)
        sent += (args.iterations + args.warmup) * (NOTIFY in CASES[case])
        p50s[case] = (percentile(whole, 50), percentile(commit, 50))
        ref = p50s.get(AGAINST.get(case, ""), (float("nan"), float("nan")))
        ms = [fmt(percentile(xs, p) * 1000, 3) for xs in (whole, commit) for p in (50, 99)]
        means = [fmt(statistics.fmean(xs) * 1000, 3) for xs in (whole, commit)]
        ratios = [ratio(p50s[case][0], ref[0]), ratio(p50s[case][1], ref[1])]
        rows.append(
            [LABELS[case], len(whole), ms[0], ms[1], means[0], ms[2], ms[3], means[1], against(case), *ratios]
        )
    header = ["case", "n", "txn p50", "txn p99", "txn mean", "COMMIT p50", "COMMIT p99", "COMMIT mean"]
    title = f"One connection, {args.iterations} transactions per case after {args.warmup} warm-ups (ms)"
    print(table(title, [*header, "against", "txn p50 ratio", "COMMIT p50 ratio"], rows))
    return sent


def many_connections(args: argparse.Namespace, dsn: str) -> int:
    rows, rates, sent = [], {}, 0
    for case in CASES:
        r = concurrent(dsn, case, args.connections, args.seconds)
        sent += r.commits * (NOTIFY in CASES[case])
        rates[case] = r.per_second
        ref = rates.get(AGAINST.get(case, ""), float("nan"))
        p50, p99 = (fmt(percentile(r.latencies, p) * 1000, 2) for p in (50, 99))
        rows.append(
            [
                LABELS[case],
                r.commits,
                f"{r.per_second:,.0f}",
                p50,
                p99,
                against(case),
                ratio(r.per_second, ref),
                r.waits,
            ]
        )
    header = ["case", "commits", "commits/s", "txn p50 ms", "txn p99 ms", "against", "commits/s ratio"]
    title = f"{args.connections} connections (Python threads), {args.seconds:g} s per case"
    print(table(title, [*header, "active sessions waiting on (mean per sample, top 3)"], rows))
    return sent


def with_pgbench(args: argparse.Namespace, pg: DurablePostgres) -> int:
    if not (pg.bin / "pgbench").exists():
        print(f"\n(no pgbench in {pg.bin}: the C client's figures are skipped)")
        return 0
    scripts = {
        case: "BEGIN;\n" + "".join(f"{s};\n" for s in stmts).replace("%s", f"'{ROW}'") + "COMMIT;\n"
        for case, stmts in CASES.items()
    }
    scripts["select 1"] = "BEGIN;\nSELECT 1;\nCOMMIT;\n"
    seconds = max(1, round(args.seconds))
    rows: list[list[object]] = []
    tps: dict[str, float] = {}
    sent = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in scripts.items():
            r = pgbench(pg, name, body, args.connections, seconds, Path(tmp))
            tps[name] = r["tps"]
            if name in CASES and NOTIFY in CASES[name] and r["transactions"] == r["transactions"]:
                sent += int(r["transactions"])
            ref = tps.get(AGAINST.get(name, ""), float("nan"))
            vs = against(name) if name in CASES else "floor"
            rows.append([LABELS[name], f"{r['tps']:,.0f}", fmt(r["latency"], 3), vs, ratio(r["tps"], ref)])
    title = f"pgbench, {args.connections} clients, {seconds} s per script"
    print(table(title, ["script", "transactions/s", "latency mean ms", "against", "tps ratio"], rows))
    print(f"(c) ran at {ratio(tps['c'], tps['select 1'])} the rate of an empty transaction")
    return sent


def measure(args: argparse.Namespace, pg: DurablePostgres) -> None:
    dsn = pg.conninfo()
    with psycopg.connect(dsn, autocommit=True) as c:
        version = scalar(c, "SHOW server_version")
        shown = [f"{s} = {scalar(c, f'SHOW {s}')}" for s in SETTINGS]
        c.execute(
            "CREATE TABLE log (request_id uuid, seq int, type text DEFAULT 'token', data jsonb, "
            "created_at timestamptz DEFAULT now(), PRIMARY KEY (request_id, seq))"
        )
    print(f"PostgreSQL {version} ({pg.bin}): {', '.join(shown)}")
    print(f"row: {len(ROW)} bytes of JSON; psycopg {psycopg.__version__}; one listener connection")
    listener = Listener(dsn)
    try:
        sent = one_connection(args, dsn) + many_connections(args, dsn) + with_pgbench(args, pg)
        received = listener.drain()
    finally:
        listener.close()
    print(f"\nnotifications: {sent:,} notifying transactions committed, {received:,} read by the listener")
    with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as c:
        wal = c.execute("SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal").fetchone()
        if wal:
            print(f"pg_stat_wal: {wal[0]:,} records, {int(wal[1]):,} bytes, {wal[2]:,} syncs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=3000, help="transactions per case, one connection")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured transactions before each case")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case, concurrent and pgbench")
    parser.add_argument(
        "--connections", type=int, default=8, help="concurrent connections (and pgbench clients)"
    )
    args = parser.parse_args()
    if args.iterations < 1 or args.connections < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--iterations and --connections must be >= 1, --seconds > 0, --warmup >= 0")

    print(f"machine: {machine()}")
    if not postgres_available():
        print("PostgreSQL server not installed (scripts/ensure-test-deps.sh): nothing to measure")
        return
    pg = DurablePostgres()
    try:
        pg.start()
        measure(args, pg)
    finally:
        pg.stop()
    print(
        "\n(b) vs (a): what NOTIFY inside the write costs; (c) vs (b): what a notify-only transaction gives."
        "\nFigures, not pass/fail: the disk sets (a) and (b), the CPUs set (c) (it flushes no WAL)."
    )


if __name__ == "__main__":
    main()
