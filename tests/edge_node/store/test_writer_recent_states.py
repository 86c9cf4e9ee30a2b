"""The writer's memory of recently written states never disagrees with the database.

Updates of a chart written moments ago use the writer's remembered state instead
of a SELECT; these tests change rows behind its back the only ways the product
can (`Writer.exclusive`, a re-bootstrap's path) and push entries out of the bound
(the writer's `recent_states` argument, set small by `writer_of`), and check every
update still builds on what is stored.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from conflict import canonical_state, element_json
from conflict.decode import state_from_canonical
from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.node import Edge
from edge_node.store.apply import Applied
from edge_node.store.audit import AuditChain
from edge_node.store.check import check_path
from edge_node.store.connection import WriteConnection, open_sync
from edge_node.store.schema import db_path
from edge_node.store.site import load_site
from edge_node.store.writer import Writer
from sync_protocol.hlc import HybridClock
from tests.edge_node.conftest import make_data_dir, wall_ms
from tests.edge_node.resources import patient

ACTOR = Actor("u1", "clinician", "dev-1", "127.0.0.1")


@asynccontextmanager
async def writer_of(data: Path, *, recent_states: int) -> AsyncIterator[Writer]:
    """The writer of a fresh data directory (nothing written yet), remembering at most
    `recent_states` states, running until the block exits."""
    conn = open_sync(data)
    try:
        site, chain = load_site(conn, data), AuditChain.load(conn)
    finally:
        conn.close()
    async with WriteConnection.open(db_path(data)) as write_conn, asyncio.TaskGroup() as tg:
        writer = Writer(write_conn, site_id=site.site_id, next_seq=1, hlc=HybridClock(0),
                        chain=chain, clock=wall_ms, recent_states=recent_states)
        tg.create_task(writer.run())
        try:
            yield writer
        finally:
            writer.stop()


async def _update(writer: Writer, rid: str, mrn: str) -> Applied:
    [result] = await writer.submit(
        [WriteOp("update", "Patient", rid, {**patient(mrn=mrn), "id": rid})], actor=ACTOR,
        atomic=False)
    assert isinstance(result, Applied), result
    return result


def _stored(conn: sqlite3.Connection, rid: str) -> tuple[int, bytes]:
    version, state = conn.execute("SELECT version, state FROM resources WHERE type = "
                                  "'Patient' AND id = ?", (rid,)).fetchone()
    return int(version), bytes(state)


async def test_rows_rewritten_by_exclusive_work_are_read_again(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        await _update(edge.writer, "p1", "1")
        first = await edge.writer.exclusive(lambda conn: _stored(conn, "p1"))
        await _update(edge.writer, "p1", "2")
        await _update(edge.writer, "p1", "3")
        assert (await edge.writer.exclusive(lambda conn: _stored(conn, "p1")))[0] == 3

        def rewind(conn: sqlite3.Connection) -> None:
            # What a re-bootstrap does to a row: replace it wholesale.
            conn.execute("UPDATE resources SET version = 40, state = ? WHERE id = 'p1'",
                         (first[1],))

        await edge.writer.exclusive(rewind)
        await _update(edge.writer, "p1", "4")
        # Built on the rewritten row (row counter 40), not the remembered one.
        version, state = await edge.writer.exclusive(lambda conn: _stored(conn, "p1"))
        assert version == 41
        decoded = state_from_canonical(state)
        items = [reg for name, reg in decoded.registers.items()
                 if name.startswith("identifier[") and reg.heads[0].value is not None]
        assert len(items) == 1 and len(items[0].heads) == 1  # one live identifier item
        head_value = element_json(decoded, "identifier")
        assert head_value is not None and b'"4"' in head_value


async def test_states_beyond_the_bound_are_loaded_and_match_the_database(tmp_path: Path
                                                                         ) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    async with writer_of(data, recent_states=3) as writer:  # most updates miss the bound
        for round_ in range(3):
            for i in range(8):
                applied = await _update(writer, f"p{i}", f"{round_}-{i}")
                assert applied.created == (round_ == 0)
        stored = await writer.exclusive(
            lambda conn: [_stored(conn, f"p{i}") for i in range(8)])
        for (version, raw), i in zip(stored, range(8), strict=True):
            assert version == 3
            assert canonical_state(state_from_canonical(raw)) == raw
            value = element_json(state_from_canonical(raw), "identifier")
            assert value is not None
            assert f'"2-{i}"'.encode() in value
    report = check_path(data)
    assert report.ok, report.problems
