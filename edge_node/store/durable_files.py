"""Making a file or a directory entry durable: fsync by path.

A rename is durable only once the directory holding it is fsynced, and a file's
bytes only once the file is; snapshot export, restore and install rely on both.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync the file or directory at `path` (raises `OSError` as the OS does)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["fsync_path"]
