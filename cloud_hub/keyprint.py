"""The hub's signing key: made once, kept in the store, shown as a fingerprint."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing

from cloud_hub.store.base import HubStore


def hub_fingerprint(verify_key: bytes) -> str:
    """Human-comparable fingerprint of the hub's public key (20 base32 chars)."""
    digest = hashlib.blake2b(verify_key, digest_size=15, person=b"chartsync-hub").digest()
    text = base64.b32encode(digest).decode("ascii")
    return "-".join(text[i:i + 4] for i in range(0, 20, 4))


async def load_signing_key(store: HubStore, candidate_seed: bytes,
                           now_ms: int) -> nacl.signing.SigningKey:
    """The hub's Ed25519 key: the stored one, or `candidate_seed` stored on first start."""
    return nacl.signing.SigningKey(await store.hub_signing_seed(candidate_seed, now_ms))
