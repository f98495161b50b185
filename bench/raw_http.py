"""A lean HTTP/1.1 client for load drivers on a small box: keep-alive connections over asyncio
streams, ``Content-Length`` and chunked bodies, nothing else (no TLS, no redirects, no cookies).
httpx parses every byte in Python through h11 and its own layers; at a few thousand SSE frames a
second that is a large share of a 2-core machine, taken from the servers being measured. This
client costs a fraction of it, so the servers get the CPU and the driver's own lateness stays small.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

IDLE_EXPIRY = 2.0  # seconds: well before uvicorn's 5 s keep-alive timeout closes a connection


class Response:
    def __init__(self, client: Client, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.client, self.conn = client, conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self.reusable = True

    async def read_head(self) -> None:
        reader = self.conn[0]
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed before the response")
        self.status = int(status_line.split(b" ", 2)[1])
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.reusable = self.headers.get("connection", "").lower() != "close"

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool once it is all read."""
        reader = self.conn[0]
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):
                        pass  # trailers
                    break
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        elif "content-length" in self.headers:
            length = int(self.headers["content-length"])
            if length:
                yield await reader.readexactly(length)
        else:
            self.reusable = False
            while data := await reader.read(65536):
                yield data
        self.release()

    async def body(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def json(self) -> Any:
        return json.loads(await self.body())

    def release(self) -> None:
        if self.reusable:
            self.client.idle.append((time.monotonic(), self.conn))
        else:
            self.conn[1].close()
        self.reusable = False  # released once

    def abort(self) -> None:
        self.reusable = False
        self.conn[1].close()


class Client:
    """Keep-alive connections to one ``http://host:port`` server."""

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").rstrip("/").partition(":")
        self.host, self.port = host, int(port or 80)
        self.idle: list[tuple[float, tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self.idle:
            at, conn = self.idle.pop()
            if now - at < IDLE_EXPIRY and not conn[0].at_eof():
                return conn
            conn[1].close()
        return await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send a request and read the response's status and headers (read its body with
        ``chunks``/``body``/``json``, or ``abort`` it)."""
        conn = await self._connection()
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            head += ["content-type: application/json", f"content-length: {len(payload)}"]
        conn[1].write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        response = Response(self, conn)
        try:
            await response.read_head()
        except BaseException:
            response.abort()
            raise
        return response

    def close(self) -> None:
        for _, conn in self.idle:
            conn[1].close()
        self.idle = []
