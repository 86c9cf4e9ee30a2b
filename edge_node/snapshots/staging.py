"""Stage a downloaded snapshot into a private SQLite file, resumably, and verify it.

    staging = Staging.at(restore_dir)
    staged = staging.stage_file(snapshot_path, keyring, directory, on_progress)

The staging file (`.restore/staging.sqlite3` in the data directory) is the
store's (`store.snapshot_staging`): the edge schema plus a note of which
snapshot it holds, how many records are in and whether the signature
verified.  This module reads the sealed stream (`SnapshotOpener`), checks each
record and hands the rows over in batches, each batch and its record count in
one transaction, so a process killed at any point resumes from the last
committed batch: the snapshot file is read again from the start (the stream
cipher and the signature need every byte), the records already staged are
skipped, the rest inserted.  A staging file of another snapshot is discarded.

Nothing here touches the live database: a snapshot that turns out tampered,
truncated or malformed raises `SnapshotRefused` and leaves only this file,
which the next attempt discards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from edge_node.errors import SnapshotRefused
from edge_node.store.snapshot_records import SnapshotMeta, check_row
from edge_node.store.snapshot_staging import (
    StagingFile,
    discard_staging,
    staging_errors,
    staging_progress,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.keys import Keyring, SiteDirectory
from sync_protocol.snapshot import SnapshotHeader, SnapshotOpener

STAGING_NAME: Final = "staging.sqlite3"
READ_BYTES: Final = 1 << 20
BATCH_RECORDS: Final = 20_000
#: ... or fewer, once the sealed batches pending reach this many bytes.
BATCH_BYTES: Final = 64 << 20

#: (bytes of the snapshot file read, its size, records staged, records in all)
Progress = Callable[[int, int, int, int], None]


@dataclass(frozen=True, slots=True)
class Staged:
    """A verified staging file: what it holds and where it is."""

    path: Path
    header: SnapshotHeader
    meta: SnapshotMeta
    resumed_from: int


class Staging:
    """The staging file of one data directory's restore."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def at(cls, restore_dir: Path) -> Staging:
        restore_dir.mkdir(parents=True, exist_ok=True)
        return cls(restore_dir / STAGING_NAME)

    def discard(self) -> None:
        discard_staging(self.path)

    def progress(self) -> tuple[str, int, bool] | None:
        """(snapshot id, records staged, verified) of the staging file, if one exists."""
        return staging_progress(self.path)

    def stage_file(self, snapshot: Path, keyring: Keyring, directory: SiteDirectory,
                   on_progress: Progress | None = None, *,
                   batch_records: int = BATCH_RECORDS) -> Staged:
        """Stage every record of `snapshot` and verify its signature; blocking.

        Resumes a staging file of the same snapshot; discards one of another.
        Raises `SnapshotRefused` (tampered, truncated, wrong key, bad records)
        or `SnapshotError` (disk).
        """
        try:
            with staging_errors(self.path):
                return self._stage(snapshot, keyring, directory, on_progress, batch_records)
        except ProtocolError as exc:
            raise SnapshotRefused(f"snapshot refused: {exc}",
                                  hint=exc.hint or "download the latest snapshot again; "
                                  "nothing was installed") from exc

    def _stage(self, snapshot: Path, keyring: Keyring, directory: SiteDirectory,
               on_progress: Progress | None, batch_records: int) -> Staged:
        size = snapshot.stat().st_size
        opener = SnapshotOpener(keyring, directory)
        db: StagingFile | None = None
        done = 0
        resumed_from = 0
        index = 0
        meta: SnapshotMeta | None = None
        read = 0
        try:
            with snapshot.open("rb") as src:
                while chunk := src.read(READ_BYTES):
                    read += len(chunk)
                    for record in opener.feed(chunk):
                        index += 1
                        if meta is None:
                            assert opener.header is not None
                            label = f"snapshot {opener.header.snapshot_id}"
                            meta = SnapshotMeta.from_record(record, label=label)
                            db, done = StagingFile.open_for(self.path,
                                                            str(opener.header.snapshot_id))
                            resumed_from = done
                            continue
                        kind, row = check_row(record, label=label)
                        if index <= done:
                            continue
                        assert db is not None
                        db.add(kind, row)
                        if index - done >= batch_records or db.pending_bytes >= BATCH_BYTES:
                            done = db.flush(index)
                            if on_progress is not None:
                                on_progress(read, size, done, meta.records)
                    if on_progress is not None and meta is not None:
                        on_progress(read, size, max(index, done), meta.records)
            header = opener.finish()
            if meta is None or db is None:
                raise SnapshotRefused(f"snapshot {header.snapshot_id} holds no records",
                                      hint="download the latest snapshot again")
            done = db.flush(index)
            if index != meta.records:
                raise SnapshotRefused(
                    f"snapshot {header.snapshot_id} holds {index} records, its meta record "
                    f"announces {meta.records}", hint="the writer site is faulty; tell its "
                    "administrator and use an older snapshot")
            db.finish()
            if on_progress is not None:
                on_progress(read, size, done, meta.records)
            return Staged(self.path, header, meta, resumed_from)
        finally:
            if db is not None:
                db.close()


__all__ = ["BATCH_BYTES", "BATCH_RECORDS", "Progress", "Staged", "Staging"]
