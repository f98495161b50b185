"""The load: chats started on one server and followed to the end there (owner) and on another
(cross), each event's arrival recorded, ``streams`` slots of them back to back over a window, and
the sessions they use."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.common import cpu_seconds, tree_cpu_seconds
from bench.raw_http import Client
from bench.scale_kit.design import Server
from bench.scale_kit.measure import Chat, Follow, Level, Stats

QUESTION = {"message": "What is this about?"}
TERMINAL = {"complete", "error", "cancelled"}


class Pool:
    """Fresh sessions of many users, handed out round-robin by user."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def add(self, users: list[tuple[str, list[str]]]) -> None:
        longest = max((len(s) for _, s in users), default=0)
        self.pairs += [(key, s[i]) for i in range(longest) for key, s in users if i < len(s)]

    def next(self) -> tuple[str, str]:
        if not self.pairs:
            raise RuntimeError("out of sessions: more chats ran than were set up")
        return self.pairs.pop(0)


async def follow(client: Client, path: str, key: str, out: Follow, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            response = await client.request("GET", path, headers={"X-API-Key": key})
            if response.status != 200:
                response.abort()
                out.error = f"GET {response.status}"
                return
            buffer, received = "", 0
            async for chunk in response.chunks():
                now = time.monotonic()
                buffer += chunk.decode()
                *frames, buffer = buffer.split("\n\n")
                for frame in frames:
                    eid, kind, data = None, "", ""
                    for line in frame.split("\n"):
                        if line.startswith("id: "):
                            eid = int(line[4:])
                        elif line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: "):
                            data = line[6:]
                    if not kind:
                        continue  # retry: and keep-alive comments
                    if kind == "token":
                        received += len(json.loads(data).get("text", ""))
                    out.events.append((now, eid, kind, received))
                    if kind in TERMINAL:
                        out.end = now
                        body = json.loads(data)
                        if kind == "complete":
                            out.text = body.get("text", "")
                        else:
                            out.error = f"{kind} {body.get('code', '')}".strip()
    except TimeoutError:
        out.error = "timed out"
    except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
        out.error = type(exc).__name__
    if out.error is None and out.end is None:
        out.error = "no complete event"


class Driver:
    def __init__(self, args: argparse.Namespace, servers: list[Server], pool: Pool, stats: Stats) -> None:
        self.args, self.servers, self.pool, self.stats = args, servers, pool, stats
        self.clients = [Client(s.base_url) for s in servers]
        self.reply = args.deltas / args.rate
        self.expect = args.deltas * 8
        self.turn = 0
        self.fake_pid = 0

    def pair(self) -> tuple[int, int]:
        n, t = len(self.servers), self.turn
        self.turn += 1
        owner = t % n
        return owner, (owner + 1 + (t // n) % (n - 1)) % n

    async def one_chat(self) -> Chat:
        owner, cross = self.pair()
        key, sid = self.pool.next()
        chat = Chat(owner, cross, time.monotonic())
        try:
            response = await self.clients[owner].request(
                "POST", f"/v1/sessions/{sid}/chat", QUESTION, {"X-API-Key": key}
            )
            body = await response.json()
            if response.status != 201:
                chat.error = f"POST {response.status}"
                return chat
            chat.request_id, path = body["request_id"], body["stream_url"]
        except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
            chat.error = f"POST {type(exc).__name__}"
            return chat
        timeout = self.reply * 3 + 30
        await asyncio.gather(
            follow(self.clients[owner], path, key, chat.owner_f, timeout),
            follow(self.clients[cross], path, key, chat.cross_f, timeout),
        )
        for name, f in (("owner", chat.owner_f), ("cross", chat.cross_f)):
            if f.error:
                chat.error = f"{name}: {f.error}"
            elif f.text is not None and len(f.text) != self.expect:
                chat.error = f"{name}: complete with the wrong text"
            elif f.first("token") is None:
                chat.error = f"{name}: no token"
        return chat

    def snapshot(self) -> dict[str, float]:
        db = self.stats.snapshot()
        return {
            "servers": sum(cpu_seconds(s.pid) for s in self.servers),
            **{f"server{i}": cpu_seconds(s.pid) for i, s in enumerate(self.servers)},
            "postgres": tree_cpu_seconds(self.args.pg_pid),
            "fake": cpu_seconds(self.fake_pid),
            "driver": time.process_time(),
            **{f"db {k}": v for k, v in db.items()},
        }

    async def level(self, streams: int, window: float) -> Level:
        """``streams`` slots running chats back to back; the window opens once all are streaming."""
        level = Level(streams)
        t0 = time.monotonic()
        ws = t0 + self.reply + 1.0
        level.window = (ws, ws + window)
        marks: list[dict[str, float]] = []

        async def slot(k: int) -> None:
            await asyncio.sleep(k * self.reply / streams)
            while time.monotonic() < level.window[1]:
                chat = await self.one_chat()
                level.chats.append(chat)
                if chat.error and time.monotonic() - chat.start < 1:
                    await asyncio.sleep(1)  # a refused request: no tight loop

        async def sampler() -> None:
            for at in level.window:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                marks.append(await asyncio.to_thread(self.snapshot))

        await asyncio.gather(*(slot(k) for k in range(streams)), sampler())
        before, after = marks
        level.cpu = {k: after[k] - before[k] for k in before if not k.startswith("db ")}
        level.db = {k[3:]: after[k] - before[k] for k in before if k.startswith("db ")}
        level.db["conns"] = after["db conns"]
        await asyncio.sleep(1.0)  # the last events' writes
        ids = [c.request_id for c in level.chats if c.request_id]
        level.rows = await asyncio.to_thread(self.stats.rows_by_request, ids)
        level.crashed = [f"server {i}" for i, s in enumerate(self.servers) if s.crashed()]
        return level

    def close(self) -> None:
        for c in self.clients:
            c.close()


def chats_needed(args: argparse.Namespace, streams: int, window: float) -> int:
    reply = args.deltas / args.rate
    return int(streams * ((reply + 1 + window) / reply + 2) * 1.2) + 20
