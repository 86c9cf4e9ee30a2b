"""The data directory is the owner's alone: directory 0700, every file in it 0600.

The database and its WAL hold the charts in plaintext and `site.key` opens the
site's keys, so no other local account may read them.  Two layers:

* `private_files()` sets the process umask to 077 for a command's lifetime, so every
  file and directory the edge creates (database, WAL and shared-memory files, keys,
  lock, snapshot and staging files, backups) is private from the moment it exists;
* `make_private_dir` and `tighten_data_dir` tighten a data directory that already
  existed (made by an installer as 0755, say) at `init` and at every start of the
  edge, also when the edge runs inside another program; `wider_than_private` lets
  `edge check` name any file whose mode was widened since.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

#: Group and other get nothing.
PRIVATE_UMASK: Final = 0o077
DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


@contextmanager
def private_files() -> Iterator[None]:
    """Run the block with umask 077; the previous umask comes back at its end."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def make_private_dir(path: Path) -> None:
    """Create `path` (and parents) if needed; the directory itself ends up mode 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def tighten_data_dir(data_dir: Path) -> None:
    """Make `data_dir` 0700 and each file directly in it 0600 (the edge's start and `init`).

    SQLite gives a new WAL and shared-memory file the database file's mode, so a private
    database keeps the files made after it private too.
    """
    os.chmod(data_dir, DIR_MODE)
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)


def make_private_file(path: Path) -> None:
    """Set an existing file to mode 0600 (a backup written for the owner only)."""
    os.chmod(path, FILE_MODE)


def wider_than_private(data_dir: Path) -> list[str]:
    """One sentence per entry of `data_dir` (itself included) readable beyond its owner."""
    found = []
    for path in [data_dir, *sorted(data_dir.rglob("*"))]:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:  # a WAL checkpointed away while we looked
            continue
        if path.is_symlink() or not mode & 0o077:
            continue
        want = DIR_MODE if path.is_dir() else FILE_MODE
        found.append(f"{path} is mode {mode:04o}; other local accounts can read it "
                     f"(run `chmod {want:o} {path}`)")
    return found


__all__ = ["DIR_MODE", "FILE_MODE", "PRIVATE_UMASK", "make_private_dir", "make_private_file",
           "private_files", "tighten_data_dir", "wider_than_private"]
