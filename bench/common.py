"""Shared helpers for benchmarks: percentiles, a table printer, processes and their /proc figures,
the fake upstream and bare relay processes, databases and an HTTP client for many streams (the
benchmarks read SSE with the client's parser, ``ytr.sse``). Benchmarks print figures and ratios
against a baseline measured in the same run; they never pass or fail on timings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50) * 1000,
        "p99": percentile(values, 99) * 1000,
        "mean": statistics.fmean(values) * 1000 if values else float("nan"),
    }


def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)) + " |"  # noqa: E731
    out = [f"\n{title}", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------- processes and /proc
# The streaming benchmarks run each server in its own process and read its CPU time and memory from
# /proc (no psutil: the project's dependencies are fixed).

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live descendants and the children it reaped (e.g. PostgreSQL's
    postmaster and its backends)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry)] = int(_stat(int(entry))[1])
    family, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    total = 0.0
    for member in family:
        with contextlib.suppress(OSError):
            f = _stat(member)
            total += sum(int(x) for x in f[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine() -> str:
    """CPUs, load and CPU pressure (the share of time some task waited for a CPU): the box is shared,
    so every benchmark prints how busy it was."""
    load = os.getloadavg()
    pressure = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open("/proc/pressure/cpu") as f:
            avg10 = f.readline().split()[1].split("=")[1]
        pressure = f", CPU pressure {avg10}% (10 s)"
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}{pressure}, "
        f"Python {sys.version.split()[0]}"
    )


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered {url}")


def log_dir(name: str) -> Path:
    """Where a benchmark's servers write their logs (kept after the run, for reading errors)."""
    path = (
        Path(tempfile.gettempdir()) / "ytr-bench" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


class ModuleProcess:
    """``python -m <module> <args>`` in its own process, logging to a file; the first stdout line
    (if ``announce``) is read back, e.g. the port a server bound."""

    def __init__(
        self, module: str, args: list[str], env: dict[str, str] | None = None, log: Path | None = None
    ):
        self.module, self.args = module, args
        self.env = {**os.environ, **(env or {})}
        self.log_path = log or log_dir("process") / f"{module}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, announce: bool = False) -> str | None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=self.env,
            stdout=subprocess.PIPE if announce else log,
            stderr=log,
        )
        if not announce:
            return None
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{self.module} exited: {self.log_path.read_text()[-2000:]}")
        return line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def quiet_metrics() -> Any:
    """Metrics for an app served inside a benchmark's own process: the real EMF documents are
    built (their cost is part of the path measured) but not printed among the results. None
    (the container's default) when this tree has no EMF adapter."""
    try:
        from ytresearch.observability.emf import EmfMetrics
    except ImportError:
        return None
    return EmfMetrics(write=lambda _line: None)


@contextlib.contextmanager
def fake_upstream(
    chunks: int,
    chunk_size: int = 8,
    chunks_per_second: float = 50.0,
    delay_first: float = 0.0,
    logs: Path | None = None,
) -> Iterator[tuple[str, int]]:
    """The fake Anthropic server (tests/fakes) in its own process: (base_url, pid)."""
    proc = ModuleProcess(
        "bench.fake_upstream",
        [
            "--chunks",
            str(chunks),
            "--chunk-size",
            str(chunk_size),
            "--chunks-per-second",
            str(chunks_per_second),
            "--delay-first",
            str(delay_first),
        ],
        log=logs / "fake_upstream.log" if logs else None,
    )
    port = proc.start(announce=True)
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.stop()


@contextlib.contextmanager
def bare_relay(upstream: str, api_key: str, logs: Path | None = None) -> Iterator[tuple[str, int]]:
    """The baseline: a minimal Starlette relay (bench/bare_relay.py) in its own process."""
    from tests.support.postgres import free_port

    port = free_port()
    proc = ModuleProcess(
        "bench.bare_relay",
        ["--port", str(port), "--upstream", upstream, "--api-key", api_key],
        log=logs / "bare_relay.log" if logs else None,
    )
    proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health", proc=proc.proc)
        yield base, proc.pid
    finally:
        proc.stop()


