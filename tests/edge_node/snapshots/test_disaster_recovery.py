"""Every site lost: `chartsync edge restore --recovery-kit` (a real process) brings it all back.

With a passphrase, and with 2 of 3 custodians' shares: the operator approves
the restored site, it installs the latest snapshot and pulls the tail; all
charts (byte-identical `canonical_dump`), all history and all conflicts equal
what the lost sites agreed on.
"""

from __future__ import annotations

from pathlib import Path

from tests.edge_node.snapshots.lost_practice import (
    enrollment_token,
    finish,
    lose_practice,
    serve_until_caught_up,
    start_restore,
)
from tests.edge_node.sync.edges import PASSPHRASE
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
