"""Every site lost: `chartsync edge restore --recovery-kit` (a real process) brings it all back.

With a passphrase, and with 2 of 3 custodians' shares: the kit signs the
restored site into the roster (nobody is left to approve it), it installs the
latest snapshot and pulls the tail; all charts (byte-identical
`canonical_dump`), all history and all conflicts equal what the lost sites
agreed on.  After revocations the kit written at the first `init` still opens
every epoch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge_node.store.connection import with_database
from edge_node.store.site import site_identity
from edge_node.store.sync_state import require_sync_state
from edge_node.sync.enroll import revoke
from tests.edge_node.snapshots.lost_practice import (
    enrollment_token,
    finish,
    lose_practice,
    serve_until_caught_up,
    start_restore,
)
from tests.edge_node.sync.edges import PASSPHRASE, patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_restore_with_the_kit_passphrase_after_every_site_was_lost(tmp_path: Path
                                                                        ) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        lost = await lose_practice(tmp_path, hub.url, operator, shares=None)
        pass_file = tmp_path / "pass.txt"
        pass_file.write_text(PASSPHRASE + "\n")
        token = await enrollment_token(hub.url, operator, lost.practice_id)
        new_dir = tmp_path / "new"
        proc = await start_restore(new_dir, hub.url, lost.kit, token=token,
                                   passphrase_file=pass_file)
        lines = await finish(proc)
        assert lines[-1]["hub_seq"] >= lost.snapshot_hub_seq
        assert lines[-1]["conflicts"] == 1
        assert {line.get("phase") for line in lines} >= {"download", "stage"}
        assert await serve_until_caught_up(new_dir, lost) == lost.view


async def test_restore_with_two_of_three_shares_after_every_site_was_lost(tmp_path: Path
                                                                         ) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        lost = await lose_practice(tmp_path, hub.url, operator, shares=(2, 3))
        assert len(lost.shares) == 3
        files = []
        for i in (0, 2):  # any two custodians
            files.append(tmp_path / f"share{i}.txt")
            files[-1].write_text(lost.shares[i] + "\n")
        token = await enrollment_token(hub.url, operator, lost.practice_id)
        new_dir = tmp_path / "new"
        proc = await start_restore(new_dir, hub.url, lost.kit, token=token, shares=files)
        lines = await finish(proc)
        assert lines[-1]["conflicts"] == 1
        assert await serve_until_caught_up(new_dir, lost) == lost.view


async def test_the_kit_of_the_first_init_restores_after_two_revocations(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        kit = tmp_path / "kit.txt"
        shutil.copy(a_dir / "recovery-kit.txt", kit)
        practice_id = with_database(a_dir, lambda c: require_sync_state(c, a_dir)).practice_id
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.keyring is not None, "b's keys")
            await a.write("Patient", "p1", patient("Epoch-One"))
            assert await revoke(a_dir, site_identity(c_dir)[0], os.urandom) == 2
            await a.write("Patient", "p2", patient("Epoch-Two"))
            assert await revoke(a_dir, b.edge.site.site_id, os.urandom) == 3
            await a.write("Patient", "p3", patient("Epoch-Three"))
            await wait_for(lambda: all(h is not None for (h,) in a.query(
                "SELECT hub_seq FROM pushed_batches")) and len(a.query(
                    "SELECT 1 FROM pushed_batches WHERE key_epoch = 3")) > 0, "p3 pushed")
        for d in (a_dir, b_dir, c_dir):
            shutil.rmtree(d)
        pass_file = tmp_path / "pass.txt"
        pass_file.write_text(PASSPHRASE + "\n")
        new_dir = tmp_path / "new"
        proc = await start_restore(new_dir, hub.url, kit, token=await enrollment_token(
            hub.url, operator, practice_id), passphrase_file=pass_file)
        await finish(proc)
        state = with_database(new_dir, lambda c: require_sync_state(c, new_dir))
        assert state.keyring is not None and sorted(state.keyring.keys) == [1, 2, 3]
        async with running(new_dir) as restored:
            await wait_for(lambda: {("Patient", p) for p in ("p1", "p2", "p3")}
                           <= set(restored.states()), "every chart back")
