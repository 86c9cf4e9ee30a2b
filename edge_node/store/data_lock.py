"""One owner at a time for a data directory: `DIR/owner.lock`, an advisory `flock`.

`chartsync edge serve` holds it for as long as it runs.  A second `serve` on
the same directory (a manual start beside the systemd service, two containers
mounting one volume) is refused before it opens the database: each would keep
its own outbox sequence counter, HLC and audit chain head in memory, and their
writes would fork the audit chain and collide in the outbox.

Commands that rewrite what a running server keeps in memory (`reenroll`,
`restore`) take the same lock, so they are refused while the site is served
and a `serve` started during them waits for nothing and is refused too.
Commands meant for a running site (user, invite, approve, revoke, backup,
check, held, dead-letters, sites) do not take it: SQLite serialises their
short transactions with the server's.

The kernel drops the lock when its process ends, however it ends (SIGKILL,
power cut), so a crashed server never blocks its own restart.  The file holds
the owner's pid and command, for the refusal message only; it is never trusted
to decide anything.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from edge_node.errors import DataDirInUse

LOCK_NAME: Final = "owner.lock"


def _holder(fd: int) -> str:
    """What the file says about who holds the lock ("" when it says nothing usable)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    pid, _, command = text.partition(" ")
    return f"`chartsync edge {command}` (pid {pid})" if pid.isdigit() and command else ""


@contextmanager
def data_dir_owner(data_dir: Path, command: str, *, create: bool = False) -> Iterator[None]:
    """Hold `data_dir`'s owner lock for the block; raise `DataDirInUse` if another holds it.

    `command` names the holder (`serve`, `reenroll`, ...) in the message the next
    one gets.  With `create`, makes the directory (mode 0700) if it does not exist
    yet; without, a missing directory is left to the command's own open to refuse
    (there is nothing in it to own).
    """
    if create:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif not data_dir.is_dir():
        yield
        return
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd) or "another chartsync process"
            raise DataDirInUse(
                f"{data_dir} is in use by {holder}; `chartsync edge {command}` did nothing",
                hint="one process owns a data directory at a time: stop the other one first "
                "(for the service: `systemctl stop chartsync-edge`), or give this one its "
                "own --data") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


__all__ = ["LOCK_NAME", "data_dir_owner"]
