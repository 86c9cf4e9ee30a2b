"""Approval checks the fingerprint; revocation rotates the key; refusals become dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.hub_link.errors import FingerprintMismatch
from edge_node.sync.enroll import approve, invite, revoke
from tests.edge_node.sync.edges import enroll, patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_wrong_fingerprint_is_refused_and_nothing_approved(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        [a_dir] = await practice(tmp_path, hub.url, operator, 1)
        res = await enroll(tmp_path, hub.url, (await invite(a_dir))[0], "newsite")
        assert res.status == "pending"
        with pytest.raises(FingerprintMismatch):
            await approve(a_dir, res.site_id, "AAAA-BBBB-CCCC-DDDD-EEEE")
        assert await approve(a_dir, res.site_id, res.fingerprint.lower().replace("-", ""))


async def test_revoked_site_cannot_open_new_batches_and_its_push_is_a_dead_letter(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        async with running(a_dir) as a, running(b_dir) as b, running(c_dir) as c:
            await wait_for(lambda: all(x.sync.ctx.keyring for x in (a, b, c)), "keys")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: ("Patient", "p1") in c.states(), "p1 at c")
            sealed_before = len(a.query("SELECT 1 FROM pushed_batches"))
            epoch = await revoke(a_dir, c.edge.site.site_id, __import__("os").urandom)
            assert epoch == 2
            # Written right after revoke returned: sealed under the new epoch already.
            await a.write("Patient", "p2", patient("Suzuki"))
            await wait_for(lambda: ("Patient", "p2") in b.states(), "p2 at b")
            assert {e for (e,) in a.query("SELECT key_epoch FROM pushed_batches LIMIT -1 "
                                          "OFFSET ?", sealed_before)} == {2}
            assert b.sync.ctx.keyring is not None and max(b.sync.ctx.keyring.keys) == 2
            assert c.sync.ctx.keyring is not None and max(c.sync.ctx.keyring.keys) == 1
            assert ("Patient", "p2") not in c.states()
            await c.write("Patient", "p3", patient("Tanaka"))
            await wait_for(lambda: c.query("SELECT code FROM dead_letters") != [],
                           "dead letter at c")
            assert ("Patient", "p3") not in b.states()
