"""A loopback TCP proxy in front of the hub that can freeze a snapshot download halfway.

    async with SnapshotStall(hub.port, keep_bytes=1024) as proxy:
        ... restore through proxy.url ...
        await proxy.wait_stalled()          # the download holds after 1,024 body bytes
        proxy.stalling = False              # later connections pass through untouched

While `stalling`, the answer that carries `X-Snapshot-Id` is forwarded up to
the end of its head plus `keep_bytes` of body and then held: the client sits
mid-download, ready to be killed.  `ranged` records whether any answer came
back as a 206 with `Content-Range` (a resumed download).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

_MARK = b"X-Snapshot-Id"


class SnapshotStall:
    def __init__(self, hub_port: int, *, keep_bytes: int) -> None:
        self.hub_port = hub_port
        self.keep_bytes = keep_bytes
        self.stalling = True
        self.ranged = False
        self._stalled = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SnapshotStall:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def wait_stalled(self, deadline_s: float = 60.0) -> None:
        async with asyncio.timeout(deadline_s):
            await self._stalled.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.hub_port)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump(reader, up_writer))
                tg.create_task(self._down(up_reader, writer))
        except (OSError, ExceptionGroup):
            pass  # a side hung up (the killed client): the connection simply ends
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(1 << 16):
            dst.write(data)
            await dst.drain()
        dst.close()

    async def _down(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        budget: int | None = None  # body bytes still to forward before holding
        while data := await src.read(1 << 16):
            mark = data.find(_MARK)
            if mark >= 0 and b"Content-Range" in data:
                self.ranged = True
            head_end = data.find(b"\r\n\r\n", mark) if mark >= 0 else -1
            if self.stalling and budget is None and head_end >= 0:
                budget = self.keep_bytes + head_end + 4
            if budget is not None:
                dst.write(data[:budget])
                await dst.drain()
                budget -= min(budget, len(data))
                if budget == 0:
                    self._stalled.set()
                    await asyncio.Event().wait()  # held until the client is killed
                continue
            dst.write(data)
            await dst.drain()
        dst.close()
