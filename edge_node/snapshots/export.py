"""Write a sealed snapshot of a data directory, from a consistent copy, never blocking the writer.

    result = export_snapshot(data_dir, work_dir, keyring=..., site=..., position_of=...,
                             snapshot_id=..., now_ms=...)

1. The store takes a consistent copy of the live database into `work_dir`
   (`store.snapshot_export`: online backup, one read transaction, so the
   writer is never blocked and every row comes from one commit).
2. Records are streamed from the copy through `SnapshotSealer` into
   `snapshot.partial`, fsynced and renamed to `snapshot.css`; the copy is
   deleted.  Runs in a worker thread (`asyncio.to_thread`): it is CPU and disk.
3. The BLAKE2b-256 of every byte written is computed on the way
   (`SnapshotDigest`): the site signs it in the snapshot's attestation
   (`attest`), which the hub and every restoring site check.

The caller decides *whether* to export (the outbox must be acknowledged and
pulled back, see `snapshotter`); this module only writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from edge_node.errors import SnapshotError
from edge_node.store.durable_files import fsync_path
from edge_node.store.site import Site
from edge_node.store.snapshot_export import consistent_rows
from edge_node.store.snapshot_position import PositionOf
from edge_node.store.snapshot_records import SnapshotMeta
from sync_protocol.keys import Keyring
from sync_protocol.snapshot import SnapshotSealer
from sync_protocol.snapshot_signature import (
    SnapshotAttestation,
    SnapshotClaim,
    SnapshotDigest,
    attest_snapshot,
)

COPY_NAME: Final = "export-copy.sqlite3"
PARTIAL_NAME: Final = "snapshot.partial"
SNAPSHOT_NAME: Final = "snapshot.css"


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    snapshot_id: UUID
    hub_seq: int
    key_epoch: int
    size_bytes: int
    records: int
    meta: SnapshotMeta
    #: BLAKE2b-256 of the whole sealed file (`sync_protocol.snapshot_signature`).
    digest: bytes

    def attest(self, practice_id: UUID, site: Site) -> SnapshotAttestation:
        """This snapshot's attestation, signed with `site`'s key."""
        return attest_snapshot(SnapshotClaim(
            practice_id=practice_id, site_id=site.site_id, snapshot_id=self.snapshot_id,
            hub_seq=self.hub_seq, key_epoch=self.key_epoch, digest=self.digest), site.keys)


def export_snapshot(data_dir: Path, work_dir: Path, *, keyring: Keyring, site: Site,
                    practice_id: UUID, position_of: PositionOf, snapshot_id: UUID,
                    chunk_bytes: int = 1 << 20) -> ExportResult:
    """Seal a snapshot of `data_dir` into `work_dir/snapshot.css`; return what it covers.

    Blocking (run it with `asyncio.to_thread`).  Raises `SnapshotError` if the
    copy or the write fails; nothing is left under the final name then.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    partial, final = work_dir / PARTIAL_NAME, work_dir / SNAPSHOT_NAME
    try:
        with consistent_rows(data_dir, work_dir / COPY_NAME, practice_id=practice_id,
                             site_id=site.site_id, position_of=position_of,
                             snapshot_id=snapshot_id) as rows:
            meta = rows.meta
            key = keyring.current
            sealer = SnapshotSealer(
                practice_id=practice_id, site_id=site.site_id, snapshot_id=snapshot_id,
                hub_seq=meta.position.hub_seq, created_hlc=meta.hlc, key=key,
                site_keys=site.keys, chunk_bytes=chunk_bytes)
            digest = SnapshotDigest()
            with partial.open("wb") as out:
                for piece in _sealed(sealer, rows.records):
                    digest.update(piece)
                    out.write(piece)
        fsync_path(partial)
        os.replace(partial, final)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"writing snapshot {snapshot_id} failed: {exc}",
                            hint="check free space in the data directory") from exc
    except SnapshotError:
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(final, snapshot_id, meta.position.hub_seq, key.epoch,
                        final.stat().st_size, sealer.records, meta, digest.digest())


def _sealed(sealer: SnapshotSealer, records: Iterable[Any]) -> Iterator[bytes]:
    yield sealer.begin()
    for record in records:
        yield sealer.add(record)
    yield sealer.finish()


__all__ = ["ExportResult", "export_snapshot"]
