"""Run every benchmark in bench/ with small sizes (``make bench``), one process each, one after
the other (they share the machine). Modules in bench/ that are not listed below and are not
helpers are run with their own defaults, so a new benchmark is never skipped silently.

Run: .venv/bin/python -m bench.run_all [--full] [--only NAME[,NAME]] [--timeout SECONDS]

``--full`` runs each benchmark with its own (larger) defaults; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine

# Small sizes, so the whole set is a quick check (its duration: docs/benchmarks.md).
SMALL: dict[str, list[str]] = {
    "lambda_cold_start": ["10"],
    "post_video_latency": ["100"],
    "chat_latency": ["--requests", "30", "--cancels", "10"],
    "relay_overhead": ["--levels", "1,50", "--rounds", "5,2", "--chunks", "50"],
    "capacity": ["--streams", "200", "--hold", "5"],
    "resume": ["--requests", "15"],
    "chat_cpu": ["--probes", "2", "--probe-seconds", "6", "--blocks", "1", "--duration", "10"],
    "protocols": ["--quick"],
    "scale": ["--streams", "8", "--duration", "8", "--deltas", "250"],
    "notify_commit": ["--iterations", "300", "--seconds", "2"],
}
HELPERS = {
    "__init__",
    "common",
    "run_all",
    "baseline_hello",
    "fake_upstream",
    "bare_relay",
    "bare_two_step",
    "chat_load",
    "profile_costs",
    "raw_http",
}


def benchmarks() -> list[str]:
    found = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem not in HELPERS)
    return [name for name in SMALL if name in found] + [name for name in found if name not in SMALL]


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="each benchmark's own default sizes")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per benchmark")
    args = parser.parse_args()

    names = benchmarks()
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        unknown = wanted - set(names)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(names)}")
        names = [n for n in names if n in wanted]
    print(f"machine: {machine()}", flush=True)
    outcomes: list[tuple[str, str, float]] = []
    for name in names:
        extra = [] if args.full else SMALL.get(name, [])
        cmd = [sys.executable, "-m", f"bench.{name}", *extra]
        print(f"\n=== bench.{name} {' '.join(extra)}".rstrip(), flush=True)
        start = time.monotonic()
        # Its own process group, so a timeout also ends the servers it started.
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            code = proc.wait(timeout=args.timeout)
            outcome = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            stop_group(proc)
            outcome = f"timed out after {args.timeout:.0f} s"
        except KeyboardInterrupt:
            stop_group(proc)
            raise
        outcomes.append((name, outcome, time.monotonic() - start))
    print("\n=== summary")
    for name, outcome, seconds in outcomes:
        print(f"  {name:<20} {outcome:<24} {seconds:6.0f} s")
    return 0 if all(o == "ok" for _, o, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
