"""Membership from the member-signed roster: the operator cannot admit, the kit can,
every epoch stays open to the kit, and every change after a revocation uses the new key."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from uuid import UUID

import aiohttp

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import EnrollmentError
from edge_node.store.connection import open_sync, with_database
from edge_node.store.site import site_identity
from edge_node.store.sync_state import merge_keyring, require_sync_state
from edge_node.sync.enroll import approve, enroll_site, invite, revoke, settings_of
from edge_node.sync.kit_admission import admit_with_kit, keys_for_kit
from sync_protocol.recovery import open_recovery_kit, open_shared_recovery_kit
from tests.edge_node.sync.edges import (
    PASSPHRASE,
    enroll,
    new_practice,
    patient,
    practice,
    running,
    wait_for,
)
from tests.edge_node.sync.hubs import add_operator, local_hub, wall_ms


def epochs_pushed(data_dir: Path, after: int = 0) -> list[int]:
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        return [e for (e,) in conn.execute(
            "SELECT key_epoch FROM pushed_batches WHERE seq_from > ? ORDER BY seq_from",
            (after,))]
    finally:
        conn.close()


def last_seq(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        return int(conn.execute("SELECT coalesce(max(seq_to), 0) FROM pushed_batches"
                                ).fetchone()[0])
    finally:
        conn.close()


def credential_of(data_dir: Path) -> AbstractAsyncContextManager[HubClient]:
    """A hub client with the credential of the site in `data_dir`."""
    conn = open_sync(data_dir)
    try:
        state = require_sync_state(conn, data_dir)
    finally:
        conn.close()
    return HubClient.open(settings_of(state), credential=state.credential)


async def test_every_change_sealed_after_revoke_uses_the_new_epoch_at_every_site(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        async with running(a_dir) as a, running(b_dir) as b, running(c_dir) as c:
            await wait_for(lambda: all(x.sync.ctx.keyring for x in (a, b, c)), "keys")
            for i, x in enumerate((a, b)):
                await x.write("Patient", f"before{i}", patient("Sato"))
            await wait_for(lambda: last_seq(a_dir) and last_seq(b_dir), "pushed before")
            a_mark, b_mark = last_seq(a_dir), last_seq(b_dir)
            assert await revoke(a_dir, c.edge.site.site_id, os.urandom) == 2
            await a.write("Patient", "after-a", patient("Suzuki"))  # right after revoke
            await wait_for(lambda: b.sync.ctx.keyring is not None
                           and 2 in b.sync.ctx.keyring.keys, "epoch 2 reaches b")
            await b.write("Patient", "after-b", patient("Tanaka"))  # right after it arrived
            await wait_for(lambda: ("Patient", "after-b") in a.states()
                           and ("Patient", "after-a") in b.states(), "both pushed")
            assert set(epochs_pushed(a_dir, a_mark)) == {2}
            assert set(epochs_pushed(b_dir, b_mark)) == {2}
            assert ("Patient", "after-a") not in c.states()


async def test_operator_approval_without_the_kit_never_delivers_a_key(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        practice_id = with_database(a_dir, lambda conn: require_sync_state(
            conn, a_dir)).practice_id
        async with HubClient.open(HubSettings.parse(hub.url, insecure_http=True)) as c:
            operator_token = (await c.create_enrollment_token(
                practice_id, credential=operator)).token
        newcomer = await enroll(tmp_path, hub.url, operator_token, "newcomer")
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {operator}"}) as http, http.post(
                    f"{hub.url}/v1/practices/{newcomer.practice_id}/sites/"
                    f"{newcomer.site_id}/approve") as resp:
            answer = await resp.json()
        assert resp.status == 200 and answer["status"] == "approved"
        assert answer["roster_member"] is False and "recovery kit" in answer["note"]
        async with running(a_dir) as a:  # a member's sync loop sees the approved newcomer
            await wait_for(lambda: a.sync.ctx.roster is not None, "a's roster")
        b_id, _ = site_identity(b_dir)
        assert await revoke(a_dir, b_id, os.urandom) == 2  # seals epoch 2 to members only
        async with credential_of(tmp_path / "newcomer") as client:
            assert await client.mailbox() == []
        # The same site, admitted with the kit's signature, gets the next epoch.
        kit = open_recovery_kit((a_dir / "recovery-kit.txt").read_text(), PASSPHRASE)
        new_id, new_keys = site_identity(tmp_path / "newcomer")
        async with credential_of(tmp_path / "newcomer") as client:
            roster = await admit_with_kit(client, tmp_path / "newcomer",
                                          practice_id=newcomer.practice_id, site_id=new_id,
                                          site_keys=new_keys, kit=kit.keys, now_ms=wall_ms())
            assert roster is not None and roster.is_approved(new_id)
            c_id, _ = site_identity(c_dir)
            assert await revoke(a_dir, c_id, os.urandom) == 3
            keys = await keys_for_kit(client, newcomer.practice_id, kit=None, roster=roster,
                                      site_id=new_id, site_keys=new_keys)
        assert [k.epoch for k in keys] == [3]


async def test_the_kit_alone_restores_every_chart_after_two_revocations(tmp_path: Path
                                                                       ) -> None:
    await _restore_after_revocations(tmp_path, shares=None)


async def test_two_of_three_shares_restore_every_chart_after_two_revocations(
        tmp_path: Path) -> None:
    await _restore_after_revocations(tmp_path, shares=(2, 3))


async def _restore_after_revocations(tmp_path: Path, shares: tuple[int, int] | None) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        settings = HubSettings.parse(hub.url, insecure_http=True)
        practice_id, token = await new_practice(hub.url, operator)
        first = await enroll_site(tmp_path / "a", settings, token=token, name="a",
                                  admin_name="admin", now_ms=wall_ms(), entropy=os.urandom,
                                  passphrase=PASSPHRASE, shares=shares, created="2026-12-03")
        dirs = [tmp_path / "a"]
        for name in ("b", "c"):
            res = await enroll(tmp_path, hub.url, (await invite(dirs[0]))[0], name)
            await approve(dirs[0], res.site_id, res.fingerprint)
            dirs.append(tmp_path / name)
        kit_text = (dirs[0] / "recovery-kit.txt").read_text()
        async with running(dirs[0]) as a, running(dirs[1]) as b, running(dirs[2]):
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            await a.write("Patient", "p1", patient("Epoch-One"))
            c_id, _ = site_identity(dirs[2])
            assert await revoke(dirs[0], c_id, os.urandom) == 2
            await a.write("Patient", "p2", patient("Epoch-Two"))
            await wait_for(lambda: b.sync.ctx.keyring is not None
                           and 2 in b.sync.ctx.keyring.keys, "epoch 2 at b")
            assert await revoke(dirs[1], a.edge.site.site_id, os.urandom) == 3
            await b.write("Patient", "p3", patient("Epoch-Three"))
            await wait_for(lambda: set(epochs_pushed(dirs[1])) >= {3}
                           and all(r is not None for (r,) in b.query(
                               "SELECT hub_seq FROM pushed_batches")), "p3 at the hub")
        # Every site is lost.  A new machine has the kit and a token from the operator.
        if shares is None:
            kit = open_recovery_kit(kit_text, PASSPHRASE)
        else:
            kit = open_shared_recovery_kit(kit_text, [first.shares[0], first.shares[2]])
        assert sorted(kit.keyring.keys) == [1]
        async with HubClient.open(settings) as c:
            token2 = (await c.create_enrollment_token(UUID(str(practice_id)),
                                                      credential=operator)).token
        new = await enroll(tmp_path, hub.url, token2, "restored")
        new_dir = tmp_path / "restored"
        new_id, new_keys = site_identity(new_dir)
        async with credential_of(new_dir) as client:
            roster = await admit_with_kit(client, new_dir, practice_id=new.practice_id,
                                          site_id=new_id, site_keys=new_keys, kit=kit.keys,
                                          now_ms=wall_ms())
            keys = await keys_for_kit(client, new.practice_id, kit=kit.keys, roster=roster,
                                      site_id=new_id, site_keys=new_keys)
        keyring = kit.keyring
        for key in keys:
            keyring = keyring.with_key(key)
        assert sorted(merge_keyring(new_dir, keyring).keys) == [1, 2, 3]
        async with running(new_dir) as restored:
            await wait_for(lambda: {("Patient", p) for p in ("p1", "p2", "p3")}
                           <= set(restored.states()), "every chart restored")


async def test_two_members_revoking_the_same_site_at_once_agree_on_one_new_key(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        async with running(b_dir) as b:  # b holds epoch 1 before anyone revokes
            await wait_for(lambda: b.sync.ctx.keyring is not None, "b's keys")
        c_id, _ = site_identity(c_dir)
        results = await asyncio.gather(revoke(a_dir, c_id, os.urandom),
                                       revoke(b_dir, c_id, os.urandom),
                                       return_exceptions=True)
        assert sorted(map(type, results), key=str) == sorted([int, EnrollmentError], key=str)
        refused = next(r for r in results if isinstance(r, EnrollmentError))
        assert "revoked by another site" in refused.message
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: all(x.sync.ctx.keyring is not None
                                       and 2 in x.sync.ctx.keyring.keys for x in (a, b)),
                           "epoch 2 at both")
            assert a.sync.ctx.keyring is not None and b.sync.ctx.keyring is not None
            assert a.sync.ctx.keyring.keys[2] == b.sync.ctx.keyring.keys[2]
            await a.write("Patient", "after", patient("Ito"))
            await wait_for(lambda: ("Patient", "after") in b.states(), "a's write at b")
