"""A site whose data directory is lost comes back from the hub identical to the others.

Three real edges at a real hub; snapshots are uploaded by the sync loop's
snapshotter (every 10 changes here); one site's data directory is deleted and
restored with `chartsync edge restore` (run in-process), approved by a
surviving site; after pulling the tail it must hold byte-identical states
(`conflict.canonical_dump`), the same history and the same conflicts.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from edge_node.cli.restore import restore
from edge_node.sync.enroll import invite
from tests.edge_node.snapshots.at_hub import (
    SNAP,
    converged,
    offline_conflicts,
    restore_args,
    rows,
    site_view,
    wait_snapshot,
    write_charts,
)
from tests.edge_node.sync.edges import PASSPHRASE, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub

CHARTS = 6
#: 2 offline allergy edits, then per site: CHARTS patients + observations, an edit, a delete
FIRST = 2 + 3 * (2 * CHARTS + 2)


async def test_a_lost_site_is_restored_identical_to_the_others(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    pass_file = tmp_path / "pass.txt"
    async with local_hub(tmp_path / "hub.db") as hub:
        dirs = await practice(tmp_path, hub.url, operator, 3)
        await offline_conflicts(dirs[:2])
        async with running(dirs[0], SNAP) as a, running(dirs[1], SNAP) as b:
            cred = a.sync.ctx.state.credential
            async with running(dirs[2], SNAP) as c:
                await wait_for(lambda: all(s.sync.ctx.keyring is not None for s in (a, b, c)),
                               "keys everywhere")
                await asyncio.gather(*(write_charts(s, t, CHARTS)
                                       for s, t in ((a, "a"), (b, "b"), (c, "c"))))
                await converged([a, b, c], expect_changes=FIRST)
                assert len(c.conflicts()) == 1
                covered = await wait_snapshot(hub.url, cred)
                # A tail after the snapshot, written by the site about to be lost.
                await c.write("Patient", "tail1", {"name": [{"family": "Tail"}]})
                await converged([a, b, c], expect_changes=FIRST + 1)
            shutil.rmtree(dirs[2])

            token, _ = await invite(dirs[0])
            new_dir = tmp_path / "site2-new"
            pass_file.write_text(PASSPHRASE)
            # The kit signs the new machine into the roster: no approver is needed.
            assert await restore(restore_args(
                new_dir, hub.url, dirs[0] / "recovery-kit.txt", token=token,
                passphrase_file=pass_file, name="site2-new")) == 0
            restored = site_view(new_dir)
            assert restored["history"], "the snapshot brought history before any pull"
            # The sealed log up to the snapshot came along: this site can help rebuild a hub.
            kept = {r[0] for r in rows(new_dir, "SELECT hub_seq FROM received_batches")}
            assert covered >= 1 and set(range(1, covered + 1)) <= kept
            # Indexes deferred during staging were all built again.
            indexes = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
            assert rows(new_dir, indexes) == rows(dirs[0], indexes)
            async with running(new_dir, SNAP) as r:
                await a.write("Patient", "after", {"name": [{"family": "After"}]})
                await r.write("Patient", "mine", {"name": [{"family": "Mine"}]})
                await converged([a, b, r], expect_changes=FIRST + 3)
                assert site_view(r.data_dir) == site_view(a.data_dir)
                assert len(r.conflicts()) == 1
                assert covered >= 1
