"""A network link that can be cut: a loopback TCP relay between a site and the hub.

The demo uses it to take one edge offline while it keeps serving its LAN, and
the end-to-end tests use it to cut, and restore, one site's line to the hub.
Cutting closes every open connection at once and refuses new ones until the
link is restored — what a clinic sees when its fibre is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

_CHUNK = 64 * 1024


@dataclass
class Link:
    """Relays 127.0.0.1:`port` to `upstream_host`:`upstream_port` while `up`."""

    upstream_host: str
    upstream_port: int
    port: int = 0
    up: bool = True
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, upstream_host: str, upstream_port: int) -> AsyncIterator[Link]:
        link = cls(upstream_host, upstream_port)
        link._server = await asyncio.start_server(link._accept, "127.0.0.1", 0)
        link.port = link._server.sockets[0].getsockname()[1]
        try:
            yield link
        finally:
            link._server.close()
            # Aborting every transport ends each relay by itself; cancelling the
            # relay tasks instead would make asyncio's stream callback log them.
            link.cut()
            if link._tasks:
                await asyncio.wait(link._tasks, timeout=5)
            await link._server.wait_closed()
            link.up = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.up = True

    def _cut_meanwhile(self) -> bool:
        return not self.up

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        if self._cut_meanwhile():  # cut while we connected upstream: this one is cut too
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the other direction sees the same end; both sides are aborted above
        finally:
            writer.transport.abort()
