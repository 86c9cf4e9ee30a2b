"""`edge backup`: a consistent copy of the live database, taken online.

Uses SQLite's online backup API (a snapshot consistent at one commit, while
the server keeps writing), writes to a temporary file next to the target,
fsyncs it and renames it into place, so a crash never leaves a half-written
backup under the target name.  The copy holds the site keys sealed: restoring
it needs this data directory's `site.key` as well (keep one copy of that
file apart from the backups).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from edge_node.errors import StoreError
from edge_node.store.file_modes import make_private_file
from edge_node.store.schema import check_version, db_path


def backup(data_dir: Path, target: Path) -> Path:
    """Copy the data directory's database to `target`; return it.

    Raises `StoreError` if the source is missing or newer than this build, or
    the target exists.
    """
    source = db_path(data_dir)
    if not source.exists():
        raise StoreError(f"{data_dir} holds no edge database",
                         hint="check --data; it is the directory given to `edge init`")
    check_version(source)
    if target.exists():
        raise StoreError(f"{target} already exists", hint="choose a new file name")
    tmp = target.with_name(target.name + ".partial")
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup of {source} failed: {exc}",
                         hint="check free space at the target and retry") from exc
    finally:
        src.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    make_private_file(tmp)
    os.replace(tmp, target)
    return target
