"""A practice that lost every site, and `chartsync edge restore` run as a real process.

    lost = await lose_practice(tmp, hub.url, operator, shares=(2, 3))   # or shares=None
    proc = await start_restore(new_dir, hub.url, token, lost.kit, passphrase_file=...)

`lose_practice` builds two sites with charts, history and a guarded conflict,
lets the snapshotter upload a snapshot, writes a tail after it, records the
view every site agreed on, then deletes both data directories.  Nobody is left to
approve the restored site: its recovery kit signs it into the roster.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.sync.enroll import approve, enroll_site, invite
from tests.edge_node.snapshots.at_hub import (
    SNAP,
    applied,
    converged,
    offline_conflicts,
    site_view,
    wait_snapshot,
    write_charts,
)
from tests.edge_node.sync.edges import PASSPHRASE, running, wait_for
from tests.edge_node.sync.hubs import wall_ms

REPO = Path(__file__).resolve().parents[3]
CHARTS = 5
#: 2 offline allergy edits, then per site: CHARTS patients + observations, an edit, a delete
WRITTEN = 2 + 2 * (2 * CHARTS + 2) + 1  # ... and one tail change after the snapshot


@dataclass
class LostPractice:
    practice_id: UUID
    kit: Path
    shares: list[str]
    view: dict[str, Any]
    changes: int
    snapshot_hub_seq: int


async def lose_practice(tmp: Path, hub_url: str, operator: str, *,
                        shares: tuple[int, int] | None) -> LostPractice:
    settings = HubSettings.parse(hub_url, insecure_http=True)
    async with HubClient.open(settings) as c:
        practice = await c.create_practice("Sato", operator_token=operator)
        token = await c.create_enrollment_token(practice.practice_id, credential=operator)
    first = await enroll_site(tmp / "site0", settings, token=token.token, name="site0",
                              admin_name="admin", now_ms=wall_ms(), entropy=os.urandom,
                              passphrase=None if shares else PASSPHRASE, shares=shares,
                              created="2024-01-01")
    assert first.recovery_kit is not None
    tok, _ = await invite(tmp / "site0")
    second = await enroll_site(tmp / "site1", settings, token=tok, name="site1",
                               admin_name="admin", now_ms=wall_ms(), entropy=os.urandom,
                               passphrase=None, shares=None, created="2024-01-01")
    await approve(tmp / "site0", second.site_id, second.fingerprint)
    dirs = [tmp / "site0", tmp / "site1"]
    await offline_conflicts(dirs)
    async with running(dirs[0], SNAP) as a, running(dirs[1], SNAP) as b:
        await wait_for(lambda: b.sync.ctx.keyring is not None, "keys at site1")
        await asyncio.gather(write_charts(a, "a", CHARTS), write_charts(b, "b", CHARTS))
        await converged([a, b], expect_changes=WRITTEN - 1)
        covered = await wait_snapshot(hub_url, a.sync.ctx.state.credential)
        await b.write("Patient", "tail", {"name": [{"family": "Tail"}]})
        await converged([a, b], expect_changes=WRITTEN)
        assert len(a.conflicts()) == 1
    view = site_view(dirs[0])
    kit = tmp / "kit.txt"
    shutil.copy(first.recovery_kit, kit)
    for d in dirs:
        shutil.rmtree(d)
    return LostPractice(practice.practice_id, kit, list(first.shares), view, WRITTEN, covered)


async def enrollment_token(hub_url: str, operator: str, practice_id: UUID) -> str:
    async with HubClient.open(HubSettings.parse(hub_url, insecure_http=True)) as c:
        return (await c.create_enrollment_token(practice_id, credential=operator)).token


async def start_restore(data_dir: Path, hub_url: str, kit: Path, *, token: str | None,
                        passphrase_file: Path | None = None, shares: Sequence[Path] = (),
                        name: str = "restored", batch_records: int | None = None
                        ) -> asyncio.subprocess.Process:
    """`python -m chartsync edge restore ... --json` as a child process (stdout piped)."""
    args = ["-m", "chartsync", "edge", "restore", "--data", str(data_dir), "--hub", hub_url,
            "--recovery-kit", str(kit), "--name", name, "--insecure-http", "--json",
            "--approval-timeout-s", "60"]
    if token:
        args += ["--token", token]
    if passphrase_file is not None:
        args += ["--passphrase-file", str(passphrase_file)]
    for share in shares:
        args += ["--share", str(share)]
    if batch_records is not None:
        args += ["--stage-batch-records", str(batch_records)]
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process, deadline_s: float = 90.0
                 ) -> list[dict[str, Any]]:
    """Wait for the restore process; its JSON lines (exit status 0 asserted)."""
    async with asyncio.timeout(deadline_s):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def serve_until_caught_up(data_dir: Path, lost: LostPractice) -> dict[str, Any]:
    """Run the restored site until it applied every change; its view."""
    async with running(data_dir, SNAP):
        await wait_for(lambda: applied(data_dir) == lost.changes, "tail pulled")
    return site_view(data_dir)
