"""Group a py-spy profile of a loaded server into costs per chat (used by bench/chat_cpu.py).

Input: ``py-spy record --gil --format raw --threads --full-filenames``, one line per distinct
stack, ``thread (TID): NAME;frame;frame;... COUNT``, root first, each frame ``function (path:line)``.
``--gil`` samples only the thread holding the GIL: on this server that is where the CPU goes (perf
put 84 % of its on-CPU samples in libpython, 2 % in uvloop, 7 % in the kernel), while py-spy's
other mode counts any thread the kernel calls runnable, and on a busy 2-core box that is mostly
threads waiting for a CPU or the GIL (a third of the samples in the event loop's ``Runner.run``
and in pg8000's socket reads). Time spent in C with the GIL (the json encoder, pydantic-core,
uvloop's callbacks) shows under the Python frame that called it.

Two views, each sample counted once:

* **What it is for**: the stack is read from the leaf up and the first frame one of ``PURPOSES``
  names decides (so ``json.dumps`` under ``StreamEvent.sse`` is SSE rendering, an ``INSERT`` under
  the write-behind is the event log, a socket write under the SSE response is uvicorn). Only when
  none names a frame do ``FALLBACKS`` (the database layer, pydantic, threads, asyncio) decide.
* **Which code does the work**: the package of the leaf frame.

Samples become milliseconds per chat: each thread's samples share that thread's CPU time measured
from /proc over the same block (``costs``), divided by the chats of the block; without those
figures, each sample is an equal share of ``--per-chat-ms``.

    .venv/bin/python -m bench.profile_costs /tmp/ytr-bench/chat_cpu-.../ours.pyspy.txt --per-chat-ms 40
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import CLOCK_TICKS, table

PURPOSES: list[tuple[str, tuple[str, ...]]] = [
    # Python frames under which uvloop's C code runs: polling, socket reads and writes, callbacks.
    ("event loop in C (uvloop: polling, socket I/O)", ("asyncio/runners.py",)),
    (
        "logging and EMF metrics (JSON lines, log writer)",
        ("/logging/__init__.py", "observability/", "aws_lambda_powertools/"),
    ),
    ("event log: write-behind INSERTs", ("chat_requests/event_log.py",)),
    ("heartbeat and cleanup loops", ("chat_requests/cleanup.py",)),
    (
        "chat start: limits, message, context, request row",
        ("services/context.py", "services/limits.py", "RequestRunner.begin"),
    ),
    ("reply end: assistant message saved, request row finished", ("services/endings.py",)),
    ("authentication (API key lookup)", ("web/auth.py", "services/users.py", "web/jwt.py")),
    ("middleware (request id, log line, metrics, limits)", ("web/middleware.py", "web/errors.py")),
    (
        "SSE rendering (StreamEvent.sse, EventStreamResponse)",
        ("ytresearch/events.py", "web/sse.py", "render_sse", "sse_frames"),
    ),
    (
        "routes, manager, runner (start, task)",
        ("streaming_service/routes.py", "chat_requests/manager.py", "chat_requests/runner.py"),
    ),
    ("reader: follow, access check", ("chat_requests/readers.py",)),
    ("live fan-out (emit, wake, wait)", ("chat_requests/live.py",)),
    ("chat engine (generate, coalescer)", ("services/chat.py",)),
    ("model adapter (our code over the SDK)", ("llm/anthropic_model.py",)),
    ("bare relay's own code", ("bench/bare_two_step.py",)),
    ("anthropic SDK (SSE decoding, stream helpers)", ("/anthropic/",)),
    (
        "upstream HTTP client (httpx, httpcore, h11)",
        ("/httpx", "/httpcore", "/h11/", "/sniffio/"),
    ),
    ("HTTP server (uvicorn, httptools)", ("/uvicorn/",)),
    ("FastAPI / Starlette (routing, dependencies, validation)", ("/fastapi/", "/starlette/")),
]
FALLBACKS: list[tuple[str, tuple[str, ...]]] = [
    ("database (SQLAlchemy, driver) outside the above", ("/sqlalchemy/", "/pg8000/", "sqlite3/", "/scramp/")),
    ("pydantic outside the above", ("/pydantic/",)),
    (
        "anyio (cancel scopes, worker threads), thread pools, queues",
        ("concurrent/futures/", "/threading.py", "asyncio/threads.py", "/queue.py", "/anyio/"),
    ),
    ("asyncio scheduling (event loop)", ("/asyncio/", "uvloop")),
]
# A leaf in one of these is a thread blocked (or just woken, waiting for a CPU): py-spy reads a
# thread's state from /proc and counts a runnable one as active. Its CPU is the thread's own, below.
WAITS = ("Condition.wait (", "_worker (", "WorkerThread.run (", "Event.wait (", "Thread.join (")
FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::\d+)?\)$")
THREAD = re.compile(r"thread \((\d+)\)(?::\s*(.*))?$")


def parse(path: Path) -> list[tuple[int, str, list[str], int]]:
    """(thread id, thread name, frames root first, samples) per line; names lose their numbers
    (``uvloop``: the default executor's workers, ``AnyIO worker thread``: FastAPI's)."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if m := THREAD.match(frames[0]):
            name = re.sub(r"[_ ]?\d+$", "", m.group(2) or "?")
            out.append((int(m.group(1)), name, frames[1:], int(count)))
        else:
            out.append((0, "?", frames, int(count)))
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    """utime + stime of each live thread of a process, seconds, from /proc/<pid>/task."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def purpose(frames: list[str]) -> str:
    for rules in (PURPOSES, FALLBACKS):
        for frame in reversed(frames):
            for name, patterns in rules:
                if any(p in frame for p in patterns):
                    return name
    return "other: " + package(frames[-1] if frames else "")


# SQLAlchemy's own time by layer (the leaf frame's module), for samples whose leaf is in it.
SQLALCHEMY_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("statement building (select(), where(), coercions)", ("sql/coercions", "sql/elements", "sql/selectable",
     "sql/operators", "sql/default_comparator", "sql/base", "sql/dml", "sql/functions", "sql/type_api",
     "sql/annotation", "sql/sqltypes", "<string>")),
    ("cache keys", ("sql/cache_key", "sql/traversals", "sql/visitors")),
    ("compiling", ("sql/compiler",)),
    ("Core execution (engine, dialect, types)", ("engine/base", "engine/default", "engine/processors",
     "dialects/")),
    ("result rows", ("engine/result", "engine/cursor", "engine/row")),
    ("ORM query and loading", ("orm/session", "orm/context", "orm/loading", "orm/query", "orm/strategies",
     "orm/path_registry", "orm/interfaces", "orm/util", "orm/base")),
    ("ORM flush (unit of work, instance state)", ("orm/unitofwork", "orm/persistence", "orm/mapper",
     "orm/state", "orm/attributes", "orm/identity", "orm/instrumentation", "orm/dependency", "orm/sync",
     "orm/state_changes", "orm/decl")),
    ("connection pool", ("pool/",)),
    ("events, log checks, utilities", ("event/", "log.py", "util/")),
]  # fmt: skip


def sqlalchemy_layer(frame: str) -> str:
    path = frame.split("/sqlalchemy/", 1)[1]
    return next((name for name, parts in SQLALCHEMY_LAYERS if any(p in path for p in parts)), "other")


def package(frame: str) -> str:
    """Where a frame's code lives: a site package, a stdlib module, or ours."""
    m = FRAME.match(frame)
    path = m.group("path") if m else frame
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    for ours in ("ytresearch/", "streaming_service/", "bench/"):
        if ours in path:
            rest = path.split(ours)[1]
            sub = rest.split("/")[0].removesuffix(".py")
            return f"{ours.rstrip('/')}.{sub}"
    if re.search(r"/lib/python3\.\d+/", path):
        mod = re.split(r"/lib/python3\.\d+/", path)[1].split("/")[0].removesuffix(".py")
        return f"stdlib {mod}"
    return path or "?"


