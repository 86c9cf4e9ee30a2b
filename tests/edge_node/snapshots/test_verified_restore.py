"""A snapshot altered at rest in the hub's database is refused at restore before anything
is written: not its bytes (digest), not its attestation (signature).

Real edges upload signed snapshots to a real hub; then the hub's SQLite file is edited
behind its back, as an intruder on the hub machine would, and a new site restores.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_node.cli.restore import restore
from edge_node.errors import SnapshotRefused
from edge_node.sync.enroll import invite
from tests.edge_node.snapshots.at_hub import (
    practice_with_two_snapshots,
    restore_args,
    rows,
)
from tests.edge_node.sync.edges import PASSPHRASE
from tests.edge_node.sync.hubs import add_operator, local_hub

#: The snapshot the hub serves as the latest (its order: cloud_hub/store/sqlite.py).
LATEST = ("(SELECT rowid FROM snapshots WHERE verified = 1 "
          "ORDER BY hub_seq DESC, created_ms DESC, snapshot_id DESC LIMIT 1)")


def _alter_latest(hub_db: Path, column: str, change: Callable[[bytes], bytes]) -> None:
    with sqlite3.connect(hub_db) as db:
        [(old,)] = db.execute(f"SELECT {column} FROM snapshots WHERE rowid = {LATEST}")
        db.execute(f"UPDATE snapshots SET {column} = ? WHERE rowid = {LATEST}",
                   (change(bytes(old)),))


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def _nothing_restored(data_dir: Path) -> None:
    assert not (data_dir / ".restore").exists()
    for table in ("resources", "history", "conflicts", "received_batches"):
        assert rows(data_dir, f"SELECT count(*) FROM {table}") == [(0,)], table


@pytest.mark.parametrize(("column", "refusal"), [
    ("blob", "do not match the signed digest"),
    ("signature", "refused before download"),
])
async def test_a_snapshot_altered_at_rest_is_refused_before_anything_is_written(
        tmp_path: Path, column: str, refusal: str) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE)
    async with local_hub(tmp_path / "hub.db") as hub:
        dirs, _, _ = await practice_with_two_snapshots(tmp_path, hub.url, operator)
        _alter_latest(tmp_path / "hub.db", column, _flip_middle)
        token, _ = await invite(dirs[0])
        new_dir = tmp_path / "new"
        args = restore_args(new_dir, hub.url, dirs[0] / "recovery-kit.txt", token=token,
                            passphrase_file=pass_file, name="new")
        # The recovery kit signs the new machine into the roster: nobody approves it.
        with pytest.raises(SnapshotRefused, match=refusal) as refused:
            await restore(args)
        assert "--snapshot" in refused.value.hint  # the way out: pick another one
        _nothing_restored(new_dir)
        # Every rerun refuses it again; nothing is left behind either time.
        args.token = None
        with pytest.raises(SnapshotRefused, match=refusal):
            await restore(args)
        _nothing_restored(new_dir)
