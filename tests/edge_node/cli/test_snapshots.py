"""`chartsync edge snapshots` lists what the hub holds, newest first, and `chartsync edge
restore --snapshot ID` restores exactly that one (real edges, a real hub)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from uuid import UUID

import pytest

from chartsync.cli import main
from edge_node.cli import snapshots
from edge_node.cli.restore import restore
from edge_node.sync.enroll import invite
from tests.edge_node.snapshots.at_hub import (
    practice_with_two_snapshots,
    restore_args,
    rows,
)
from tests.edge_node.sync.edges import PASSPHRASE
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_list_the_hubs_snapshots_and_restore_a_chosen_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE)
    async with local_hub(tmp_path / "hub.db") as hub:
        dirs, _, (_, newest) = await practice_with_two_snapshots(tmp_path, hub.url,
                                                                    operator)
        capsys.readouterr()
        args = argparse.Namespace(data=dirs[1], json=True)
        assert await asyncio.to_thread(snapshots.run, args) == 0
        listed = json.loads(capsys.readouterr().out)
        seqs = [r["hub_seq"] for r in listed]
        assert seqs == sorted(seqs, reverse=True) and seqs[0] >= newest
        assert {r["site_name"] for r in listed} <= {"site0", "site1"}
        assert all(r["size_bytes"] > 0 and r["key_epoch"] == 1 and r["created_ms"] > 0
                   and r["log_after_kept"] for r in listed)  # no retention here
        older = next(r for r in reversed(listed) if r["hub_seq"] < seqs[0])

        args.json = False
        assert await asyncio.to_thread(snapshots.run, args) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].startswith("SNAPSHOT ID")
        assert [line.split()[0] for line in table[1:]] == [r["snapshot_id"] for r in listed]

        token, _ = await invite(dirs[0])
        new_dir = tmp_path / "new"
        # The recovery kit signs the new machine into the roster: nobody approves it.
        done = await restore(restore_args(
            new_dir, hub.url, dirs[0] / "recovery-kit.txt", token=token,
            passphrase_file=pass_file, name="new", snapshot=UUID(older["snapshot_id"])))
        assert done == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (result["restored"], result["hub_seq"]) == (older["snapshot_id"],
                                                          older["hub_seq"])
        # The chosen snapshot's log came along, and nothing after it.
        assert rows(new_dir, "SELECT max(hub_seq) FROM received_batches") == [
            (older["hub_seq"],)]


def test_snapshots_needs_an_enrolled_site(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "init", "--data", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert main(["edge", "snapshots", "--data", str(tmp_path / "d")]) == 1
    assert "not enrolled" in capsys.readouterr().err