@dataclass
class Costs:
    """Milliseconds per chat by purpose, by leaf package and by thread."""

    by_purpose: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    by_package: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    inside: dict[str, defaultdict[str, float]] = field(default_factory=dict)
    threads: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    sqlalchemy: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: int = 0
    waits: int = 0

    @property
    def total(self) -> float:
        return sum(self.by_purpose.values())


def costs(
    path: Path, per_chat_ms: float, chats: int = 0, cpu_by_thread: dict[int, float] | None = None
) -> Costs:
    """Each sample weighs its thread's measured CPU over its thread's samples (``cpu_by_thread``,
    seconds over ``chats`` chats), so a thread py-spy over-samples (runnable, waiting for a CPU on
    a busy box) is not over-counted; without them, every sample weighs the same share of
    ``per_chat_ms``. Samples at a blocking wait are left out (their thread's CPU goes to the rest)."""
    samples = parse(path)
    out = Costs(samples=sum(n for *_, n in samples))
    kept = [(tid, name, frames, n) for tid, name, frames, n in samples if frames]
    kept = [x for x in kept if not any(x[2][-1].startswith(w) for w in WAITS)]
    out.waits = out.samples - sum(n for *_, n in kept)
    per_thread: Counter[int] = Counter()
    for tid, _, _, n in kept:
        per_thread[tid] += n
    total = sum(per_thread.values())
    if cpu_by_thread and chats:
        weight = {tid: cpu_by_thread.get(tid, 0.0) * 1000 / chats / n for tid, n in per_thread.items()}
        unsampled = sum(cpu for tid, cpu in cpu_by_thread.items() if tid not in per_thread) * 1000 / chats
        if unsampled:
            out.by_purpose["threads with no samples kept"] += unsampled
    else:
        weight = {tid: per_chat_ms / total for tid in per_thread}
    for tid, name, frames, n in kept:
        what, where, ms = purpose(frames), package(frames[-1]), n * weight[tid]
        out.by_purpose[what] += ms
        out.by_package[where] += ms
        out.inside.setdefault(what, defaultdict(float))[where] += ms
        out.threads[name] += ms
        if "/sqlalchemy/" in frames[-1]:
            out.sqlalchemy[sqlalchemy_layer(frames[-1])] += ms
    return out


