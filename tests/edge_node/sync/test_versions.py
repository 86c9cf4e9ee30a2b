"""A batch from a newer protocol minor is held (not dropped) and applies after the upgrade."""

from __future__ import annotations

from pathlib import Path

import pytest

import sync_protocol.batch
import sync_protocol.version
from tests.edge_node.sync.edges import patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


@pytest.mark.xfail(strict=False, reason="the in-process hub shares sync_protocol.version with "
                   "the writer and refuses 1.1 (upgrade_required); needs the hub upgraded "
                   "first, i.e. a hub process patched to 1.1 — not done yet")
async def test_newer_minor_held_then_applied_after_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir) as a:
            async with running(b_dir) as b:
                await wait_for(lambda: b.sync.ctx.keyring is not None, "keys at b")
                monkeypatch.setattr(sync_protocol.batch, "PROTOCOL_VERSION", (1, 1))
                await a.write("Patient", "p1", patient("Sato"))
                await wait_for(lambda: b.query("SELECT reason FROM held_batches") ==
                               [("upgrade",)], "held at b")
                assert ("Patient", "p1") not in b.states()
            monkeypatch.setattr(sync_protocol.version, "PROTOCOL_VERSION", (1, 1))
            async with running(b_dir) as b:
                await wait_for(lambda: ("Patient", "p1") in b.states(),
                               "applied after upgrade")
                assert b.query("SELECT count(*) FROM held_batches") == [(0,)]
