"""`chartsync edge restore` killed with SIGKILL mid-download or mid-staging: the rerun
ends identical.

Mid-download: a proxy freezes the snapshot download after 512 body bytes;
the process is killed with those bytes on disk; the rerun continues the file
with HTTP Range (206) and installs.  Mid-staging: a 6,000-patient snapshot is
staged 300 records per commit; the process is killed once some batches are
committed and before verification; the rerun resumes.  Either way the
restored site, after pulling the tail, holds exactly what the lost sites held.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from edge_node.fhir.write_op import WriteOp
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.sync.enroll import enroll_site
from tests.edge_node.snapshots.at_hub import SNAP, acked, site_view, wait_snapshot
from tests.edge_node.snapshots.lost_practice import (
    LostPractice,
    enrollment_token,
    finish,
    lose_practice,
    serve_until_caught_up,
    start_restore,
)
from tests.edge_node.snapshots.stall import SnapshotStall
from tests.edge_node.sync.edges import ACTOR, PASSPHRASE, patient, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub, wall_ms

PATIENTS = 6000
#: How often the test looks at the child's staging file (its whole staging can take
#: less than 100 ms on a fast machine).
STAGING_RECHECK_S = 0.002


async def test_restore_killed_mid_download_continues_the_file_and_ends_identical(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE)
    async with local_hub(tmp_path / "hub.db") as hub:
        lost = await lose_practice(tmp_path, hub.url, operator, shares=None)
        token = await enrollment_token(hub.url, operator, lost.practice_id)
        new_dir = tmp_path / "new"
        partial = new_dir / ".restore" / "snapshot.partial"
        async with SnapshotStall(hub.port, keep_bytes=512) as proxy:
            proc = await start_restore(new_dir, proxy.url, lost.kit, token=token,
                                       passphrase_file=pass_file)
            await proxy.wait_stalled()
            await wait_for(lambda: partial.exists() and partial.stat().st_size == 512,
                           "the first bytes on disk")
            proc.kill()
            await proc.wait()
            assert not (new_dir / ".restore" / "snapshot.css").exists()
            proxy.stalling = False
            lines = await finish(await start_restore(new_dir, proxy.url, lost.kit, token=None,
                                                     passphrase_file=pass_file))
            assert proxy.ranged, "the rerun should continue the partial file (HTTP Range)"
            assert lines[-1]["conflicts"] == 1
            assert await serve_until_caught_up(new_dir, lost) == lost.view


async def _big_lost_practice(tmp: Path, hub_url: str, operator: str) -> LostPractice:
    """One site with PATIENTS charts, a snapshot of all of them, then the site lost."""
    settings = HubSettings.parse(hub_url, insecure_http=True)
    async with HubClient.open(settings) as c:
        practice = await c.create_practice("Big", operator_token=operator)
        token = await c.create_enrollment_token(practice.practice_id, credential=operator)
    site = await enroll_site(tmp / "big", settings, token=token.token, name="big",
                             admin_name="admin", now_ms=wall_ms(), entropy=os.urandom,
                             passphrase=PASSPHRASE, shares=None, created="2024-01-01")
    assert site.recovery_kit is not None
    async with running(tmp / "big", replace(SNAP, snapshot_every_changes=PATIENTS)) as big:
        for start in range(0, PATIENTS, 500):
            ops = [WriteOp("update", "Patient", f"p{i:05d}",
                           {**patient(f"F{i}"), "resourceType": "Patient", "id": f"p{i:05d}"})
                   for i in range(start, start + 500)]
            results = await big.edge.writer.submit(ops, actor=ACTOR, atomic=False)
            assert not any(isinstance(r, Exception) for r in results)
        await wait_for(lambda: acked(tmp / "big"), "every change acknowledged")
        covered = await wait_snapshot(hub_url, big.sync.ctx.state.credential)
    view = site_view(tmp / "big")
    kit = tmp / "kit.txt"
    shutil.copy(site.recovery_kit, kit)
    shutil.rmtree(tmp / "big")
    return LostPractice(practice.practice_id, kit, [], view, PATIENTS, covered)


def _staging_midway(new_dir: Path) -> bool:
    """Some batches staged and committed, the signature not yet verified."""
    path = new_dir / ".restore" / "staging.sqlite3"
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)
        try:
            row = conn.execute("SELECT records_done, verified FROM restore_state").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # created but not yet initialised
    return row is not None and row[0] > 1 and not row[1]


async def test_restore_killed_mid_staging_resumes_and_ends_identical(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE)
    async with local_hub(tmp_path / "hub.db") as hub:
        lost = await _big_lost_practice(tmp_path, hub.url, operator)
        token = await enrollment_token(hub.url, operator, lost.practice_id)
        new_dir = tmp_path / "new"
        proc = await start_restore(new_dir, hub.url, lost.kit, token=token,
                                   passphrase_file=pass_file, batch_records=300)
        # Staging 12,000 records takes well under a second: look often enough to see it
        # between two commits.
        await wait_for(lambda: _staging_midway(new_dir), "staging midway", deadline_s=60,
                       recheck_s=STAGING_RECHECK_S)
        proc.kill()
        await proc.wait()
        lines = await finish(await start_restore(new_dir, hub.url, lost.kit, token=None,
                                                 passphrase_file=pass_file,
                                                 batch_records=300))
        assert lines[-1]["resources"] == PATIENTS
        assert lines[-1]["resumed_from_record"] > 1, "the rerun should resume the staging"
        assert not (new_dir / ".restore").exists()
        assert await serve_until_caught_up(new_dir, lost) == lost.view