def largest(values: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: -item[1])


def print_costs(
    path: Path,
    per_chat_ms: float,
    chats: int = 0,
    cpu_by_thread: dict[int, float] | None = None,
    top: int = 18,
) -> dict[str, float]:
    """Print both views as ms per chat; returns the purposes' ms per chat."""
    c = costs(path, per_chat_ms, chats, cpu_by_thread)
    if not c.total:
        print(f"no samples in {path}")
        return {}
    share = lambda ms: f"{ms / c.total:.1%}"  # noqa: E731
    rows: list[list[object]] = []
    for name, ms in largest(c.by_purpose)[:top]:
        mostly = ", ".join(f"{pkg} {v / ms:.0%}" for pkg, v in largest(c.inside.get(name, {}))[:3])
        rows.append([name, f"{ms:.2f}", share(ms), mostly])
    rest = sum(ms for _, ms in largest(c.by_purpose)[top:])
    if rest:
        rows.append(["(the rest)", f"{rest:.2f}", share(rest), ""])
    weighed = "each thread's samples weighed by its CPU" if cpu_by_thread else "samples weighed equally"
    print(table(f"What the CPU is for, ms per chat ({c.samples} samples, {c.waits} at a blocking wait left "
                f"out; {weighed}; {c.total:.2f} ms per chat)", ["purpose", "ms/chat", "share", "mostly in (leaf package)"], rows))  # fmt: skip  # noqa: E501
    rows = [[name, f"{ms:.2f}", share(ms)] for name, ms in largest(c.by_package)[:top]]
    print(table("Which code does the work (the leaf frame's package)", ["package", "ms/chat", "share"], rows))
    rows = [[name, f"{ms:.2f}", share(ms)] for name, ms in largest(c.sqlalchemy)]
    print(table("Inside SQLAlchemy (leaf frames in it, by layer)", ["layer", "ms/chat", "share"], rows))
    print("threads (MainThread runs the event loop; uvloop: asyncio.to_thread workers; AnyIO: FastAPI's): "
          + ", ".join(f"{name} {ms:.2f} ms" for name, ms in largest(c.threads)))  # fmt: skip
    return dict(c.by_purpose)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", type=Path, help="py-spy --format raw output")
    parser.add_argument(
        "--per-chat-ms", type=float, required=True, help="server CPU ms per chat in that block"
    )
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    print_costs(args.raw, args.per_chat_ms, top=args.top)


if __name__ == "__main__":
    main()
