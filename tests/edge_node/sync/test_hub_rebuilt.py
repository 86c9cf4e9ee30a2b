"""A hub lost with its disk and rebuilt empty on a new machine (#5): the sites re-enroll
under their old ids and keys (`chartsync edge reenroll`), pin the new hub's key, and
give it back the practice's whole log — their own batches, and the ones they received
from sites that come back later (held in the relay queue until the hub knows them) or
never (a site lost with the hub, registered by the operator from a survivor's
`chartsync edge sites`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from chartsync.cli import main
from edge_node.api.status import sync_section
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import EnrollmentError
from edge_node.sync.enroll import approve, invite, reenroll
from tests.edge_node.sync.children import free_port
from tests.edge_node.sync.edges import Running, patient, practice, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub, wall_ms


def _hub_log(db: Path) -> dict[UUID, int]:
    """Batches in the hub's log, per origin site."""
    conn = sqlite3.connect(db)
    try:
        return {UUID(bytes=bytes(site)): n for site, n in conn.execute(
            "SELECT site_id, count(*) FROM batches GROUP BY site_id")}
    finally:
        conn.close()


def _sync_state(data_dir: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        return list(conn.execute("SELECT * FROM sync_state"))
    finally:
        conn.close()


async def _status_sync(site: Running) -> dict[str, Any]:
    """The `sync` section of the site's GET /status."""
    return await sync_section(site.sync, site.edge.clock())


def _unsent(site: Running) -> int:
    return int(site.query("SELECT count(*) FROM pushed_batches WHERE hub_seq IS NULL")[0][0])


def _to_relay(site: Running) -> int:
    return int(site.query("SELECT count(*) FROM relay_queue")[0][0])


async def _write_apart(site: Running, rids: list[str]) -> None:
    """One batch per write (each acknowledged before the next)."""
    for n, rid in enumerate(rids, 1):
        await site.write("Patient", rid, patient(rid))
        await wait_for(lambda n=n: site.query(  # type: ignore[misc]
            "SELECT count(*) FROM pushed_batches WHERE hub_seq IS NOT NULL") == [(n,)],
            f"{rid} acknowledged")


async def test_a_lost_hub_is_rebuilt_from_the_sites(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    old_db = tmp_path / "old-hub" / "hub.db"
    old_db.parent.mkdir()
    operator = await add_operator(old_db)
    async with local_hub(old_db, port=port) as hub:
        a_dir, b_dir, c_dir = await practice(tmp_path, hub.url, operator, 3)
        async with running(a_dir) as a, running(b_dir) as b, running(c_dir) as c:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring
                           and c.sync.ctx.keyring, "keys")
            await _write_apart(c, ["c1"])
            await wait_for(lambda: len(a.states()) == len(b.states()) == 1, "c1 spread")
            b_at_a = {bytes(s) for (s,) in a.query("SELECT sealed FROM received_batches")}
            await _write_apart(a, ["a1", "a2", "a3"])
            await _write_apart(b, ["b1", "b2"])
            await wait_for(lambda: len(a.states()) == len(b.states()) == 6, "spread")
            practice_id = a.sync.ctx.state.practice_id
            a_site, b_site, c_site = (x.edge.site.site_id for x in (a, b, c))
            before = _hub_log(old_db)
            history = a.history()
            b_at_a = {bytes(s) for (s,) in a.query("SELECT sealed FROM received_batches")
                      } - b_at_a
    assert before == {a_site: 3, b_site: 2, c_site: 1}
    # Site C is lost too (its machine died with the hub's) and never comes back.

    # The hub's machine is gone (database and signing key); a new one starts empty, at
    # the same address, and the operator re-creates the practice under its old id.
    new_db = tmp_path / "new-hub" / "hub.db"
    new_db.parent.mkdir()
    operator = await add_operator(new_db)
    async with local_hub(new_db, port=port) as hub:
        settings = HubSettings.parse(hub.url, insecure_http=True)
        async with HubClient.open(settings) as client:
            await client.create_practice("Sato", operator_token=operator,
                                         practice_id=practice_id)
            token = (await client.create_enrollment_token(practice_id,
                                                          credential=operator)).token
            other = await client.create_practice("Other", operator_token=operator)
            wrong = (await client.create_enrollment_token(other.practice_id,
                                                          credential=operator)).token
        state_before = _sync_state(a_dir)
        with pytest.raises(EnrollmentError, match="not for this site's practice"):
            await reenroll(a_dir, settings, token=wrong, name="site0", now_ms=wall_ms())
        assert _sync_state(a_dir) == state_before  # refused before anything changed

        relayed_together: list[int] = []
        push_many = HubClient.push_many

        async def counted(self: HubClient, sealed: list[bytes]) -> Any:
            if set(sealed) <= b_at_a:
                relayed_together.append(len(sealed))
            return await push_many(self, sealed)

        monkeypatch.setattr(HubClient, "push_many", counted)
        done = await reenroll(a_dir, settings, token=token, name="site0", now_ms=wall_ms())
        assert (done.site_id, done.status, done.own_batches, done.relays) == (
            a_site, "approved", 3, 3)
        async with HubClient.open(settings) as client:
            again = (await client.create_enrollment_token(practice_id,
                                                          credential=operator)).token
        with pytest.raises(EnrollmentError, match="already knows site"):
            await reenroll(a_dir, settings, token=again, name="site0", now_ms=wall_ms())
        # A comes back first: it pushes its own batches again; B's, which it received,
        # wait in its relay queue until B is registered and approved on this hub.
        async with running(a_dir) as a:
            await wait_for(lambda: _unsent(a) == 0, "a's batches pushed again")
            await wait_for(lambda: a.sync.ctx.cursor == 3, "a read the rebuilt log")
            assert _hub_log(new_db) == {a_site: 3}
            assert _to_relay(a) == 3
            status = await _status_sync(a)
            assert status["relays_queued"] == 3
            assert any("not yet re-enrolled" in n for n in status["notes"])

            # The operator registers C, gone for good, under its old id and keys as A
            # lists them; A passes C's batch on at its next poll.
            capsys.readouterr()
            assert main(["edge", "sites", "--data", str(a_dir), "--json"]) == 0
            listed = {UUID(s["register"]["site_id"]): s for s in
                      json.loads(capsys.readouterr().out)}
            assert set(listed) == {a_site, b_site, c_site}
            async with aiohttp.ClientSession() as http, http.post(
                    f"{hub.url}/v1/practices/{practice_id}/sites",
                    json=listed[c_site]["register"],
                    headers={"Authorization": f"Bearer {operator}"}) as resp:
                assert resp.status == 201, await resp.text()
            await wait_for(lambda: _to_relay(a) == 2, "c's batch relayed by a")
            assert _hub_log(new_db) == {a_site: 3, c_site: 1}
            assert a.query("SELECT count(*) FROM dead_letters") == [(0,)]  # new hub key pinned

            # B's machine is back: re-enrolled with an invite from A, approved by A after
            # the fingerprint.  A passes B's batches on at its next poll, before B syncs.
            b_token, _ = await invite(a_dir)
            done = await reenroll(b_dir, settings, token=b_token, name="site1",
                                  now_ms=wall_ms())
            assert (done.site_id, done.status, done.own_batches) == (b_site, "pending", 2)
            await approve(a_dir, b_site, done.fingerprint)
            await wait_for(lambda: _to_relay(a) == 0, "b's batches relayed by a", 20)
            # Each try of B's two batches alone (refused while B was unknown, then taken)
            # was one request for both.
            assert relayed_together and set(relayed_together) == {2}
            await wait_for(lambda: a.sync.ctx.cursor == 6, "a read them back")
            assert _hub_log(new_db) == before

        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: _unsent(b) == 0, "b's own batches acknowledged again", 20)
            await b.write("Patient", "b3", patient("b3"))
            await wait_for(lambda: len(a.states()) == 7 and a.states() == b.states(),
                           "a write after the rebuild reached a", 20)
            await wait_for(lambda: a.history() == b.history(), "same history")
            assert {h for h in a.history() if h[1] != "b3"} == history
        assert _hub_log(new_db) == {a_site: 3, b_site: 3, c_site: 1}
