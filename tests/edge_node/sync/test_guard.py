"""Blast-radius guard: a wave of deletes is held; approve releases it, discard restores."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from edge_node.cli import held
from edge_node.fhir.write_op import WriteOp
from edge_node.hub_link.settings import SyncSettings
from tests.edge_node.sync.edges import ACTOR, FAST, patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub

GUARDED = SyncSettings(**{**{f: getattr(FAST, f) for f in FAST.__slots__},
                          "guard_min_records": 5, "guard_share": 0.2})


async def _decide(data_dir: Path, action: str) -> None:
    args = argparse.Namespace(data=data_dir, action=action, json=False)
    assert await asyncio.to_thread(held.run, args) == 0


async def _wave(tmp_path: Path, action: str) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir, GUARDED) as a, running(b_dir, GUARDED) as b:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            for i in range(10):
                await a.write("Patient", f"p{i}", patient(f"N{i}"))
            await wait_for(lambda: len(b.states()) == 10, "ten patients at b")
            before = b.states()
            # one runaway script: eight deletes in one commit
            await a.edge.writer.submit([WriteOp("delete", "Patient", f"p{i}", None)
                                        for i in range(8)], actor=ACTOR, atomic=False)
            await wait_for(lambda: a.sync.ctx.guard_holding == 8, "guard holds")
            await a.write("Patient", "after", patient("Later"))  # held behind the wave
            # The hold is audited per record, with its patient (its audit rows ride with
            # the next commit, like reads').
            await wait_for(lambda: sorted(a.query(
                "SELECT resource_id, patient_ref FROM audit WHERE action = 'guard-hold'")) ==
                [(f"p{i}", f"Patient/p{i}") for i in range(8)], "hold audited")
            await a.edge.writer.wait_idle()
            assert b.states() == before  # nothing of the wave spread
            assert b.query("SELECT count(*) FROM resources WHERE deleted = 1") == [(0,)]
            await _decide(a_dir, action)
            await wait_for(lambda: ("Patient", "after") in b.states(), "released")
            await wait_for(lambda: a.states() == b.states(), "converged")
            assert a.sync.ctx.guard_holding == 0
            await wait_for(lambda: a.query(
                "SELECT count(*) FROM audit WHERE action = 'guard-release'") == [(1,)],
                "release audited")
            deleted = b.query("SELECT count(*) FROM resources WHERE deleted = 1")[0][0]
            if action == "approve":
                assert deleted == 8
            else:
                assert deleted == 0
                for i in range(8):
                    assert b"N%d" % i in b.query(
                        "SELECT json FROM resources WHERE id = ?", f"p{i}")[0][0]
                # the wave and its undo are both in the history, in one batch at b
                assert b.query("SELECT count(*) FROM history WHERE deleted = 1") == [(8,)]


async def test_guard_holds_a_wave_of_deletes_until_approved(tmp_path: Path) -> None:
    await _wave(tmp_path, "approve")


async def test_guard_discard_restores_and_others_never_show_the_damage(
        tmp_path: Path) -> None:
    await _wave(tmp_path, "discard")
