"""`edge request-keys`: a member that missed a key epoch gets it re-sent by the others."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import EnrollmentError
from edge_node.store.connection import with_database
from edge_node.store.site import site_identity
from edge_node.store.sync_state import require_sync_state
from edge_node.sync.enroll import invite, revoke, settings_of
from edge_node.sync.key_requests import request_keys
from tests.edge_node.sync.edges import enroll, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_a_member_that_lost_its_key_delivery_asks_and_gets_the_epoch(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        async with running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.keyring is not None, "b has epoch 1")
        c_id, _ = site_identity(c_dir)
        assert await revoke(a_dir, c_id, os.urandom) == 2
        state = with_database(b_dir, lambda conn: require_sync_state(conn, b_dir))
        async with HubClient.open(settings_of(state), credential=state.credential) as client:
            for mail in await client.mailbox():  # the delivery of epoch 2 is lost
                await client.delete_mail(mail.mail_id)
        async with running(a_dir), running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.roster is not None, "b's roster")
            assert b.sync.ctx.keyring is not None and sorted(b.sync.ctx.keyring.keys) == [1]
            assert await request_keys(b_dir) == [site_identity(a_dir)[0]]
            await wait_for(lambda: b.sync.ctx.keyring is not None
                           and sorted(b.sync.ctx.keyring.keys) == [1, 2], "epoch 2 re-sent")


async def test_a_site_outside_the_roster_cannot_ask(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, _ = await practice(tmp_path, hub.url, operator, 2)
        await enroll(tmp_path, hub.url, (await invite(a_dir))[0], "stranger")
        with pytest.raises(EnrollmentError, match="not an approved member"):
            await request_keys(tmp_path / "stranger")
