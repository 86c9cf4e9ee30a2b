"""Edges enrolled at a real hub converge: writes spread, states are byte-identical."""

from __future__ import annotations

from pathlib import Path

from chartsync.link import Link
from tests.edge_node.sync.edges import patient, practice, running, unsynced, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_two_edges_converge_and_a_write_spreads(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir) as a, running(b_dir) as b:
            await wait_for(lambda: b.sync.ctx.keyring is not None, "keys at b")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: ("Patient", "p1") in b.states(), "p1 at b")
            await b.write("Patient", "p2", patient("Suzuki"))
            await a.write("Patient", "p3", patient("Tanaka"))
            await wait_for(lambda: len(a.states()) == 3 and a.states() == b.states(),
                           "converged")
            history = b.query("SELECT origin, user FROM history WHERE id = 'p1'")
            assert history == [(str(a.edge.site.site_id), "dr-test")]
            assert b.query("SELECT count(*) FROM outbox") == [(1,)]  # only its own write
            await wait_for(lambda: a.query("SELECT digest FROM sync_state") ==
                           b.query("SELECT digest FROM sync_state"), "digests")


async def test_three_edges_converge_with_identical_states_conflicts_and_history(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        dirs = await practice(tmp_path, hub.url, operator, 3)
        async with running(dirs[0]) as a, running(dirs[1]) as b, running(dirs[2]) as c:
            sites = (a, b, c)
            await wait_for(lambda: all(x.sync.ctx.keyring for x in sites), "keys")
            await a.write("Patient", "shared", patient("Sato"))
            await wait_for(lambda: all(("Patient", "shared") in x.states() for x in sites),
                           "shared everywhere")
        # Sync stopped everywhere: the edits below are concurrent by construction.
        for n, data_dir in enumerate(dirs):
            async with unsynced(data_dir) as site:
                for i in range(20):
                    await site.write("Patient", f"s{n}-{i}", patient(f"N{n}{i}"))
                # concurrent edits of a guarded element (birthDate) at every site
                await site.write("Patient", "shared", patient("Sato", f"198{n}-01-01"))
        async with running(dirs[0]) as a, running(dirs[1]) as b, running(dirs[2]) as c:
            sites = (a, b, c)

            def converged() -> bool:
                states = [x.states() for x in sites]
                return len(states[0]) == 61 and states[0] == states[1] == states[2]

            await wait_for(converged, "states converged")
            await wait_for(lambda: a.history() == b.history() == c.history(), "history")
            assert len(a.history()) == 64
            assert a.conflicts() == b.conflicts() == c.conflicts()
            assert any(row[1] == "shared" and row[2] == "birthDate" for row in a.conflicts())
            await wait_for(lambda: len({x.query("SELECT digest FROM sync_state")[0]
                                        for x in sites}) == 1, "digests")


async def test_offline_site_reconnects_and_a_guarded_conflict_shows_everywhere(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub, \
            Link.open("127.0.0.1", hub.port) as link:
        dirs = await practice(tmp_path, hub.url, operator, 3, urls={2: link.url})
        async with running(dirs[0]) as a, running(dirs[1]) as b, running(dirs[2]) as c:
            sites = (a, b, c)
            await wait_for(lambda: all(x.sync.ctx.keyring for x in sites), "keys")
            await a.write("Patient", "p1", patient("Sato", "1970-01-01"))
            await wait_for(lambda: all(("Patient", "p1") in x.states() for x in sites), "p1")
            link.cut()
            await wait_for(lambda: c.sync.statistics().online is False, "c sees offline")
            await c.write("Patient", "p1", patient("Sato", "1972-02-02"))
            await c.write("Patient", "c-only", patient("Offline"))
            await a.write("Patient", "p1", patient("Sato", "1971-01-01"))
            await wait_for(lambda: b.states().get(("Patient", "p1")) ==
                           a.states()[("Patient", "p1")], "a's edit at b")
            assert ("Patient", "c-only") not in a.states()
            link.restore()

            def converged() -> bool:
                states = [x.states() for x in sites]
                return len(states[0]) == 2 and states[0] == states[1] == states[2]

            await wait_for(converged, "converged after reconnect", 20)
            for site in sites:
                rows = [r for r in site.conflicts() if r[1] == "p1" and r[2] == "birthDate"]
                assert rows and rows[0][3] == 2, rows  # both values kept as heads
                state = site.states()[("Patient", "p1")]  # the register keeps both values
                assert b"1971-01-01" in state and b"1972-02-02" in state
            assert a.conflicts() == b.conflicts() == c.conflicts()
            assert a.history() == b.history() == c.history()
