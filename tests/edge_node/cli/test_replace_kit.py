"""`edge replace-kit` and `edge roster`: a new kit opens every epoch, the old one no new one."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from chartsync.cli import main
from edge_node.hub_link.client import HubClient
from edge_node.store.connection import with_database
from edge_node.store.site import site_identity
from edge_node.store.sync_state import require_sync_state
from edge_node.sync.enroll import revoke, settings_of
from edge_node.sync.kit_admission import keys_for_kit
from sync_protocol.recovery import open_recovery_kit
from sync_protocol.roster import fold
from tests.edge_node.sync.edges import PASSPHRASE, practice
from tests.edge_node.sync.hubs import add_operator, local_hub

NEW_PASSPHRASE = "a brand new passphrase 2026!"


async def test_a_replaced_kit_opens_every_epoch_and_the_old_kit_no_new_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, _, c_dir = await practice(tmp_path, hub.url, operator, 3)
        old_kit = open_recovery_kit((a_dir / "recovery-kit.txt").read_text(), PASSPHRASE)
        pass_file = tmp_path / "new-pass.txt"
        pass_file.write_text(NEW_PASSPHRASE + "\n")
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["edge", "replace-kit", "--data", str(a_dir),
                                              "--recovery-passphrase-file",
                                              str(pass_file)]) == 0
        said = capsys.readouterr().out
        new_kit = open_recovery_kit((a_dir / "recovery-kit.txt").read_text(), NEW_PASSPHRASE)
        assert new_kit.keys is not None and old_kit.keys is not None
        assert new_kit.keys.public().fingerprint in said
        assert not (a_dir / "recovery-kit.txt.new").exists()
        c_id, _ = site_identity(c_dir)
        assert await revoke(a_dir, c_id, os.urandom) == 2

        assert await asyncio.to_thread(main, ["edge", "roster", "--data", str(a_dir),
                                              "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed["kit_fingerprint"] == new_kit.keys.public().fingerprint
        assert listed["epoch"] == 2
        assert {m["site_id"]: m["approved"] for m in listed["members"]}[str(c_id)] is False

        state = with_database(a_dir, lambda conn: require_sync_state(conn, a_dir))
        async with HubClient.open(settings_of(state), credential=state.credential) as client:
            roster = fold(state.practice_id, await client.roster())
            me, keys = site_identity(a_dir)
            opened_new = await keys_for_kit(client, state.practice_id, kit=new_kit.keys,
                                            roster=roster, site_id=me, site_keys=keys)
            opened_old = await keys_for_kit(client, state.practice_id, kit=old_kit.keys,
                                            roster=roster, site_id=me, site_keys=keys)
        assert sorted(k.epoch for k in opened_new) == [1, 2]
        assert sorted(k.epoch for k in opened_old) == [1]
