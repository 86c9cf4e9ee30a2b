"""Export → stage → install: a new site holds exactly the practice data of the writer site."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edge_node.errors import SnapshotRefused
from edge_node.snapshots.export import export_snapshot
from edge_node.snapshots.staging import Staging
from edge_node.store.check import check_store
from edge_node.store.connection import open_sync
from edge_node.store.snapshot_install import PRACTICE_TABLES, install_file
from edge_node.store.snapshot_position import read_position
from tests.edge_node.snapshots.practice import (
    OTHER,
    build_site,
    directory_of,
    enroll_locally,
    new_practice,
    practice_view,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _export(tmp_path: Path, patients: int = 30):
    practice = new_practice()
    source = tmp_path / "a"
    site = await build_site(source, practice, patients)
    result = export_snapshot(source, tmp_path / "out", keyring=practice.keyring, site=site,
                             practice_id=practice.practice_id, position_of=read_position,
                             snapshot_id=uuid.uuid4(), chunk_bytes=4096)
    return practice, source, site, result


async def test_restored_site_holds_exactly_the_writer_sites_practice_data(
        tmp_path: Path) -> None:
    practice, source, site, result = await _export(tmp_path)
    assert result.hub_seq == 7 and result.meta.conflicts == 1
    target = tmp_path / "b"
    new_site = enroll_locally(target, practice)
    staged = Staging.at(target / ".restore").stage_file(
        result.path, practice.keyring, directory_of(site))
    assert staged.header.snapshot_id == result.snapshot_id
    install_file(target, staged.path, staged.meta)
    assert practice_view(target) == practice_view(source)
    conn = open_sync(target)
    try:
        # The restored site keeps its own identity, accounts and enrollment.
        assert conn.execute("SELECT site_id FROM site").fetchone()[0] == str(new_site.site_id)
        assert read_position(conn).chains == {OTHER: (2, b"\x11" * 32)}
        report = check_store(conn)
        assert report.ok, report.problems
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
        assert "restore_state" not in tables and set(PRACTICE_TABLES) <= tables
    finally:
        conn.close()


@pytest.mark.parametrize("damage", ["flip", "truncate", "other_signer"])
async def test_damaged_snapshot_is_refused_and_the_data_directory_untouched(
        tmp_path: Path, damage: str) -> None:
    practice, _, site, result = await _export(tmp_path)
    raw = bytearray(result.path.read_bytes())
    directory = directory_of(site)
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    elif damage == "truncate":
        del raw[-200:]
    else:
        # Same practice key, but the directory names another key for the writer site.
        other = enroll_locally(tmp_path / "c", practice)
        directory = directory_of(other)
        directory.add(other.keys.public(site.site_id))
    result.path.write_bytes(bytes(raw))
    target = tmp_path / "b"
    enroll_locally(target, practice)
    before = _digest(target / "edge.sqlite3")
    with pytest.raises(SnapshotRefused) as refused:
        Staging.at(target / ".restore").stage_file(result.path, practice.keyring, directory)
    assert str(result.snapshot_id) in refused.value.message
    assert refused.value.hint
    assert _digest(target / "edge.sqlite3") == before


_CHILD = """
import sys
from pathlib import Path
from edge_node.snapshots.staging import Staging
from sync_protocol.keys import Keyring, SiteDirectory, SitePublicKeys
from sync_protocol.canonical import unpack
import msgpack
args = msgpack.unpackb(Path(sys.argv[1]).read_bytes(), raw=False)
keyring = Keyring.from_wire(args["keyring"])
directory = SiteDirectory([SitePublicKeys.model_validate(args["site"])])
def progress(read, size, records, total):
    print(records, total, flush=True)
    if records > 1 and records < total:
        sys.stdin.readline()   # blocked here, mid-staging, until the parent kills us
Staging.at(Path(args["restore"])).stage_file(Path(args["snapshot"]), keyring, directory,
                                             progress, batch_records=25)
"""


def _kill_child_mid_staging(args: Path) -> int:
    """Stage in a child process, SIGKILL it once a batch is committed; return records staged."""
    staged = 0
    with subprocess.Popen([sys.executable, "-c", _CHILD, str(args)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=Path.cwd(),
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())}) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                staged = int(line.split()[0])
                if staged > 1:
                    break
            child.kill()
        finally:
            child.wait(timeout=30)
    return staged


async def test_killed_staging_resumes_where_it_stopped(tmp_path: Path) -> None:
    import msgpack

    practice, source, site, result = await _export(tmp_path, patients=60)
    target = tmp_path / "b"
    enroll_locally(target, practice)
    args = tmp_path / "args.msgpack"
    args.write_bytes(msgpack.packb({
        "keyring": practice.keyring.to_wire(), "restore": str(target / ".restore"),
        "snapshot": str(result.path),
        "site": {"site_id": str(site.site_id), **{
            k: v for k, v in site.keys.public(site.site_id).model_dump().items()
            if k != "site_id"}}}, use_bin_type=True))
    staged_before = _kill_child_mid_staging(args)
    staging = Staging.at(target / ".restore")
    found = staging.progress()
    assert found is not None and found[1] == staged_before and not found[2]
    staged = staging.stage_file(result.path, practice.keyring, directory_of(site))
    assert staged.resumed_from == staged_before > 1
    install_file(target, staged.path, staged.meta)
    assert practice_view(target) == practice_view(source)
