"""The hub's signing key: kept in a key file (never the store), shown as a fingerprint.

The key file holds the 32-byte Ed25519 seed, either as base64 text (44 characters, one
line; what the hub writes) or as the 32 raw bytes.  It must be readable by its owner only
(mode 0600).  The store keeps only the public key, so a store and a key file that do not
belong together are refused: the edges pinned the store's key at enrollment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import os
import stat
from pathlib import Path

import nacl.signing

from cloud_hub.errors import HubKeyRefused
from cloud_hub.store.base import HubStore

SEED_BYTES = 32


def hub_fingerprint(verify_key: bytes) -> str:
    """Human-comparable fingerprint of the hub's public key (20 base32 chars)."""
    digest = hashlib.blake2b(verify_key, digest_size=15, person=b"chartsync-hub").digest()
    text = base64.b32encode(digest).decode("ascii")
    return "-".join(text[i:i + 4] for i in range(0, 20, 4))


def decode_seed(content: bytes, path: Path) -> bytes:
    """The seed in a key file's `content` (32 raw bytes or base64); raises `HubKeyRefused`."""
    if len(content) == SEED_BYTES:
        return content
    try:
        seed = base64.b64decode(content.strip(), validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != SEED_BYTES:
        raise HubKeyRefused(f"hub key file {path} holds no 32-byte seed (base64 or raw)",
                            hint="restore the file from backup; do not make a new one, the "
                            "edges pinned this hub's key")
    return seed


def read_seed(path: Path) -> bytes:
    """The seed in the key file at `path`; refuses a file others may read."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise HubKeyRefused(
                    f"hub key file {path} is accessible by group or others "
                    f"(mode {stat.S_IMODE(mode):04o})", hint=f"run `chmod 600 {path}`")
            content = handle.read(4096)
    except OSError as exc:
        raise HubKeyRefused(f"hub key file {path} cannot be read: {exc.strerror}",
                            hint="check the path (hub_key_file) and that the hub's user "
                            "owns the file") from exc
    return decode_seed(content, path)


def write_seed(path: Path, seed: bytes) -> None:
    """Create the key file at `path` (mode 0600, base64) with `seed`; never overwrites."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, base64.b64encode(seed) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails if the file appeared meanwhile: nothing is overwritten
        tmp.unlink()
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise HubKeyRefused(f"hub key file {path} cannot be created: {exc.strerror}",
                            hint="make its directory writable by the hub's user, or set "
                            "hub_key_file") from exc


def file_seed(key_file: Path, new_seed: bytes) -> bytes:
    """The seed in `key_file`, which is first created with `new_seed` if absent."""
    if not key_file.exists():
        write_seed(key_file, new_seed)
    return read_seed(key_file)  # what a restart will read


async def load_signing_key(store: HubStore, key_file: Path, candidate_seed: bytes,
                           now_ms: int) -> nacl.signing.SigningKey:
    """The hub's Ed25519 key from `key_file`, created on first start; raises `HubKeyRefused`.

    A new key file gets the seed a schema ≤2 store still holds (which is then deleted from
    the store), else `candidate_seed`.  Refuses a key file whose public key is not the one
    the store recorded.  Safe to repeat after a crash at any point.
    """
    legacy = await store.legacy_hub_seed()
    seed = await asyncio.to_thread(
        file_seed, key_file, legacy if legacy is not None else candidate_seed)
    signing_key = nacl.signing.SigningKey(seed)
    mine = bytes(signing_key.verify_key)
    if legacy is not None:  # checked before `bind_hub_key` may delete the legacy seed
        _same_hub(bytes(nacl.signing.SigningKey(legacy).verify_key), mine, key_file)
    _same_hub(await store.bind_hub_key(mine, now_ms), mine, key_file)
    return signing_key


def _same_hub(recorded: bytes, mine: bytes, key_file: Path) -> None:
    if recorded != mine:
        raise HubKeyRefused(
            f"this store belongs to hub key {hub_fingerprint(recorded)}; this key file "
            f"({key_file}) holds {hub_fingerprint(mine)}",
            hint="start with the key file this store was made with (edges pinned its key); "
            "restore it from backup")
