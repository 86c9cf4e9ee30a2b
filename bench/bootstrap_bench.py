"""Bootstrap of a 100,000-resource practice from a snapshot (target ≤ 15 s).

    python -c "import asyncio, pathlib, tempfile, bench.bootstrap_bench as b; \
        print(asyncio.run(b.run_bootstrap_bench(pathlib.Path(tempfile.mkdtemp()))))"

The source site is filled through the real writer (group commits of 1,000
creates), exported to a sealed snapshot (not timed), then a fresh enrolled
site stages, verifies and installs it (timed: what `edge restore` does after
the download; a loopback download of the file adds well under a second).

Measured on the shared 2-core dev box: 14.7 s before, 12.9 s after (8.0-8.7 s
for stage + install alone when the box is quiet).  What made staging faster
(`snapshots.staging`): the staging file's secondary indexes are dropped
before the bulk load and built once after it (the search-token index alone
was most of the insert time), `synchronous=OFF` on the private staging file
(durability comes from the fsync + rename in `install`), and a 128 MiB page
cache.  What is left: deriving search tokens from each resource's JSON
(~3 s per 100,000 in Python).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import nacl.utils

from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.node import Edge, init_data_dir
from edge_node.snapshots.export import export_snapshot
from edge_node.snapshots.staging import Staging
from edge_node.store.connection import open_sync
from edge_node.store.site import Site, load_site
from edge_node.store.snapshot_install import install_file
from edge_node.store.snapshot_position import read_position
from edge_node.store.sync_state import save_enrollment, save_keyring
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory

RESOURCES = 100_000
_ACTOR = Actor("bench", "clinician", "bench", "127.0.0.1")


def _ms() -> int:
    return time.time_ns() // 1_000_000


def _site(data_dir: Path, keyring: Keyring) -> Site:
    init_data_dir(data_dir, now_ms=_ms(), entropy=os.urandom, admin_name="admin")
    conn = open_sync(data_dir)
    try:
        conn.execute("BEGIN IMMEDIATE")
        save_enrollment(conn, data_dir, hub_url="http://127.0.0.1:1", hub_ca=None,
                        insecure_http=True, practice_id=keyring.practice_id, credential="x",
                        hub_verify_key=b"\0" * 32, status="approved", log_id=None)
        save_keyring(conn, data_dir, keyring)
        conn.execute("COMMIT")
        return load_site(conn, data_dir)
    finally:
        conn.close()


def _patient(i: int) -> dict[str, object]:
    return {"resourceType": "Patient", "id": f"p{i:06d}",
            "name": [{"family": f"Family{i % 997}", "given": [f"Given{i % 89}"]}],
            "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51", "value": str(i)}]}


async def run_bootstrap_bench(tmp_dir: Path, resources: int = RESOURCES) -> dict[str, float]:
    pid = uuid.uuid4()
    keyring = Keyring(pid, {1: PracticeKey(1, nacl.utils.random(32))})
    source = tmp_dir / "source"
    site = _site(source, keyring)
    async with Edge.open(EdgeConfig(source, max_group_ops=1000), clock=_ms,
                         entropy=os.urandom) as edge:
        for start in range(0, resources, 1000):
            ops = [WriteOp("create", "Patient", f"p{i:06d}", _patient(i))
                   for i in range(start, min(start + 1000, resources))]
            await edge.writer.submit(ops, actor=_ACTOR, atomic=False)
    result = export_snapshot(source, tmp_dir / "out", keyring=keyring, site=site,
                             practice_id=pid, position_of=read_position,
                             snapshot_id=uuid.uuid4())
    target = tmp_dir / "restored"
    _site(target, keyring)
    directory = SiteDirectory([site.keys.public(site.site_id)])
    started = time.perf_counter()
    staged = Staging.at(target / ".restore").stage_file(result.path, keyring, directory)
    install_file(target, staged.path, staged.meta)
    elapsed = time.perf_counter() - started
    return {"bootstrap_resources": float(resources), "bootstrap_s": elapsed,
            "bootstrap_resources_per_s": resources / elapsed,
            "snapshot_mib": result.size_bytes / (1 << 20)}
