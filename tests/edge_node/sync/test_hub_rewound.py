"""A hub restored from an older backup: edges ahead of its log rewind, re-send and relay.

Without the check, an edge whose cursor is past the restored hub's head would skip
the new batches that take the lost sequence numbers — silent divergence.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.edge_node.sync.children import free_port
from tests.edge_node.sync.edges import patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


def _backup(db: Path, to: Path) -> None:
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _restore(backup: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(backup.read_bytes())


async def test_edges_ahead_of_a_restored_hub_rewind_and_converge(tmp_path: Path) -> None:
    db, backup, port = tmp_path / "hub.db", tmp_path / "hub-backup.db", free_port()
    operator = await add_operator(db)
    async with local_hub(db, port=port) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: ("Patient", "p1") in b.states(), "p1 at b")
            await asyncio.to_thread(_backup, db, backup)  # the nightly backup, taken here
            await a.write("Patient", "p2", patient("Suzuki"))
            await b.write("Patient", "p3", patient("Tanaka"))
            await wait_for(lambda: len(a.states()) == len(b.states()) == 3, "p2, p3 spread")
            # Three batches in the log; both sites have read all of them (own ones too).
            await wait_for(lambda: a.sync.ctx.cursor == b.sync.ctx.cursor == 3, "cursors at 3")
            before = b.sync.ctx.cursor
    _restore(backup, db)  # the hub's disk died; last night's backup comes back

    async with local_hub(db, port=port):
        # A comes back first: it re-sends what the hub lost of its own and writes p4, so
        # the hub hands B's old position to one of A's batches (sequence numbers reused).
        async with running(a_dir) as a:
            await a.write("Patient", "p4", patient("Ito"))
            await wait_for(lambda: a.query("SELECT count(*) FROM pushed_batches WHERE hub_seq "
                                           "IS NULL") == [(0,)], "a's batches (re-)sent")
            await wait_for(lambda: a.sync.ctx.cursor >= before, "the hub past b's position")
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.status.snapshot().last_error_code ==
                           "hub_log_rewound", "b saw the hub's log differ from its copy")
            assert f"this site was at {before}" in str(b.sync.ctx.status.snapshot().last_error)
            await b.write("Patient", "p5", patient("Kato"))

            def converged() -> bool:
                states = a.states()
                return len(states) == 5 and states == b.states()

            await wait_for(converged, "converged after the restore", 20)
            await wait_for(lambda: a.history() == b.history(), "same history")
            await wait_for(lambda: b.query("SELECT count(*) FROM pushed_batches WHERE hub_seq "
                                           "IS NULL") == [(0,)], "b's batches re-sent")
