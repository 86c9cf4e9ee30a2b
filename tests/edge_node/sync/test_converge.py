"""Edges enrolled at a real hub converge: writes spread, states are byte-identical."""

from __future__ import annotations

from pathlib import Path

from tests.edge_node.sync.edges import patient, practice, running, wait_for
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
