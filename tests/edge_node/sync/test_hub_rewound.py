"""A hub restored from an older backup: edges ahead of its log rewind, re-send and relay.

Without the check, an edge whose cursor is past the restored hub's head would skip
the new batches that take the lost sequence numbers — silent divergence.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import HubUnreachable
from sync_protocol.models import PushAck
from tests.edge_node.sync.children import free_port
from tests.edge_node.sync.edges import Running, patient, practice, running, wait_for
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


@dataclass(frozen=True)
class _BackedUp:
    db: Path
    backup: Path
    port: int


@asynccontextmanager
async def _backed_up_after_p1(tmp_path: Path
                              ) -> AsyncIterator[tuple[_BackedUp, Running, Running]]:
    """Sites A and B running at a hub; A wrote p1, B has it, and the hub's database was
    backed up just then (the nightly backup): `_restore(backup, db)` afterwards."""
    db, backup, port = tmp_path / "hub.db", tmp_path / "hub-backup.db", free_port()
    operator = await add_operator(db)
    async with local_hub(db, port=port) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: ("Patient", "p1") in b.states(), "p1 at b")
            await asyncio.to_thread(_backup, db, backup)
            yield _BackedUp(db, backup, port), a, b


async def test_edges_ahead_of_a_restored_hub_rewind_and_converge(tmp_path: Path) -> None:
    async with _backed_up_after_p1(tmp_path) as (setup, a, b):
        db, backup, port = setup.db, setup.backup, setup.port
        a_dir, b_dir = a.data_dir, b.data_dir
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


@pytest.mark.parametrize("copies", ["kept", "none"])
async def test_an_edge_ahead_of_a_restored_hub_rewinds_to_its_head(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, copies: str) -> None:
    """The edge comes back before anyone else: its cursor (3) is past the hub's head (1).

    It must notice from the pull answer's `head`, say so once in the log and on the status
    page, go back to the head, re-send its own batch the hub lost and relay A's; A's next
    batches then take hub sequence numbers B had read before, and still reach B.  With
    `copies="none"` B kept no copy of what it received (as after a bootstrap from a
    snapshot): nothing to compare at the head and nothing to relay; A re-sends its own.
    """
    async with _backed_up_after_p1(tmp_path) as (setup, a, b):
        db, backup, port = setup.db, setup.backup, setup.port
        a_dir, b_dir = a.data_dir, b.data_dir
        await a.write("Patient", "p2", patient("Suzuki"))
        await wait_for(lambda: len(b.states()) == 2, "p2 at b")
        await b.write("Patient", "p3", patient("Tanaka"))
        await wait_for(lambda: a.sync.ctx.cursor == b.sync.ctx.cursor == 3, "cursors at 3")
        b_site, practice_id = str(b.edge.site.site_id), str(b.sync.ctx.state.practice_id)
    _restore(backup, db)  # the hub's log now ends at 1
    if copies == "none":
        conn = sqlite3.connect(b_dir / "edge.sqlite3")
        with conn:
            conn.execute("DELETE FROM received_batches")
        conn.close()

    caplog.set_level(logging.WARNING, logger="edge_node.sync.recovery")
    async with local_hub(db, port=port):
        async with running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.status.snapshot().last_error_code ==
                           "hub_log_rewound", "b noticed the hub's log ends before its cursor")
            assert b.sync.ctx.cursor == 1
            message = str(b.sync.ctx.status.snapshot().last_error)
            assert "ends at position 1" in message and "this site was at 3" in message
            assert "restored from an older backup" in message
            # B's own p3 (hub seq 3 before) is sent again; A's p2 is relayed by B.
            await wait_for(lambda: b.query("SELECT count(*) FROM pushed_batches WHERE hub_seq "
                                           "IS NULL") == [(0,)], "b's p3 re-sent")
        rewound = [r for r in caplog.records if r.name == "edge_node.sync.recovery"
                   and r.levelno == logging.WARNING and "rewound" in r.getMessage()]
        assert len(rewound) == 1, [r.getMessage() for r in rewound]
        assert b_site in rewound[0].getMessage() and practice_id in rewound[0].getMessage()

        async with running(a_dir) as a, running(b_dir) as b:
            await a.write("Patient", "p4", patient("Ito"))  # takes a number B had read

            def converged() -> bool:
                states = a.states()
                return len(states) == 4 and states == b.states()

            await wait_for(converged, "p4 reached b; converged", 20)
            await wait_for(lambda: a.history() == b.history(), "same history")
            await b.write("Patient", "p5", patient("Kato"))
            await wait_for(lambda: len(a.states()) == 5 and a.states() == b.states(),
                           "p5 reached a")
            await wait_for(lambda: a.sync.ctx.cursor == b.sync.ctx.cursor == 5,
                           "both read the five batches of the restored log")


async def test_an_own_batch_the_restored_hub_lost_is_sent_again(tmp_path: Path) -> None:
    """B's last batch was acknowledged (hub seq 3) but B had not pulled that far (cursor 2)
    when the hub went back to its backup (head 2): B's cursor is not ahead of the hub, yet
    its batch is lost.  B sends it again without writing anything new."""
    db, backup, port = tmp_path / "hub.db", tmp_path / "hub-backup.db", free_port()
    operator = await add_operator(db)
    async with local_hub(db, port=port) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            await a.write("Patient", "p1", patient("Sato"))
            # (waited for, or p1 and p2 could be sealed in one batch: one hub position)
            await wait_for(lambda: b.sync.ctx.cursor == 1, "p1 at b")
            await a.write("Patient", "p2", patient("Suzuki"))
            await wait_for(lambda: b.sync.ctx.cursor == 2 and len(b.states()) == 2, "p1, p2")
            await asyncio.to_thread(_backup, db, backup)
        async with running(b_dir) as b:
            await b.write("Patient", "p3", patient("Tanaka"))
            await wait_for(lambda: b.query("SELECT hub_seq FROM pushed_batches") == [(3,)],
                           "p3 acknowledged at hub seq 3")
            await wait_for(lambda: b.sync.ctx.cursor == 3, "b read its own batch back")
    # B stopped after the ack but before its pull moved the cursor (a crash, say).
    conn = sqlite3.connect(b_dir / "edge.sqlite3")
    with conn:
        conn.execute("UPDATE sync_state SET cursor = 2")
    conn.close()
    _restore(backup, db)

    async with local_hub(db, port=port):
        async with running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.status.snapshot().last_error_code ==
                           "hub_log_rewound", "b saw its batch is gone")
            assert "its own changes at 3" in str(b.sync.ctx.status.snapshot().last_error)
            await wait_for(lambda: b.query("SELECT count(*) FROM pushed_batches WHERE hub_seq "
                                           "IS NULL") == [(0,)], "p3 sent again")
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: len(a.states()) == 3 and a.states() == b.states(),
                           "p3 reached a", 20)
            assert a.history() == b.history()


async def test_a_relay_cut_by_a_dropped_line_goes_on_in_the_next_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B is the only site back after the hub's restore and must relay A's lost batch; the
    line drops on that very push.  The batch was already gone from B's copies (its hub
    seq now names another batch), so only the relay queue, written with the rewind,
    still holds it: the next session pushes it, and it comes back to B from the hub."""
    async with _backed_up_after_p1(tmp_path) as (setup, a, b):
        db, backup, port = setup.db, setup.backup, setup.port
        b_dir = b.data_dir
        await a.write("Patient", "p2", patient("Suzuki"))
        await wait_for(lambda: b.sync.ctx.cursor == 2 and len(b.states()) == 2, "p2 at b")
        [(a_p2,)] = b.query("SELECT sealed FROM received_batches WHERE hub_seq = 2")
    _restore(backup, db)  # the hub's log ends at 1: A's p2 is lost, and A stays away

    cuts: list[bytes] = []
    original = HubClient.push

    async def push(self: HubClient, sealed: bytes) -> PushAck:
        if sealed == a_p2 and not cuts:
            cuts.append(sealed)
            raise HubUnreachable("connection reset by peer (test)")
        return await original(self, sealed)

    monkeypatch.setattr(HubClient, "push", push)
    async with local_hub(db, port=port), running(b_dir) as b:
        await wait_for(lambda: cuts, "the relay of A's p2 cut")
        await wait_for(lambda: b.query("SELECT count(*) FROM relay_queue") == [(0,)],
                       "the relay queue drained by a later session", 20)
        await wait_for(lambda: b.query("SELECT count(*) FROM received_batches WHERE sealed = ?",
                                       a_p2) == [(1,)], "A's p2 back at b from the hub", 20)
        assert b.query("SELECT count(*) FROM relay_queue") == [(0,)]
        assert len(cuts) == 1
