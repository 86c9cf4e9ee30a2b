"""A site offline past the hub's retention re-bootstraps (`410 log_trimmed`) and keeps its edits.

The hub keeps one batch beyond its latest snapshot (`retention_batches=1`).
Site B goes offline, edits charts locally; site A writes on and uploads a
snapshot, so the hub trims the log B still needs.  When B comes back its pull
is refused with 410 `log_trimmed`; it re-bootstraps from the snapshot with its
own queued edits merged on top, pushes them, and both sites converge.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import WriteOp
from edge_node.node import Edge
from tests.edge_node.snapshots.at_hub import (
    SNAP,
    applied,
    converged,
    hub_with,
    site_view,
    wait_snapshot,
    write_charts,
)
from tests.edge_node.sync.edges import ACTOR, patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, wall_ms


async def test_a_site_behind_the_trimmed_log_rebootstraps_and_keeps_its_edits(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with hub_with(tmp_path / "hub.db", retention_batches=1) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir, SNAP) as a:
            async with running(b_dir, SNAP) as b:
                await wait_for(lambda: b.sync.ctx.keyring is not None, "keys at b")
                await write_charts(a, "a", 3)
                await converged([a, b], expect_changes=8)
                b_cursor = b.sync.ctx.cursor
            # B is offline and edits: a new chart and one that A also edits meanwhile.
            async with Edge.open(EdgeConfig(b_dir), clock=wall_ms, entropy=os.urandom) as edge:
                results = await edge.writer.submit(
                    [WriteOp("update", "Patient", "offline", {**patient("Offline"),
                                                               "resourceType": "Patient",
                                                               "id": "offline"}),
                     WriteOp("update", "Patient", "ap0", {**patient("B-edit", "1981-01-01"),
                                                          "resourceType": "Patient",
                                                          "id": "ap0"})],
                    actor=ACTOR, atomic=False)
                assert not any(isinstance(r, Exception) for r in results)
            await write_charts(a, "c", 6)
            await a.write("Patient", "ap0", patient("A-edit", "1982-02-02"))
            await wait_snapshot(hub.url, a.sync.ctx.state.credential, after=b_cursor + 2)
            caplog.set_level(logging.WARNING, logger="edge_node.snapshots.rebootstrap")
            async with running(b_dir, SNAP) as b:
                # 8 before, 2 offline at B, 14 + 1 at A afterwards
                await wait_for(lambda: applied(a_dir) == 25 and applied(b_dir) == 25,
                               "both sites hold every change")
                await converged([a, b], expect_changes=25)
                assert site_view(a_dir) == site_view(b_dir)
            assert any("re-bootstrapped from snapshot" in r.getMessage()
                       for r in caplog.records), "B should have re-bootstrapped"
