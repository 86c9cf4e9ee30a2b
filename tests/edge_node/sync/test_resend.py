"""A hub that lost acknowledged batches gets them again from the site.

Two ways lead there, and each is tested alone: at the start of each pull session the
site sees the hub's log end before its own last acknowledged batch and marks what came
after unsent (`HubRecovery.check_head`, "rewind"); and a push that meets 409
chain_broken resends from where the hub expects (the pusher's fallback, "409": here
with the session check switched off, `SyncLoop.open(check_head=False)`, as in an edge
of the release before it, since otherwise the two race).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.edge_node.sync.edges import patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


def _copy_store(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        f = src.with_name(src.name + suffix)
        target = dst.with_name(dst.name + suffix)
        if f.exists():
            shutil.copyfile(f, target)
        elif target.exists():
            target.unlink()


@pytest.mark.parametrize("path", ["rewind", "409"])
async def test_hub_restored_from_an_old_backup_gets_the_lost_batches_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str) -> None:
    db, backup = tmp_path / "hub.db", tmp_path / "backup.db"
    operator = await add_operator(db)
    async with local_hub(db) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        port = hub.port
    async with running(a_dir, check_head=path == "rewind") as a:
        def acked() -> int:
            return int(a.query("SELECT count(*) FROM pushed_batches WHERE hub_seq IS NOT NULL "
                               "AND seq_to = (SELECT max(seq) FROM outbox)")[0][0])

        async with local_hub(db, port=port):
            await wait_for(lambda: a.sync.ctx.keyring is not None, "keys")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: acked() == 1, "p1 acknowledged")
        _copy_store(db, backup)  # the hub's backup: it knows p1 only
        async with local_hub(db, port=port):
            await a.write("Patient", "p2", patient("Suzuki"))
            await wait_for(lambda: acked() == 1, "p2 acknowledged")
            await a.write("Patient", "p3", patient("Tanaka"))
            await wait_for(lambda: acked() == 1, "p3 acknowledged")
        _copy_store(backup, db)  # disaster: the hub is restored from the old backup
        async with local_hub(db, port=port) as hub:
            if path == "rewind":
                await wait_for(lambda: a.sync.ctx.status.snapshot().last_error_code ==
                               "hub_log_rewound", "a saw the hub lost its batches")
            await a.write("Patient", "p4", patient("Kato"))  # "409": its push meets a 409
            await wait_for(lambda: acked() == 1, "p4 acknowledged after the resend")
            assert a.query("SELECT count(*) FROM dead_letters") == [(0,)]
            if path == "409":
                assert "hub expects our seq 2" in caplog.text  # the 409 path, not a re-ack
            else:
                assert "hub log rewound" in caplog.text
                assert "hub expects our seq" not in caplog.text
            async with running(b_dir) as b:
                await wait_for(lambda: len(b.states()) == 4, "b has all four")
                assert b.states() == a.states()
                assert len(b.history()) == 4
