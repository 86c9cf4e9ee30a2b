"""Child processes for sync fault tests: a hub (`python -m cloud_hub serve`), an edge
(`python -m edge_node serve`), each optionally speaking a patched protocol minor.

Children import the same code as the test (the parent's `cloud_hub` location first on
PYTHONPATH).  `start()` waits, with a deadline, for the child's listening line;
`kill()` is SIGKILL; leaving the context ends what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import cloud_hub
import edge_node

START_DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pythonpath() -> str:
    roots = dict.fromkeys(str(Path(m.__file__ or "").resolve().parents[1])
                          for m in (cloud_hub, edge_node))
    return os.pathsep.join(roots)


def _prelude(version: tuple[int, int] | None) -> str:
    if version is None:
        return ""
    # A build that speaks another minor: the constant and the name batch.py sealed with.
    return ("import sync_protocol.version as _v, sync_protocol.batch as _b\n"
            f"_v.PROTOCOL_VERSION = _b.PROTOCOL_VERSION = {version!r}\n")


class Child:
    def __init__(self, code: str, args: list[str], cwd: Path, marker: bytes) -> None:
        self.code, self.args, self.cwd, self.marker = code, args, cwd, marker
        self.proc: asyncio.subprocess.Process | None = None
        self.first_line = b""

    async def start(self) -> None:
        log = open(self.cwd / f"child-{os.getpid()}-{id(self)}.log", "ab")  # noqa: SIM115, ASYNC230
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", self.code, *self.args, cwd=self.cwd,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                env={**os.environ, "PYTHONPATH": _pythonpath()})
        finally:
            log.close()
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_DEADLINE_S):
            while self.marker not in self.first_line:
                line = await self.proc.stdout.readline()
                assert line, f"child exited before {self.marker!r} ({self.args})"
                self.first_line = line

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
        except TimeoutError:
            await self.kill()


def hub_child(store: Path, port: int, cwd: Path, *,
              version: tuple[int, int] | None = None,
              tls: tuple[Path, Path] | None = None) -> Child:
    code = _prelude(version) + ("import sys\nfrom cloud_hub.__main__ import main\n"
                                "sys.exit(main(sys.argv[1:]))\n")
    tls_args = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
    return Child(code, ["serve", "--store", f"sqlite:{store}", "--host", "127.0.0.1",
                        "--port", str(port), *tls_args], cwd, b"listening on")


def edge_child(data_dir: Path, cwd: Path, *, version: tuple[int, int] | None = None,
               sync_options: tuple[str, ...] = ()) -> Child:
    code = _prelude(version) + ("import sys\nfrom edge_node.__main__ import main\n"
                                "sys.exit(main(sys.argv[1:]))\n")
    opts = [a for o in sync_options for a in ("--sync-option", o)]
    return Child(code, ["serve", "--data", str(data_dir), "--port", "0", *opts], cwd,
                 b"listening ")


@contextlib.asynccontextmanager
async def started(child: Child) -> AsyncIterator[Child]:
    try:
        await child.start()
        yield child
    finally:
        await child.stop()


FAST_OPTIONS = ("long_poll_s=2.0", "backoff_max_s=0.5", "heartbeat_s=1.0",
                "mailbox_poll_s=0.3", "control_poll_s=0.2")