@contextlib.contextmanager
def database(kind: str, tmp: str) -> Iterator[tuple[str, int | None]]:
    """A migrated, empty database: ``sqlite`` (a file in ``tmp``) or ``postgres`` (a throwaway
    server, tests/support/postgres.py). Yields its URL and, for PostgreSQL, the postmaster's pid
    (whose process tree does the database's work)."""
    from tests.support.settings import test_settings
    from ytresearch.db.migrations import upgrade_to_head

    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
        upgrade_to_head(test_settings(url))
        yield url, None
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r} (sqlite or postgres)")
    from tests.support.postgres import PostgresServer

    pg = PostgresServer().start()
    try:
        url = pg.create_database("bench")
        upgrade_to_head(test_settings(url))
        pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        yield url, pid
    finally:
        pg.stop()


def postgres_available() -> bool:
    try:
        from tests.support.postgres import _bin_dir

        _bin_dir()
        return True
    except Exception:
        return False


def user_and_sessions(database_url: str, sessions: int) -> tuple[str, list[str]]:
    """A user (its API key) and ``sessions`` fresh research sessions, written straight to the
    database (setup, not measured). A fresh session per chat keeps every prompt the same size."""
    return users_and_sessions(database_url, 1, sessions)[0]


def users_and_sessions(database_url: str, users: int, sessions: int) -> list[tuple[str, list[str]]]:
    """``users`` users, each with its API key and ``sessions`` fresh research sessions."""
    from tests.support.settings import test_settings
    from tests.support.users import make_user
    from ytresearch.bootstrap import Container

    container = Container(test_settings(database_url))
    try:
        made = []
        for _ in range(users):
            user, key = make_user(container)
            with container.store.transaction() as repo:
                made.append((key, [str(repo.add_session(user.id, f"bench {i}").id) for i in range(sessions)]))
        if container.engine.dialect.name == "postgresql":
            # Statistics as autovacuum would have them on a live database: a fresh one has none,
            # and plans made without them (prepared statements keep theirs) are not production's.
            with container.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        return made
    finally:
        container.engine.dispose()


def more_sessions(database_url: str, key: str, sessions: int) -> list[str]:
    from tests.support.settings import test_settings
    from ytresearch.bootstrap import Container
    from ytresearch.services.users import authenticate

    container = Container(test_settings(database_url))
    try:
        user = authenticate(container.store, key)
        with container.store.transaction() as repo:
            return [str(repo.add_session(user.id, f"bench {i}").id) for i in range(sessions)]
    finally:
        container.engine.dispose()


# Per-user limits a benchmark's load would hit (one user drives all of it). Lifted, not measured.
LIFTED_LIMITS = {
    "max_active_requests_per_user": 100_000,
    "chat_posts_per_minute": 1_000_000,
    "session_creates_per_minute": 1_000_000,
    "video_adds_per_minute": 1_000_000,
}


def lifted_limits() -> dict[str, int]:
    """Settings overrides lifting the per-user limits this tree has."""
    from ytresearch.config import Settings

    return {k: v for k, v in LIFTED_LIMITS.items() if k in Settings.model_fields}


def service_env_for(database_url: str, upstream: str, api_key: str, **extra: Any) -> dict[str, str]:
    """Environment of ``python -m streaming_service.serve`` for benchmarks: tests' service_env
    with production polling (100 ms) and limits lifted so the load is not refused."""
    from tests.support.processes import service_env

    values: dict[str, Any] = {
        "YTR_STREAM_POLL_SECONDS": "0.1",
        "YTR_STREAM_STALE_AFTER_SECONDS": "10",
        **{f"YTR_{name.upper()}": str(value) for name, value in LIFTED_LIMITS.items()},
        "YTR_LLM_MAX_RETRIES": "3",  # the product's default
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    values.update(extra)
    return service_env(database_url, upstream, api_key, **values)


def async_client(connections: int, timeout: float = 120.0, **kw: Any) -> httpx.AsyncClient:
    """One client for many concurrent streams. Idle connections are dropped after 2 s, before
    uvicorn's 5 s keep-alive timeout closes them under us (a reused connection the server just
    closed fails with ReadError: a client artefact, not a server error)."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=connections + 50,
            max_keepalive_connections=connections + 50,
            keepalive_expiry=2.0,
        ),
        timeout=httpx.Timeout(timeout, connect=30.0, pool=60.0),
        **kw,
    )


async def gather_limited(coros: list[Any], limit: int) -> list[Any]:
    """Run coroutines with at most ``limit`` at once (results in order; exceptions returned)."""
    gate = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check
