"""Real edges with their sync loops, enrolled at a real hub, for sync tests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.settings import SyncSettings
from edge_node.node import Edge
from edge_node.store.connection import open_sync
from edge_node.store.users import Role, add_user
from edge_node.sync.enroll import EnrollResult, approve, enroll_site, invite
from edge_node.sync.loop import SyncLoop
from tests.edge_node.sync.hubs import wall_ms

PASSPHRASE = "correct horse battery staple"
FAST = SyncSettings(long_poll_s=2.0, backoff_max_s=0.5, heartbeat_s=1.0, mailbox_poll_s=0.3,
                    control_poll_s=0.2)
ACTOR = Actor(user_id="dr-test", role="clinician", device="t", client="test")
DEADLINE_S = 10.0


async def new_practice(hub_url: str, operator: str) -> tuple[Any, str]:
    async with HubClient.open(HubSettings.parse(hub_url, insecure_http=True)) as c:
        p = await c.create_practice("Sato", operator_token=operator)
        t = await c.create_enrollment_token(p.practice_id, credential=operator)
    return p.practice_id, t.token


async def enroll(tmp: Path, hub_url: str, token: str, name: str, **kw: Any) -> EnrollResult:
    passfile = tmp / "pass.txt"
    passfile.write_text(PASSPHRASE)
    settings = kw.pop("settings", None) or HubSettings.parse(hub_url, insecure_http=True)
    return await enroll_site(tmp / name, settings, token=token, name=name, admin_name="admin",
                             now_ms=wall_ms(), entropy=os.urandom, passphrase=PASSPHRASE,
                             shares=None, created="2024-01-01")


async def practice(tmp: Path, hub_url: str, operator: str, n: int,
                   urls: dict[int, str] | None = None) -> list[Path]:
    """A practice with `n` enrolled, approved sites (keys delivered); their data dirs.

    `urls` gives some sites another way to the hub (e.g. a cuttable `Link`).
    """
    urls = urls or {}
    _, token = await new_practice(hub_url, operator)
    first = await enroll(tmp, urls.get(0, hub_url), token, "site0")
    dirs = [tmp / "site0"]
    for i in range(1, n):
        tok, _ = await invite(dirs[0])
        res = await enroll(tmp, urls.get(i, hub_url), tok, f"site{i}")
        await approve(dirs[0], res.site_id, res.fingerprint)
        dirs.append(tmp / f"site{i}")
    assert first.recovery_kit is not None
    return dirs


@dataclass
class Running:
    edge: Edge
    sync: SyncLoop
    data_dir: Path

    async def write(self, rtype: str, rid: str, resource: dict[str, Any] | None,
                    action: str = "update") -> None:
        body = None if resource is None else {"resourceType": rtype, "id": rid, **resource}
        [result] = await self.edge.writer.submit([WriteOp(action, rtype, rid, body)],  # type: ignore[arg-type]
                                                 actor=ACTOR, atomic=False)
        assert not isinstance(result, Exception), result

    def states(self) -> dict[tuple[str, str], bytes]:
        conn = sqlite3.connect(self.data_dir / "edge.sqlite3")
        try:
            return {(t, i): bytes(s) for t, i, s in
                    conn.execute("SELECT type, id, state FROM resources")}
        finally:
            conn.close()

    def history(self) -> set[tuple[Any, ...]]:
        """(type, id, origin, seq, version id, JSON) of every author version.

        Fails on a change applied twice.  These rows are what each author wrote, byte
        for byte the same at every site; a site's own merged views are left out.
        """
        rows = self.query("SELECT type, id, origin, seq, vid, json FROM history "
                          "WHERE kind = 'author'")
        assert len(rows) == len({r[:4] for r in rows}), "a change applied twice"
        return set(rows)

    def conflicts(self) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.data_dir / "edge.sqlite3")
        try:
            return sorted(conn.execute("SELECT type, id, register, heads FROM conflicts"))
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.data_dir / "edge.sqlite3")
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()


@asynccontextmanager
async def running(data_dir: Path, settings: SyncSettings = FAST, *, check_head: bool = True
                  ) -> AsyncIterator[Running]:
    config = EdgeConfig(data_dir)
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge, \
            SyncLoop.open(edge, settings, check_head=check_head) as sync:
        assert sync is not None
        LOOPS.add(sync)
        try:
            yield Running(edge, sync, data_dir)
            await edge.writer.wait_idle()
        finally:
            LOOPS.discard(sync)


@asynccontextmanager
async def unsynced(data_dir: Path) -> AsyncIterator[Running]:
    """The edge without its sync loop (a site whose sync is stopped): writes stay local."""
    async with Edge.open(EdgeConfig(data_dir), clock=wall_ms, entropy=os.urandom) as edge:
        yield Running(edge, None, data_dir)  # type: ignore[arg-type]
        await edge.writer.wait_idle()


#: The sync loops of the edges running in this test (`running` adds and removes them);
#: `wait_for` wakes on their progress instead of on a timer.
LOOPS: weakref.WeakSet[SyncLoop] = weakref.WeakSet()
#: Only for conditions no loop here can signal (a child process's database).
CHILD_RECHECK_S = 0.1


async def wait_for(cond: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S,
                   *, recheck_s: float = CHILD_RECHECK_S) -> None:
    """Wait until `cond()` holds, re-checking after each step of a running sync loop
    (push acknowledged, batch pulled or held, keys, failure), or every `recheck_s` when
    no loop runs here (a child process's state); fails at the deadline."""
    try:
        async with asyncio.timeout(deadline_s):
            while not cond():
                loops = list(LOOPS)
                if not loops:  # e.g. a child process's database: nothing to wait on here
                    await asyncio.sleep(recheck_s)
                    continue
                async with asyncio.TaskGroup() as tg:
                    waits = [tg.create_task(x.ctx.status.wait_changed()) for x in loops]
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
    except TimeoutError:
        raise AssertionError(f"timed out after {deadline_s} s waiting for: {what}") from None


def patient(name: str, birth: str = "1970-01-01") -> dict[str, Any]:
    return {"name": [{"family": name}], "birthDate": birth, "gender": "female"}


def clinician_token(data_dir: Path) -> str:
    """A clinician's API token at the site in `data_dir` (added before it runs)."""
    conn = open_sync(data_dir)
    try:
        _, token = add_user(conn, name="clinician", role=Role.CLINICIAN, now_ms=wall_ms(),
                            random_bytes=os.urandom(42))
    finally:
        conn.close()
    return token
