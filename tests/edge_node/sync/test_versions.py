"""A batch from a newer protocol minor is held (not dropped) and applies after the upgrade.

The hub (already upgraded to 1.2) and the newer writer run in their own processes, so
the reader in this process keeps speaking 1.1 until it is "upgraded" and restarted.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

import sync_protocol.batch
import sync_protocol.version
from edge_node.api.status import sync_section
from tests.edge_node.sync.children import FAST_OPTIONS, edge_child, free_port, hub_child, started
from tests.edge_node.sync.edges import patient, practice, running, unsynced, wait_for
from tests.edge_node.sync.hubs import add_operator


async def test_newer_minor_held_then_applied_after_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, port = tmp_path / "hub.db", free_port()
    operator = await add_operator(db)
    url = f"http://127.0.0.1:{port}"
    async with started(hub_child(db, port, tmp_path, version=(1, 2))):
        a_dir, b_dir = await practice(tmp_path, url, operator, 2)
        async with unsynced(a_dir) as a:
            await a.write("Patient", "p1", patient("Sato"))
        async with running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.keyring is not None, "keys at b")
            async with started(edge_child(a_dir, tmp_path, version=(1, 2),
                                          sync_options=FAST_OPTIONS)):
                await wait_for(lambda: b.query("SELECT reason FROM held_batches") ==
                               [("upgrade",)], "held at b", 20)
            assert ("Patient", "p1") not in b.states()
            section = await sync_section(b.sync, b.edge.clock())
            notes = cast("list[str]", section["notes"])
            assert any("upgrade needed" in n and "1.2" in n for n in notes), section
        monkeypatch.setattr(sync_protocol.version, "PROTOCOL_VERSION", (1, 2))
        monkeypatch.setattr(sync_protocol.batch, "PROTOCOL_VERSION", (1, 2))
        async with running(b_dir) as b:
            await wait_for(lambda: ("Patient", "p1") in b.states(), "applied after upgrade")
            assert b.query("SELECT count(*) FROM held_batches") == [(0,)]
