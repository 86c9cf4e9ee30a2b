"""Writing a recovery kit file: under a passphrase, or split into custodians' shares.

    words = await write_recovery_kit(path, keyring, kit, passphrase=..., shares=None,
                                     created="2026-12-03")

The file is written to a temporary name beside `path`, made 0600, fsynced and
renamed, so an interrupted write never leaves half a kit where the old one was.
Argon2id (about a second) runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path

from edge_node.store.durable_files import fsync_path
from sync_protocol.keys import Keyring
from sync_protocol.kit_keys import KitKeyPair
from sync_protocol.recovery import create_recovery_kit, create_shared_recovery_kit

RECOVERY_KIT_FILE = "recovery-kit.txt"


async def write_recovery_kit(path: Path, keyring: Keyring, kit: KitKeyPair, *,
                             passphrase: str | None, shares: tuple[int, int] | None,
                             created: str) -> list[str]:
    """Write the kit to `path`; return the custodians' word lists (empty for a passphrase
    kit).  Raises `ValueError` for a too-short passphrase or impossible shares."""
    words: list[str] = []
    if shares is not None:
        text, words = create_shared_recovery_kit(keyring, kit=kit, threshold=shares[0],
                                                 shares=shares[1], created=created)
    else:
        if passphrase is None:
            raise ValueError("a recovery kit needs a passphrase or shares")
        text = await asyncio.to_thread(functools.partial(
            create_recovery_kit, keyring, passphrase, kit=kit, created=created))
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    fsync_path(path.parent)
    return words


__all__ = ["RECOVERY_KIT_FILE", "write_recovery_kit"]
