"""The load side of bench/chat_cpu.py: chats (POST, then the GET of the stream read to its end) at
open-loop Poisson arrival times, with the servers' CPU from /proc around each block, and the fresh
sessions they use."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import cpu_seconds, tree_cpu_seconds, users_and_sessions
from bench.raw_http import Client

QUESTION = {"message": "What is this about?"}


@dataclass
class Chat:
    post: float | None = None
    headers: float | None = None  # the GET's response headers (from the POST's start)
    ttft: float | None = None
    total: float | None = None
    late: float = 0.0  # how late the driver sent it against its schedule
    ok: bool = False
    error: str | None = None

    @property
    def get(self) -> float | None:
        """The GET, up to its response headers."""
        return None if self.headers is None or self.post is None else self.headers - self.post

    @property
    def first(self) -> float | None:
        """From the GET's headers to the first token."""
        return None if self.ttft is None or self.headers is None else self.ttft - self.headers


@dataclass
class Block:
    name: str
    rate: float
    chats: list[Chat] = field(default_factory=list)
    cpu: float = 0.0  # server process, whole block
    db_cpu: float = 0.0
    util: float = 0.0  # server process, share of one core after the ramp-up
    wall: float = 0.0
    other_cpu: float = 0.0  # fake upstream + driver

    @property
    def done(self) -> list[Chat]:
        return [c for c in self.chats if c.ok]

    def values(self, attr: str) -> list[float]:
        return [getattr(c, attr) for c in self.done if getattr(c, attr) is not None]

    @property
    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.chats:
            if not c.ok:
                out[c.error or "?"] = out.get(c.error or "?", 0) + 1
        return out


class Sessions:
    """Fresh sessions (a constant prompt size) of many users, handed out round-robin."""

    def __init__(self) -> None:
        self.users: list[tuple[str, list[str]]] = []
        self.turn = 0

    def add(self, url: str, count: int, users: int = 100) -> None:
        per_user = max(1, math.ceil(count / users))
        self.users = [(key, list(s)) for key, s in users_and_sessions(url, users, per_user)]

    def next(self) -> tuple[str, str]:
        for _ in range(len(self.users)):
            key, sessions = self.users[self.turn % len(self.users)]
            self.turn += 1
            if sessions:
                return key, sessions.pop()
        raise RuntimeError("out of sessions: the rate or the duration grew past what was set up")


async def read_stream(response: Any, start: float, chat: Chat, expect: int) -> None:
    buffer = ""
    async for chunk in response.chunks():
        buffer += chunk.decode()
        *frames, buffer = buffer.split("\n\n")
        for frame in frames:
            kind = next((line[7:] for line in frame.split("\n") if line.startswith("event: ")), "")
            if kind == "token" and chat.ttft is None:
                chat.ttft = time.monotonic() - start
            elif kind in ("complete", "error", "cancelled"):
                data = json.loads(next(line[6:] for line in frame.split("\n") if line.startswith("data: ")))
                if kind != "complete":
                    chat.error = f"{kind} {data.get('code', '')}".strip()
                elif len(data.get("text", "")) != expect:
                    chat.error = "complete with the wrong text"
                else:
                    chat.ok = chat.ttft is not None
    chat.total = time.monotonic() - start
    if not chat.ok and chat.error is None:
        chat.error = "no token" if chat.ttft is None else "no complete event"


async def one_chat(client: Client, post_path: str, headers: dict[str, str], expect: int) -> Chat:
    chat, start = Chat(), time.monotonic()
    try:
        response = await client.request("POST", post_path, QUESTION, headers)
        body = await response.json()
        chat.post = time.monotonic() - start
        if response.status != 201:
            chat.error = f"POST {response.status}"
            return chat
        stream = await client.request("GET", body["stream_url"], headers=headers)
        chat.headers = time.monotonic() - start
        if stream.status != 200:
            stream.abort()
            chat.error = f"GET {stream.status}"
            return chat
        await read_stream(stream, start, chat, expect)
    except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
        chat.error = type(exc).__name__
    return chat


async def offered(
    name: str, run_one: Any, rate: float, duration: float, seed: int, pids: dict[str, int | None], warm: float
) -> Block:
    """Chats at Poisson arrival times (``rate`` per second for ``duration`` seconds), all awaited."""
    rng, arrivals, at = random.Random(seed), [], 0.0
    while (at := at + rng.expovariate(rate)) < duration:
        arrivals.append(at)
    block = Block(name, rate)

    def snapshot() -> tuple[float, float, float]:
        db = pids.get("db")
        other = cpu_seconds(pids["fake"] or 0) + time.process_time()
        return cpu_seconds(pids["server"] or 0), tree_cpu_seconds(db) if db else 0.0, other

    async def timed(scheduled: float, t0: float) -> None:
        chat_late = time.monotonic() - (t0 + scheduled)
        chat = await run_one()
        chat.late = chat_late
        block.chats.append(chat)

    async def utilization(t0: float) -> None:
        await asyncio.sleep(warm)
        first = cpu_seconds(pids["server"] or 0)
        await asyncio.sleep(max(0.1, duration - warm))
        block.util = (cpu_seconds(pids["server"] or 0) - first) / max(0.1, duration - warm)

    before, t0 = snapshot(), time.monotonic()
    sampler = asyncio.create_task(utilization(t0))
    tasks = []
    for scheduled in arrivals:
        await asyncio.sleep(max(0.0, t0 + scheduled - time.monotonic()))
        tasks.append(asyncio.create_task(timed(scheduled, t0)))
    await asyncio.gather(*tasks, sampler)
    await asyncio.sleep(0.3)  # our write-behind writes the last batch just after the end
    after = snapshot()
    block.wall = time.monotonic() - t0
    block.cpu, block.db_cpu, block.other_cpu = (a - b for a, b in zip(after, before, strict=True))
    return block
