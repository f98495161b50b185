"""A loopback TCP proxy between the benchmark's clients and the server: it counts the bytes each
connection carries in both directions (so headers, SSE framing, WebSocket frames and handshakes are
all included, as at the client's socket) and can cut every open connection at once, like a dropped
network path (the drop tests run one conversation at a time, so "every" is that conversation's)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Traffic:
    up: int = 0  # client -> server bytes
    down: int = 0  # server -> client bytes
    connections: int = 0

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(self.up - other.up, self.down - other.down, self.connections - other.connections)

    @property
    def total(self) -> int:
        return self.up + self.down


class CountingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.up = self.down = self.connections = 0
        self.open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def traffic(self) -> Traffic:
        return Traffic(self.up, self.down, self.connections)

    async def start(self) -> CountingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut_all()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    def cut_all(self) -> int:
        """Abort every open connection, both sides (the client and the server each see a reset at
        once, as when a network path or a load balancer drops it). Returns how many were cut."""
        cut = len(self.open)
        for client, server in list(self.open):
            for writer in (client, server):
                writer.transport.abort()
        self.open.clear()
        return cut

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        pair = (client_writer, server_writer)
        self.open.add(pair)
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, upstream=True),
                self._pump(server_reader, client_writer, upstream=False),
            )
        finally:
            self.open.discard(pair)
            for writer in pair:
                writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side finished sending: pass its end on (half-close), unless it was cut.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof() and not writer.transport.is_closing():
                    writer.write_eof()
