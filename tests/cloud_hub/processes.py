"""Real hub processes (`python -m cloud_hub serve`) and a throwaway PostgreSQL to restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from tests.conftest import ThrowawayCluster, cluster_user, find_pg_bin

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NotReady(Exception):
    """The hub does not answer /healthz with 200 yet."""


class HubProcess:
    """One `python -m cloud_hub serve` child on 127.0.0.1:`port`."""

    def __init__(self, store: str, port: int | None = None, *,
                 tls: tuple[Path, Path] | None = None, key_file: Path | None = None) -> None:
        """`key_file`: the hub key file; required with PostgreSQL (processes sharing a
        database share it), next to the store by default with SQLite."""
        self.store = store
        self.key_file = key_file
        self.port = port or free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        #: The client-side TLS context that trusts our self-signed certificate.
        self.ssl: ssl.SSLContext | bool = True
        if tls is not None:
            self.ssl = ssl.create_default_context(cafile=str(tls[0]))

    async def start(self) -> None:
        """Spawn and wait (deadline) for its "listening" line: store open, socket bound."""
        tls_args = ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] \
            if self.tls else []
        if self.key_file is not None:
            tls_args += ["--hub-key-file", str(self.key_file)]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cloud_hub", "serve", "--store", self.store,
            "--host", "127.0.0.1", "--port", str(self.port), *tls_args, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_DEADLINE_S):
            line = await self.proc.stdout.readline()  # the only line the hub prints
        assert b"listening on" in line, f"hub did not start (exit {self.proc.returncode})"

    async def wait_healthy(self, deadline_s: float = START_DEADLINE_S) -> None:
        """Until /healthz answers 200 (the store is reachable), retrying like a client."""
        async with aiohttp.ClientSession() as session:
            async for attempt in AsyncRetrying(
                    stop=stop_after_delay(deadline_s), wait=wait_exponential(0.02, max=0.25),
                    retry=retry_if_exception_type((NotReady, aiohttp.ClientError, OSError)),
                    reraise=True):
                with attempt:
                    assert self.proc is not None and self.proc.returncode is None, \
                        "hub process exited during startup"
                    async with session.get(f"{self.url}/healthz", ssl=self.ssl) as resp:
                        if resp.status != 200:
                            raise NotReady(resp.status)

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@contextlib.asynccontextmanager
async def hub_process(store: str, port: int | None = None, *,
                      key_file: Path | None = None) -> AsyncIterator[HubProcess]:
    hub = HubProcess(store, port, key_file=key_file)
    try:
        await hub.start()
        yield hub
    finally:
        await hub.stop()


class RestartableCluster(ThrowawayCluster):
    """A throwaway PostgreSQL of our own (never the shared server) that we may restart.

    Commits are synchronous (unlike the session cluster): an acknowledged push
    must survive an immediate shutdown, which is what the fault test checks.
    """

    OPTIONS = "-c fsync=off -c synchronous_commit=on -c full_page_writes=off"

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                f"{self.OPTIONS}")

    def pg_ctl(self, *args: str) -> None:
        done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {args} failed: {done.stdout}{done.stderr}"
                               f"{self.log_tail()}")

    def start_fresh(self) -> None:
        super().start()  # initdb + start with the session's options ...
        self.restart()   # ... then run with ours

    def stop_now(self) -> None:
        self.pg_ctl("-m", "immediate", "-w", "stop")

    def start_again(self) -> None:
        self.pg_ctl("-l", str(self.log), "-o", self._options(), "-w", "-t", "60", "start")

    def restart(self) -> None:
        self.stop_now()
        self.start_again()


@contextlib.asynccontextmanager
async def restartable_cluster() -> AsyncIterator[RestartableCluster]:
    """Our own cluster with a `hub` database; skipped (postgres: ...) without binaries."""
    import pytest

    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip("postgres: no local PostgreSQL binaries (initdb/pg_ctl) for a cluster "
                    "this test may restart")
    cluster = RestartableCluster(bindir, cluster_user())
    try:
        await asyncio.to_thread(cluster.start_fresh)
        conn = await asyncpg.connect(cluster.dsn)
        await conn.execute("CREATE DATABASE hub")
        await conn.close()
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


def cluster_hub_dsn(cluster: ThrowawayCluster) -> str:
    return cluster.dsn.rsplit("/", 1)[0] + "/hub"


__all__ = [
    "HubProcess",
    "RestartableCluster",
    "cluster_hub_dsn",
    "free_port",
    "hub_process",
    "restartable_cluster",
]
