"""A site with charts, history, a conflict and a sync position — and a view to compare sites.

`build_site` writes through the real writer: local creates, updates and a
delete, plus one remote change from another origin (through `apply_remote`,
as the puller does) that conflicts with a local edit of a guarded element.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.utils

from conflict import canonical_dump
from conflict.decode import state_from_canonical
from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.node import Edge
from edge_node.store.connection import open_sync
from edge_node.store.received import AdvanceChain
from edge_node.store.site import Site, load_site
from edge_node.store.sync_state import AdvanceCursor, save_enrollment, save_keyring
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory
from sync_protocol.models import Change, ChangeOp
from tests.edge_node.conftest import make_data_dir, wall_ms
from tests.edge_node.resources import allergy, corrected, observation, patient

ACTOR = Actor("u1", "clinician", "dev-1", "127.0.0.1")
OTHER = uuid.UUID("01890000-0000-7000-8000-0000000000aa")


@dataclass
class Practice:
    practice_id: uuid.UUID
    keyring: Keyring


def new_practice() -> Practice:
    pid = uuid.uuid4()
    return Practice(pid, Keyring(pid, {1: PracticeKey(1, nacl.utils.random(32))}))


def enroll_locally(data_dir: Path, practice: Practice) -> Site:
    """Make `data_dir` a site of `practice` without a hub (sync_state and keyring rows)."""
    make_data_dir(data_dir)
    conn = open_sync(data_dir)
    try:
        conn.execute("BEGIN IMMEDIATE")
        save_enrollment(conn, data_dir, hub_url="http://127.0.0.1:1", hub_ca=None,
                        insecure_http=True, practice_id=practice.practice_id,
                        credential="css_test", hub_verify_key=b"\0" * 32, status="approved",
                        log_id=None)
        save_keyring(conn, data_dir, practice.keyring)
        conn.execute("UPDATE site SET practice_id = ?", (str(practice.practice_id),))
        conn.execute("COMMIT")
        return load_site(conn, data_dir)
    finally:
        conn.close()


async def build_site(data_dir: Path, practice: Practice, patients: int = 30) -> Site:
    site = enroll_locally(data_dir, practice)
    async with Edge.open(EdgeConfig(data_dir), clock=wall_ms, entropy=os.urandom) as edge:
        ops = []
        for i in range(patients):
            pid = f"p{i:04d}"
            ops.append(WriteOp("update", "Patient", pid, {**patient(mrn=str(i)), "id": pid}))
            ops.append(WriteOp("update", "Observation", f"o{i:04d}",
                               {**observation(pid, 60 + i), "id": f"o{i:04d}"}))
        ops.append(WriteOp("update", "AllergyIntolerance", "a1",
                           {**allergy("p0000"), "id": "a1"}))
        assert all(not isinstance(r, Exception)
                   for r in await edge.writer.submit(ops, actor=ACTOR, atomic=False))
        edits = [WriteOp("update", "Observation", "o0001",
                         {**corrected(observation("p0001", 99)), "id": "o0001"}),
                 WriteOp("delete", "Observation", "o0002", None)]
        assert all(not isinstance(r, Exception)
                   for r in await edge.writer.submit(edits, actor=ACTOR, atomic=False))
        # Another site raised the criticality concurrently: a conflict on a guarded element.
        remote = Change(resource_type="AllergyIntolerance", resource_id="a1", op=ChangeOp.SET,
                        elements={"criticality": b'"low"', "@deleted": b"false"},
                        replaces={}, hlc=1 << 40, origin=OTHER, seq=1, user="u9")
        await edge.writer.apply_remote([remote], [
            AdvanceCursor(7), AdvanceChain(str(OTHER), 2, b"\x11" * 32)], label="test batch")
        await edge.writer.wait_idle()
    return site


def directory_of(*sites: Site) -> SiteDirectory:
    return SiteDirectory(s.keys.public(s.site_id) for s in sites)


def practice_view(data_dir: Path) -> dict[str, Any]:
    """Everything that must come back exactly: states, rows, history, conflicts, tokens."""
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        states = [state_from_canonical(bytes(r[0]))
                  for r in conn.execute("SELECT state FROM resources")]
        return {
            "states": canonical_dump(states),
            "resources": sorted(conn.execute("SELECT * FROM resources").fetchall()),
            "history": sorted(conn.execute("SELECT * FROM history").fetchall()),
            "conflicts": sorted(conn.execute("SELECT * FROM conflicts").fetchall()),
            "tokens": sorted(conn.execute("SELECT * FROM search_tokens").fetchall()),
            "chains": sorted(conn.execute("SELECT * FROM origin_chains").fetchall()),
            "cursor": conn.execute("SELECT cursor FROM sync_state").fetchone()[0],
        }
    finally:
        conn.close()
