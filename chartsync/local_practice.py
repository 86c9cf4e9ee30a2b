"""A whole practice on this machine: a hub and edges as real processes on loopback.

Used by `chartsync demo`, the end-to-end tests and the end-to-end benchmarks.
Each edge reaches the hub through its own `Link`, so any site can be cut off;
the hub and each edge can be stopped (SIGTERM), killed (SIGKILL) and started
again on the same port and data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from chartsync.link import Link
from edge_node.hub_link.client import HubSettings
from edge_node.store.connection import open_sync
from edge_node.store.users import Role, add_user
from edge_node.sync.enroll import approve, enroll_site, invite

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE_S = 60.0
PASSPHRASE = "local practice only: sakura-naika 2026"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """A child process started from `argv`, its output in `log`."""

    name: str
    argv: list[str]
    log: Path
    ready: str
    proc: asyncio.subprocess.Process | None = None
    url: str = ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> str:
        """Start, and wait until the log shows the `ready` pattern; return its URL group."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdout=out, stderr=out, env=env, stdin=asyncio.subprocess.DEVNULL)
        pattern = re.compile(self.ready)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            with self.log.open("rb") as f:
                f.seek(offset)
                match = pattern.search(f.read().decode(errors="replace"))
            if match:
                self.url = match.group(1)
                return self.url
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 0.05)
        raise RuntimeError(f"{self.name} did not start; see {self.log}")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Fhir:
    """A small FHIR client for one edge and one staff token."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}",
                        "Content-Type": "application/fhir+json"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        async with self.session.request(method, self.base + path, data=data,
                                        headers=self.headers) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if raw else None)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        return answer


@dataclass
class Site:
    name: str
    data_dir: Path
    site_id: str
    fingerprint: str
    link: Link
    edge: Child
    token: str
    recovery_kit: Path | None = None

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)

    def states(self) -> dict[tuple[str, str], bytes]:
        conn = self.db()
        try:
            return {(t, i): bytes(s) for t, i, s in
                    conn.execute("SELECT type, id, state FROM resources")}
        finally:
            conn.close()

    def unpushed(self) -> int:
        """Changes written here that the hub has not acknowledged yet."""
        [(n,)] = self.query("SELECT count(*) FROM outbox WHERE seq > coalesce((SELECT "
                            "max(seq_to) FROM pushed_batches WHERE receipt IS NOT NULL), 0)")
        return int(n)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = self.db()
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()


@dataclass
class LocalPractice:
    workdir: Path
    hub: Child
    session: aiohttp.ClientSession
    practice_id: str = ""
    sites: dict[str, Site] = field(default_factory=dict)

    @property
    def hub_url(self) -> str:
        return self.hub.url

    def fhir(self, name: str) -> Fhir:
        site = self.sites[name]
        return Fhir(self.session, site.edge.url, site.token)

    async def converged(self) -> bool:
        """All sites hold byte-identical charts and have nothing left to push."""
        states = [s.states() for s in self.sites.values()]
        if any(st != states[0] for st in states[1:]):
            return False
        return all(site.unpushed() == 0 for site in self.sites.values())

    def converged_push(self, name: str) -> Callable[[], Awaitable[bool]]:
        """A check: site `name` has pushed everything it wrote."""
        async def pushed() -> bool:
            return self.sites[name].unpushed() == 0
        return pushed

    async def wait(self, check: Callable[[], Awaitable[bool]], deadline_s: float,
                   what: str) -> float:
        """Poll `check` (the sites are other processes) until true; seconds taken."""
        start = time.monotonic()
        while not await check():
            if time.monotonic() - start > deadline_s:
                raise TimeoutError(f"{what}: not reached within {deadline_s:.0f} s; "
                                   f"logs in {self.workdir / 'logs'}")
            await asyncio.sleep(0.002)  # other processes: poll their state, deadline above
        return time.monotonic() - start


@contextlib.asynccontextmanager
async def local_practice(workdir: Path, *, store: str, site_names: Sequence[str],
                         practice_name: str = "さくら内科クリニック",
                         sync_options: Sequence[str] = (),
                         say: Callable[[str], None] = lambda text: None,
                         ) -> AsyncIterator[LocalPractice]:
    """Start a hub on `store`, enroll and approve `site_names`, start their edges."""
    py = sys.executable
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date().isoformat()
    created = await asyncio.create_subprocess_exec(
        py, "-m", "chartsync", "hub", "practice", "create", practice_name, "--store", store,
        "--json", stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await created.communicate()
    if created.returncode != 0:
        raise RuntimeError(f"hub practice create failed ({created.returncode})")
    practice = json.loads(out)
    # The hub's signing key stays out of its store (required with PostgreSQL).
    hub = Child("hub", [py, "-m", "cloud_hub", "serve", "--store", store, "--host",
                        "127.0.0.1", "--port", str(free_port()),
                        "--hub-key-file", str(workdir / "hub-signing.key")],
                logs / "hub.log", r"listening on (http://\S+)")
    await hub.start()
    hub_port = int(hub.url.rstrip("/").rsplit(":", 1)[1])
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(hub.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        lp = LocalPractice(workdir, hub, session, practice["practice_id"])
        token = practice["enrollment_token"]
        first_dir: Path | None = None
        for name in site_names:
            link = await stack.enter_async_context(Link.open("127.0.0.1", hub_port))
            data_dir = workdir / name.lower().replace(" ", "-")
            if first_dir is not None:
                token, _ = await invite(first_dir)
            result = await enroll_site(
                data_dir, HubSettings.parse(link.url, insecure_http=True), token=token,
                name=name, admin_name="admin", now_ms=wall_ms(), entropy=os.urandom,
                passphrase=PASSPHRASE if first_dir is None else None, shares=None,
                created=today)
            if first_dir is None:
                first_dir = data_dir
            else:
                await approve(first_dir, result.site_id, result.fingerprint)
            say(f"  {name}: site {result.site_id}, fingerprint {result.fingerprint} "
                f"({'first site, made the practice key' if data_dir == first_dir else 'approved'})")
            conn = open_sync(data_dir)
            try:
                _, staff = add_user(conn, name="dr-sato", role=Role.CLINICIAN,
                                    now_ms=wall_ms(), random_bytes=os.urandom(42))
            finally:
                conn.close()
            argv = [py, "-m", "edge_node", "serve", "--data", str(data_dir),
                    "--host", "127.0.0.1", "--port", str(free_port())]
            for option in sync_options:
                argv += ["--sync-option", option]
            edge = Child(name, argv, logs / f"{name}.log", r"listening (http://\S+)")
            await edge.start()
            stack.push_async_callback(edge.stop)
            lp.sites[name] = Site(name, data_dir, str(result.site_id), result.fingerprint,
                                  link, edge, staff, result.recovery_kit)
        yield lp
